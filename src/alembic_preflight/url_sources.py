"""Which setting made env.py connect elsewhere: an environment variable, a `.env` file, a
URL written in a source file (issue 13).

Runs in the worker, which alone knows the refused connection's password and the
environment as the verifier started (before it handed env.py its own URL); only names,
files and lines cross the pipe, never a value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from alembic_preflight.connect_guard import RefusedConnection, Target, _norm_host, conninfo_target

# names of variables that may hold one piece of a database address (POSTGRES_HOST, DB_NAME)
_DB_NAME = re.compile(r"DB|DATABASE|POSTGRES|PG|SQL", re.IGNORECASE)
PIECES = ("url", "host", "port", "dbname", "user", "password")


@dataclass(frozen=True)
class Source:
    """A place the refused target came from."""

    kind: str  # "env" (the environment) | "dotenv" (a .env file) | "file" (a source line)
    piece: str  # one of PIECES: what of the address it holds
    name: str = ""  # the variable
    path: str | None = None  # the .env or source file
    line: int | None = None

    def describe(self) -> str:
        where = f"{self.path}:{self.line}" if self.path and self.line else (self.path or "")
        if self.kind == "env":
            return f"{self.name} (environment)"
        if self.kind == "dotenv":
            return f"{self.name} from {where}"
        return f"a {'URL' if self.piece == 'url' else self.piece} written at {where}"


@dataclass(frozen=True)
class Refusal:
    """A connection the worker refused: where it would have gone and what said so."""

    target: str  # host:port/database, never a password
    allowed: str  # the disposable database, host:port/database
    via: str  # psycopg.connect, a SQLAlchemy engine, ...
    sources: tuple[Source, ...] = ()
    file: str | None = None  # the user's frame that opened it (env.py, their settings)
    line: int | None = None
    during: str = "env.py"  # what was running: env.py, or the upgrade of revision R

    @property
    def variables(self) -> tuple[Source, ...]:
        """Sources an environment variable can override (the retry sets them)."""
        return tuple(s for s in self.sources if s.kind in ("env", "dotenv") and s.name)


def find_sources(
    refused: RefusedConnection,
    environ: Mapping[str, str],
    search_dirs: Iterable[Path],
    source_files: Iterable[Path],
    ignore: Iterable[str] = (),
    root: Path | None = None,
) -> tuple[Source, ...]:
    """Every variable (environment, .env files) and source line naming the refused target.
    `ignore`: variables the verifier itself set (they held our URL, not this one)."""
    skip = set(ignore)
    found: list[Source] = []
    for name, value in environ.items():
        if name in skip:
            continue
        piece = match(name, value, refused)
        if piece is not None:
            found.append(Source("env", piece, name))
    seen: set[Path] = set()
    for folder in search_dirs:
        for path in sorted(folder.glob(".env*")):
            real = path.resolve()
            if real in seen or not path.is_file():
                continue
            seen.add(real)
            for name, value, line in read_dotenv(path):
                piece = match(name, value, refused)
                if piece is not None:
                    found.append(Source("dotenv", piece, name, shown(path, root), line))
    for path in source_files:
        hit = _written_in(path, refused.target)
        if hit is not None:
            found.append(Source("file", hit[0], "", shown(path, root), hit[1]))
    return tuple(found)


def shown(path: object, root: Path | None) -> str | None:
    """A path as reports show it: relative to the repository root when inside it."""
    if path is None:
        return None
    p = Path(str(path)).resolve()
    if root is not None and (p == root or root in p.parents):
        return p.relative_to(root).as_posix()
    return p.as_posix()


def match(name: str, value: str, refused: RefusedConnection) -> str | None:
    """What of the refused address `value` holds (a PIECE), or None."""
    value = value.strip()
    if not value:
        return None
    target = refused.target
    if "://" in value or ("host=" in value and "dbname=" in value):
        return "url" if same_place(url_target(value), target) else None
    if not _DB_NAME.search(name):
        return None
    if any(_norm_host(value) == _norm_host(h) for h in target.hosts):
        return "host"
    if value == target.dbname:
        return "dbname"
    if value == target.user:
        return "user"
    if value == str(target.port):
        return "port"
    if refused.password and value == refused.password:
        return "password"
    return None


def url_target(value: str) -> Target:
    """The target a SQLAlchemy URL (any driver) or a libpq conninfo names."""
    scheme, sep, rest = value.partition("://")
    if sep:
        if not scheme.startswith("postgres"):
            return Target(hosts=(), port=-1, dbname=None, user=None)
        value = "postgresql://" + rest
    return conninfo_target(value, {})[0]


def same_place(a: Target, b: Target) -> bool:
    return (
        bool(a.hosts)
        and {_norm_host(h) for h in a.hosts} == {_norm_host(h) for h in b.hosts}
        and a.port == b.port
        and a.dbname == b.dbname
    )


def read_dotenv(path: Path) -> Iterator[tuple[str, str, int]]:
    """KEY=VALUE lines of a .env file (python-dotenv's format, without interpolation)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        name, _, value = line.partition("=")
        value = value.strip()
        if value[:1] in ("'", '"') and value[-1:] == value[:1] and len(value) > 1:
            value = value[1:-1]
        else:
            value = value.split(" #", 1)[0].strip()
        yield name.strip(), value, number


def _written_in(path: Path, target: Target) -> tuple[str, int] | None:
    """The first line of a source file that writes the refused address (a URL literal)."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    hosts = [h for h in target.hosts if h]
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0]
        for literal in re.findall(r"""(["'])(.*?)\1""", text):
            value = literal[1]
            if "://" in value and same_place(url_target(value), target):
                return "url", number
            if hosts and any(value == h for h in hosts) and not value.startswith("/"):
                return "host", number
    return None


def search_dirs(project_dir: Path, repo_root: Path) -> list[Path]:
    """Where `.env` files are looked for: the project directory and each folder up to the
    repository root (pydantic-settings and python-dotenv look in the working directory
    or walk up from it)."""
    dirs = [project_dir]
    here = project_dir
    while here != repo_root and repo_root in here.parents:
        here = here.parent
        dirs.append(here)
    return dirs


def explain_refusal(refusal: Refusal, retried: tuple[Source, ...] = ()) -> str:
    """The one message of a refused target (exit 2): where env.py tried to connect, what
    made it, how to fix it. Never a password."""
    where = f" at {refusal.file}:{refusal.line}" if refusal.file and refusal.line else ""
    lines = [
        f"refused target: {refusal.during} tried to connect to {refusal.target} (through "
        f"{refusal.via}{where}), not to the disposable database the verifier created "
        f"({refusal.allowed}). Nothing was sent to it, and nothing was verified."
    ]
    if refusal.sources:
        lines.append(
            "That address came from " + "; ".join(s.describe() for s in refusal.sources) + "."
        )
    else:
        lines.append(
            "No environment variable or .env file of the project holds that address: env.py "
            "builds it itself."
        )
    if retried:
        names = ", ".join(s.name for s in retried)
        lines.append(
            f"The verifier set {names} to its own database and tried again: env.py still "
            "connected elsewhere, so a .env file is loaded over the environment "
            "(load_dotenv(override=True)), or the address is written in the code."
        )
    urls = [s.name for s in refusal.variables if s.piece == "url"] or ["NAME"]
    written = [s for s in refusal.sources if s.kind == "file"]
    if written and not refusal.variables:
        lines.append(
            f"Fix: replace the address written at {written[0].path}:{written[0].line} with "
            "the URL env.py is handed: config.get_main_option('sqlalchemy.url') (as `alembic "
            "init` writes env.py), `-x dburl=...`, or an environment variable named with "
            "--url-env."
        )
        return "\n".join(lines)
    lines.append(
        "Fix: have env.py take its URL from the environment or from the verifier "
        f"(`--url-env {urls[0]}`, or `url-env: [{urls[0]}]` in .alembic-preflight.yml; in the "
        "GitHub action, set the variable under `env:`), from `-x dburl=...` "
        "(context.get_x_argument) or from config.get_main_option('sqlalchemy.url'); "
        "do not load a .env file over the environment."
    )
    return "\n".join(lines)
