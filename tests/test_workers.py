"""Workers started first thing (workers.py): a run takes the ones it uses, in order, and
stops the rest; the second is a copy of the first; the first reads alembic.ini for the
verifier; the lanes a run uses follow from its checks and --jobs."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from alembic_preflight.checks import CHECKS
from alembic_preflight.cli import report_options
from alembic_preflight.commands.verify import verify
from alembic_preflight.database.base import Server
from alembic_preflight.errors import ConfigError
from alembic_preflight.project import read_layout
from alembic_preflight.settings import ALL_CHECKS, DATABASE_CHECKS, Settings, build_settings
from alembic_preflight.worker.client import Forked, Prewarmed, start_worker, start_workers


def test_the_database_checks_are_those_that_need_a_database() -> None:
    assert {c.ID for c in CHECKS.values() if c.NEEDS_DB} == DATABASE_CHECKS


@pytest.mark.parametrize(
    ("checks", "jobs", "lanes"),
    [
        (("graph", "lint"), 2, 0),
        (("upgrade", "drift", "roundtrip"), 2, 1),
        (("stepwise",), 3, 3),
        (ALL_CHECKS, 1, 1),
    ],
)
def test_lanes_follow_the_checks_and_jobs(checks: tuple[str, ...], jobs: int, lanes: int) -> None:
    assert Settings(checks=checks, jobs=jobs).lanes == lanes


def test_a_run_takes_the_prewarmed_worker_it_uses_and_kills_the_other(
    project: Any, pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    proj: Path = project("sync_good")
    url = (
        f"postgresql://{pg_server.user}@/postgres?host={pg_server.socket_dir}&port={pg_server.port}"
    )
    settings = build_settings(
        proj, {"checks": ("upgrade",), "database": "url", "database_url": url}
    )
    options = report_options(settings, "console", None, None, None, None)
    started = [start_worker(), start_worker()]
    assert verify(settings, options, Prewarmed(list(started))) == 0
    assert "upgrade" in capsys.readouterr().out
    (used, _), (spare, _) = started
    assert used.exitcode == 0  # ran the upgrade, then was told to stop
    assert spare.exitcode == -signal.SIGKILL  # never needed: killed while it waited


def _parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rfind(")") + 2 :].split()[1])


def test_the_second_worker_is_a_copy_of_the_first_made_after_its_imports() -> None:
    started = start_workers(2)
    (first, _), (second, _) = started
    if not isinstance(second, Forked):
        pytest.skip("no pidfd here: each worker is a process of its own")
    prewarmed = Prewarmed(list(started))
    taken = [prewarmed.take(), prewarmed.take()]
    assert [t[0] for t in taken if t] == [first, second]
    assert second.pid is not None and _parent_of(second.pid) == first.pid
    assert first.is_alive() and second.is_alive()
    prewarmed.waiting = list(started)  # as if nobody had taken them: close stops both
    prewarmed.close()
    assert not first.is_alive() and not second.is_alive()


WARM_UP_IMPORTS = """
import sys
from alembic_preflight.worker import main

class Quiet:  # a verifier that never asks anything while the worker imports
    def poll(self):
        return False

assert "alembic" not in sys.modules and "pygments" not in sys.modules
main._warm_up(Quiet(), "psycopg")
import mako.exceptions
print("alembic" in sys.modules, "pygments" in sys.modules, mako.exceptions.pygments_html_formatter)
import mako.ext.pygmentplugin  # anyone may import it again afterwards
print("pygments" in sys.modules)
"""


def test_a_worker_imports_alembic_without_pygments_and_leaves_it_importable() -> None:
    # Mako (Alembic's templates) highlights its HTML error pages with Pygments when it
    # can: lexers a worker never uses, 30 to 50 ms of its start
    run = subprocess.run(
        [sys.executable, "-c", WARM_UP_IMPORTS], capture_output=True, text=True, check=True
    )
    assert run.stdout.split() == ["True", "False", "None", "True"]


def test_a_worker_starts_without_the_verifiers_records() -> None:
    # findings.py's records are the verifier's (~5 ms of a worker's start); seeding
    # imports its first_line only for a table it cannot fill
    script = WARM_UP_IMPORTS.split("import mako.exceptions")[0]
    script += 'print("alembic" in sys.modules, "alembic_preflight.findings" in sys.modules)\n'
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["True", "False"]


@pytest.mark.parametrize("asked_early", [False, True])
def test_a_worker_reads_alembic_ini_as_the_verifier_would(project: Any, asked_early: bool) -> None:
    proj: Path = project("sync_good")
    settings = build_settings(proj, {})
    with Prewarmed([start_worker()]) as prewarmed:
        if asked_early:  # as the command does, before its own imports
            prewarmed.ask_layout(settings)
        assert prewarmed.layout(settings) == read_layout(settings.ini_path, "alembic", proj)
        ini = proj / "alembic.ini"
        ini.write_text(ini.read_text().replace("%(here)s/migrations", "%(here)s/nowhere"))
        with pytest.raises(ConfigError) as in_process:
            read_layout(settings.ini_path, "alembic", proj)
        with pytest.raises(ConfigError) as in_worker:
            prewarmed.layout(settings)
        assert str(in_worker.value) == str(in_process.value)
        assert "nowhere" in str(in_worker.value)


def test_a_layout_asked_for_and_never_read_is_not_taken_for_an_answer(project: Any) -> None:
    """The command asks the first worker for alembic.ini's layout before it needs it; a
    run that never reads the answer (it loaded the project otherwise) must not hand that
    worker over with the answer still in its pipe, where the first request's would be."""
    settings = build_settings(project("sync_good"), {})
    with Prewarmed([start_worker()]) as prewarmed:
        prewarmed.ask_layout(settings)
        _, conn = prewarmed.waiting[0]
        assert conn.poll(60)  # the answer has come
        taken = prewarmed.take()
        assert taken is not None and taken[1] is conn
        assert not conn.poll(0)  # and was read, not left for the first request
        prewarmed.waiting = [taken]  # stopped on leaving


def _workers_with(marker: str) -> list[int]:
    """Processes started with `marker` in their environment, but multiprocessing's
    resource tracker (its own helper: it ends once it reads that the verifier has)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                mine = marker.encode() in (entry / "environ").read_bytes()
                if mine and b"resource_tracker" not in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.parametrize("argv", [("verify", "--help"), ("verify", "/nonexistent")])
def test_workers_started_before_the_command_line_is_read_end_with_the_run(
    argv: tuple[str, ...],
) -> None:
    marker = f"PREFLIGHT_TEST_MARK={uuid.uuid4().hex}"
    env = {**os.environ, marker.split("=")[0]: marker.split("=")[1]}
    # not captured: a pipe would make run() wait for every process holding it
    proc = subprocess.run(
        [sys.executable, "-m", "alembic_preflight", *argv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert proc.returncode in (0, 2)
    assert _workers_with(marker) == []


_UNREACHABLE = "postgresql://nobody@127.0.0.1:1/nothing"  # nothing is ever made


# The ways in: the console script, and the image's entry point (`docker run IMAGE verify`,
# GitLab CI); the action itself is below
_ENTRY_POINTS = {
    "console script": ["alembic_preflight"],
    "image": ["alembic_preflight.action"],
}


@pytest.mark.skipif(sys.platform != "linux", reason="forked on Linux only")
@pytest.mark.parametrize("entry", sorted(_ENTRY_POINTS))
def test_workers_forked_from_the_verifier_end_when_it_is_killed(entry: str) -> None:
    """On Linux the first worker is a copy of the verifier made before its command line is
    read (worker/client.py: start_early), whichever way it was started. Killed at once
    (SIGKILL: nothing of ours runs), the verifier leaves its workers only their pipes:
    they must see them close, so they must not hold the verifier's ends too."""
    marker = f"PREFLIGHT_TEST_MARK={uuid.uuid4().hex}"
    env = {**os.environ, marker.split("=")[0]: marker.split("=")[1]}
    argv = ["verify", ".", "--database", "url", "--database-url", _UNREACHABLE]
    proc = subprocess.Popen(
        [sys.executable, "-m", *_ENTRY_POINTS[entry], *argv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _, cmdline = _first_worker(proc, marker)
        # forked: the verifier's own command line, not multiprocessing's
        assert b"\0verify\0" in cmdline
    finally:
        _killed_leaves_none(proc, marker)


@pytest.mark.skipif(sys.platform != "linux", reason="forked on Linux only")
@pytest.mark.parametrize("install", ["", "true"])
def test_the_action_forks_its_first_worker_unless_it_installed_something(
    tmp_path: Path, install: str
) -> None:
    """The action (`github-action`) starts its workers before the command line is read
    too: forked, but after its `install:` input new interpreters, which read the .pth
    files an editable install adds (a copy of the verifier has only its sys.path)."""
    marker = f"PREFLIGHT_TEST_MARK={uuid.uuid4().hex}"
    env = {
        **os.environ,
        marker.split("=")[0]: marker.split("=")[1],
        "GITHUB_WORKSPACE": str(tmp_path),
        "INPUT_DATABASE": "url",
        "INPUT_DATABASE-URL": _UNREACHABLE,
        "INPUT_INSTALL": install,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "alembic_preflight.action", "github-action"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _, cmdline = _first_worker(proc, marker)
        assert (b"github-action" in cmdline) is (not install), cmdline
        assert (b"multiprocessing" in cmdline) is bool(install), cmdline
    finally:
        _killed_leaves_none(proc, marker)


def _first_worker(proc: subprocess.Popen[bytes], marker: str) -> tuple[int, bytes]:
    """The verifier's first child that runs Python: its worker (not what `install:` or
    git run, though a child of theirs shows the verifier's command line until its exec:
    a worker is still there, the same, a moment later), and its command line as read then
    (the worker may be gone by the time a caller would read it again)."""
    deadline = time.monotonic() + 10
    while True:
        mine = [w for w in _workers_with(marker) if _child_of(w, proc.pid) and _python(w)]
        if mine:
            cmdline = Path(f"/proc/{mine[0]}/cmdline")
            with contextlib.suppress(OSError):
                seen = cmdline.read_bytes()
                time.sleep(0.05)
                if cmdline.read_bytes() == seen and _child_of(mine[0], proc.pid):
                    return mine[0], seen
        assert proc.poll() is None, "the verifier ended before its worker was seen"
        assert time.monotonic() < deadline, "no worker was started"
        time.sleep(0.005)


def _python(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().startswith(sys.executable.encode())
    except OSError:
        return False


def _child_of(pid: int, parent: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return int(stat.rsplit(")", 1)[1].split()[1]) == parent


def _killed_leaves_none(proc: subprocess.Popen[bytes], marker: str) -> None:
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 20  # a worker still importing sees it after its imports
    while _workers_with(marker):
        assert time.monotonic() < deadline, "the workers outlived the verifier"
        time.sleep(0.05)


_FORKED_APART = """
from alembic_preflight.worker import client
client._can_watch_forks = lambda: False  # as on a kernel without pidfd: two forks
(first, _), (second, pipe) = client.start_workers(2, fork=True)
second.kill()
second.join(5)
try:
    said = "open" if not pipe.poll(3) else pipe.recv()
except EOFError:
    said = "closed"
first.kill()
first.join(5)
print(said)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="forked on Linux only")
def test_a_forked_worker_holds_no_other_workers_pipe() -> None:
    """Where the second worker cannot be a copy of the first (no pidfd), both are forked
    from the verifier: the first must not keep the second's end of its pipe open, or the
    verifier would never see the second die."""
    proc = subprocess.run([sys.executable, "-c", _FORKED_APART], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["closed"]


def test_every_module_a_worker_warms_up_exists() -> None:
    """A worker imports these before the first request, and before its sibling is forked
    from it: a name that is no module (one moved elsewhere) fails silently there, and each
    worker then pays for the import in its first request."""
    from alembic_preflight.worker.main import _DRIVER_MODULES, _WARM

    for name in (*_WARM, *_DRIVER_MODULES["psycopg"]):
        assert importlib.util.find_spec(name) is not None, name


# Patched before env.py runs, imported only when env.py imports them (connect_guard, engines):
# a driver or SQLAlchemy's asyncio imported afterwards, or before, is guarded and cached.
_LATE_PATCHES = """
import asyncio, sys
from alembic_preflight.worker import connect_guard, engines
if sys.argv[1] == "before":
    import asyncpg, psycopg, psycopg2, sqlalchemy.ext.asyncio
connect_guard.install(connect_guard.Allowed(frozenset({"127.0.0.1"}), 5432, "ours"))
engines.cache_engines()
engines.async_engine_from_sync()
late = ("asyncpg", "psycopg", "psycopg2", "sqlalchemy.ext.asyncio")
print("imported:", sorted(set(late) & set(sys.modules)))
import asyncpg, psycopg, psycopg2
from sqlalchemy.ext import asyncio as sa_asyncio
refused = []
for name, connect in (
    ("psycopg", lambda: psycopg.connect("host=127.0.0.1 port=5432 dbname=production")),
    ("psycopg2", lambda: psycopg2.connect("host=127.0.0.1 port=5432 dbname=production")),
    ("asyncpg", lambda: asyncio.run(asyncpg.connect("postgresql://u@127.0.0.1:5432/production"))),
):
    try:
        connect()
    except connect_guard.RefusedConnection:
        refused.append(name)
print("refused:", refused)
print("cached:", sa_asyncio.create_async_engine._preflight_cached,
      sa_asyncio.async_engine_from_config._preflight_cached,
      sa_asyncio.AsyncEngine.__init__._preflight_async)
"""


@pytest.mark.parametrize("imported", ["after", "before"])
def test_drivers_and_async_engines_are_patched_whenever_they_are_imported(imported: str) -> None:
    """The worker guards each driver and caches SQLAlchemy's async engines without importing
    them (a sync project never pays for asyncpg or the ORM that sqlalchemy.ext.asyncio
    brings): one env.py imports later is patched then, one imported earlier at once. Each
    refusal is the guard's: an unguarded connect raises the driver's own error (or
    connects), never RefusedConnection."""
    out = subprocess.run(
        [sys.executable, "-c", _LATE_PATCHES, imported],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.splitlines()
    late = "['asyncpg', 'psycopg', 'psycopg2', 'sqlalchemy.ext.asyncio']"
    assert out == [
        f"imported: {late if imported == 'before' else '[]'}",
        "refused: ['psycopg', 'psycopg2', 'asyncpg']",
        "cached: True True True",
    ]


class _JoinAfter:
    """A real worker process whose join() first waits for `other` to be set: so a second
    thread stops the same lane while the first is inside its stop."""

    def __init__(self, proc: Any, entered: Any, other: Any) -> None:
        self.proc, self.entered, self.other = proc, entered, other

    def join(self, timeout: float | None = None) -> None:
        self.entered.set()
        self.other.wait(10)
        self.proc.join(timeout)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.proc, name)


def test_a_worker_stopped_by_two_threads_at_once_is_stopped_once(
    project: Any, pg_server: Server
) -> None:
    """An interrupted run closes the workbench while a lane's thread, which saw its worker
    killed, stops that worker too (checks.base.in_threads): neither may find the lane's
    worker gone under it (CI once ended a cancelled run with AttributeError, exit 3), and
    the lane's thread may start no new worker then."""
    import threading

    from alembic_preflight.project import load_project
    from alembic_preflight.workbench import Closing, Lane, Workbench

    settings = build_settings(project("sync_good"), {})
    bench = Workbench(settings, load_project(settings), pg_server)
    proc, conn = start_worker()
    entered, other = threading.Event(), threading.Event()
    lane = Lane(dbname="nothing", url="", log_path=Path("/nonexistent"))
    lane.process, lane.conn = _JoinAfter(proc, entered, other), conn
    bench.lanes.append(lane)
    errors: list[BaseException] = []

    def first() -> None:
        try:
            bench._stop_worker(lane)
        except BaseException as e:
            errors.append(e)

    thread = threading.Thread(target=first)
    thread.start()
    assert entered.wait(10)
    bench.close(hurry=True)  # the second, while the first waits in join()
    other.set()
    thread.join(20)
    assert errors == []
    assert not proc.is_alive() and lane.process is None and lane.conn is None
    with pytest.raises(Closing):
        bench.run("probe", lane=0)
