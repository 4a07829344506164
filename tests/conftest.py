"""Shared fixtures: a real PostgreSQL server and a way to run the real CLI."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import pytest

from alembic_preflight.database.base import Server
from alembic_preflight.database.embedded import start_embedded

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"


def load_script(relative: str) -> ModuleType:
    """A script of this repository that is no package's module (bench/run.py, scripts/...),
    loaded from its file as module `<folder>_<stem>` (bench_run, bench_generate)."""
    path = ROOT / relative
    spec = importlib.util.spec_from_file_location(f"{path.parent.name}_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def sarif_schema() -> Path:
    """The official SARIF 2.1.0 schema: the shared copy beside the checkout when there is
    one, else the copy kept in tests/schemas (a clone elsewhere has no ../shared)."""
    for candidate in (
        ROOT.parent / "shared" / "schemas" / "sarif-2.1.0.json",
        ROOT / "tests" / "schemas" / "sarif-2.1.0.json",
    ):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("sarif-2.1.0.json")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Server]:
    """One embedded PostgreSQL for tests that talk to a server directly."""
    with start_embedded() as server:
        yield server


@dataclass(frozen=True)
class CliResult:
    code: int
    stdout: str
    stderr: str
    report: dict[str, Any] | None

    def findings(self, rule: str | None = None) -> list[dict[str, Any]]:
        assert self.report is not None, self.stderr
        return [f for f in self.report["findings"] if rule is None or f["rule"] == rule]

    def check(self, check_id: str) -> dict[str, Any]:
        assert self.report is not None, self.stderr
        return next(c for c in self.report["checks"] if c["id"] == check_id)


def run_cli(
    *args: str | Path,
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
    report: bool = True,
    timeout: float = 300,
) -> CliResult:
    """The real CLI in a subprocess, as a user or CI runs it; the JSON report parsed."""
    argv = [sys.executable, "-m", "alembic_preflight", *map(str, args)]
    full_env = {
        k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CI_", "INPUT_"))
    }
    full_env.update({"NO_COLOR": "1", "COLUMNS": "200", "PYTHONWARNINGS": "ignore"})
    full_env.update(env or {})
    # the report in a directory of its own, gone with it (every run had left one in /tmp)
    with tempfile.TemporaryDirectory(prefix="preflight-test-") as tmp:
        report_path = None
        if report and args and args[0] in ("verify", "baseline"):
            report_path = Path(tmp) / "report.json"
            argv += ["--report-json", str(report_path)]
        proc = subprocess.run(
            argv, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
        )
        parsed = None
        if report_path is not None and report_path.exists():
            parsed = json.loads(report_path.read_text())
    return CliResult(proc.returncode, proc.stdout, proc.stderr, parsed)


def git(repo: Path, *args: str) -> str:
    """git in `repo`, as a test's own user (no global config, a fixed author); stdout."""
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_CONFIG_GLOBAL": os.devnull,
    }
    return subprocess.run(
        ["git", "-C", str(repo), *args], env=env, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def db(pg_server: Server) -> Iterator[Any]:
    """A fresh database on the shared server, as an autocommit connection; dropped after."""
    import uuid

    import psycopg

    name = f"seed_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.conninfo(), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    conn = psycopg.connect(pg_server.conninfo(name), autocommit=True)
    yield conn
    conn.close()
    with psycopg.connect(pg_server.conninfo(), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def project(tmp_path: Path) -> Any:
    """Copy a fixture project into a fresh directory (tests never touch the originals)."""

    def copy(name: str) -> Path:
        dest = tmp_path / name
        shutil.copytree(FIXTURES / name, dest, ignore=shutil.ignore_patterns("__pycache__"))
        return dest

    return copy


def marked_processes(marker: str) -> list[tuple[int, str]]:
    """(pid, command line, NUL-separated) of each process whose environment carries
    `marker`."""
    found = []
    for pid in os.listdir("/proc"):
        try:  # a process may end between the listing and either read
            env = Path(f"/proc/{pid}/environ").read_bytes()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in env:
            found.append((int(pid), cmdline.decode(errors="replace")))
    return found


def processes_with(marker: str) -> list[str]:
    """Processes whose environment carries `marker`: what the run started and left."""
    return [cmdline for _, cmdline in marked_processes(marker)]


def source_snapshot(dest: Path) -> Path:
    """This repository's files as a fresh clone of it would have them, into `dest`: what
    `git ls-files` lists (committed, changed or new, not ignored), not the build files,
    caches and virtualenvs of this checkout."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        check=True,
        capture_output=True,
        timeout=120,
    ).stdout.split(b"\0")
    for name in filter(None, (n.decode() for n in listed)):
        if (ROOT / name).is_file():  # a file deleted but not yet committed is listed too
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


def code_before_notes_title(proj: Path, *lines: str) -> None:
    """Revision b2c3d4e5f6a7 (notes.title, in the fixtures that read their URL from
    settings) runs `lines` at the start of its upgrade: a migration that, say, raises with
    the URL it was handed in its message."""
    rev = proj / "migrations" / "versions" / "b2c3d4e5f6a7_add_notes_title.py"
    anchor = '    op.add_column("notes"'
    rev.write_text(rev.read_text().replace(anchor, "".join(f"    {x}\n" for x in lines) + anchor))


_T = TypeVar("_T")


def through_asyncpg(url: str, fn: Callable[[Any], _T]) -> _T:
    """`fn(connection)` on a SQLAlchemy connection over asyncpg, as an async env.py runs
    its migrations (run_sync), in a transaction of its own."""
    import asyncio

    from sqlalchemy.ext.asyncio import create_async_engine

    async def run() -> _T:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn, conn.begin():
                return await conn.run_sync(fn)
        finally:
            await engine.dispose()

    return asyncio.run(run())
