"""Which setting made env.py connect elsewhere: an environment variable, a `.env` file, a
URL written in a source file (issue 13).

Runs in the worker, which alone knows the refused connection's password and the
environment as the verifier started (before it handed env.py its own URL); only names,
files and lines cross the pipe, never a value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from alembic_preflight.worker.connect_guard import (
    RefusedConnection,
    Target,
    _norm_host,
    conninfo_target,
)
from alembic_preflight.worker.protocol import Source

# names of variables that may hold one piece of a database address (POSTGRES_HOST, DB_NAME)
_DB_NAME = re.compile(r"DB|DATABASE|POSTGRES|PG|SQL", re.IGNORECASE)


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
