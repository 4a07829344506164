"""Worker processes, started first thing so their imports overlap the verifier's own.

Why (issue 7): a worker spends ~0.5 s importing Alembic and SQLAlchemy before it can run
a migration, and the verifier spends as long importing them and loading the project
before it asks for one. Started one after the other, that is a second a run waits for;
started together, they share the machine's cores. A prewarmed worker does nothing but
import until the workbench hands it its `WorkerInit` (project, database URL, log file).

Light on purpose (the standard library and worker/protocol.py): `start_early` runs before
anything else the verifier imports, and on Linux forks the first worker from the verifier
as it is then (no thread, ~50 ms of imports): it starts ~0.1 s sooner than a spawned one
(a new interpreter, and multiprocessing's resource tracker beside it), and imports
worker/main.py, which the verifier itself never needs, on its own core.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import re
import select
import signal
import sys
import time
import weakref
from contextlib import suppress
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any, Protocol

from alembic_preflight.worker.deadlines import Deadlines
from alembic_preflight.worker.protocol import STACK_SUFFIX, LayoutRefused, LayoutRequest
from alembic_preflight.worker.step_board import StepBoard, share

if TYPE_CHECKING:
    from alembic_preflight.project import Layout
    from alembic_preflight.settings import Settings


class WorkerProcess(Protocol):
    """What the workbench does with a worker's process (multiprocessing's, or Forked)."""

    @property
    def exitcode(self) -> int | None: ...

    @property
    def pid(self) -> int | None: ...

    def is_alive(self) -> bool: ...

    def join(self, timeout: float | None = None) -> None: ...

    def kill(self) -> None: ...


Started = tuple[WorkerProcess, Connection]

# Workers `start_early` started before the command line was read, for `prewarm` to take.
_EARLY: list[Started] = []


def start_worker(driver: str = "psycopg") -> Started:
    """A worker process, importing what it will need; send it a WorkerInit first."""
    return start_workers(1, driver)[0]


def start_workers(count: int, driver: str = "psycopg", *, fork: bool = False) -> list[Started]:
    """`count` workers: one process that imports, then forks the others from itself.

    Why: importing Alembic and SQLAlchemy costs each worker ~0.5 s of a core, at the time
    the verifier needs the cores for its own start. A copy made after the imports has
    them for free (its memory is the first one's until either writes to it). The copies
    are the first worker's children, not ours: we watch them through a pidfd (Linux);
    elsewhere each worker is a process of its own.

    The first one is spawned (a new interpreter), or with `fork` a copy of this process
    (start_early: ours has no thread and has imported almost nothing yet)."""
    ctx = multiprocessing.get_context("fork") if fork else multiprocessing.get_context("spawn")
    pipes = [ctx.Pipe() for _ in range(count)]
    forks = count - 1 if _can_watch_forks() else 0
    # copies of this process share memory with it: each says where its walk is on a
    # board (worker/step_board.py), not in messages; a spawned worker has none
    boards = [StepBoard() for _ in range(count)] if fork else []
    for i, board in enumerate(boards):
        share(pipes[i][0], board)
    started: list[Started] = []
    for i in range(count - forks):
        siblings = tuple(child for _, child in pipes[1:]) if i == 0 and forks else ()
        args: tuple[Any, ...] = (pipes[i][1], driver, siblings)
        if fork:  # the copy holds every end we hold: all but its own closed first thing
            keep = {id(pipes[i][1]), *map(id, siblings)}
            others = tuple(c for pair in pipes for c in pair if id(c) not in keep)
            mine = (boards[i], *(boards[1:] if siblings else ()))
            args = (others, *args, mine)
        proc = ctx.Process(target=_forked_worker if fork else _worker, args=args, daemon=True)
        proc.start()
        started.append((proc, pipes[i][0]))
    for _, child in pipes:
        child.close()
    started += [(Forked(parent), parent) for parent, _ in pipes[count - forks :]]
    return started


def _worker(*args: Any) -> None:
    """A worker's process: worker/main.py, imported there, not here (the verifier itself
    never needs what it imports: ~50 ms of its start, before its first worker starts)."""
    from alembic_preflight.worker.main import worker_main

    worker_main(*args)


def _forked_worker(others: tuple[Connection, ...], *args: Any) -> None:
    """A worker forked from the verifier: without the ends of pipes that are not its own
    (the verifier's, else it would never see them close; another worker's, else the
    verifier would not see that one's close) and with Python's own Ctrl-C and SIGTERM, as
    a spawned one has (the image's entry point turns SIGTERM into Ctrl-C before it forks)."""
    for conn in others:
        conn.close()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _worker(*args)


def _can_watch_forks() -> bool:
    if not hasattr(os, "pidfd_open") or not hasattr(os, "fork"):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:  # a kernel before 5.3, or a sandbox that refuses it
        return False
    return True


@dataclass
class Forked:
    """A worker another worker forked: not our child, so watched through a pidfd. It says
    its pid first thing on its pipe; `attach` reads it."""

    conn: Connection
    pid: int | None = None
    _fd: int | None = None

    def attach(self, timeout: float = 60) -> bool:
        if self._fd is None:
            try:
                if not self.conn.poll(timeout):
                    return False
                self.pid = int(self.conn.recv())
                self._fd = os.pidfd_open(self.pid)
                # closed with this object, not when the worker ends: the lane's thread
                # and the workbench may watch or kill it at once, and a descriptor closed
                # under one of them could be another's by then
                weakref.finalize(self, os.close, self._fd)
            except (OSError, EOFError, ValueError, TypeError):
                return False
        return True

    @property
    def exitcode(self) -> int | None:
        return None  # only its parent may know

    def is_alive(self) -> bool:
        return self._fd is not None and not select.select([self._fd], [], [], 0)[0]

    def join(self, timeout: float | None = None) -> None:
        if self._fd is not None:
            select.select([self._fd], [], [], timeout)  # readable once it has ended

    def kill(self) -> None:
        if self._fd is not None:
            with suppress(OSError):
                signal.pidfd_send_signal(self._fd, signal.SIGKILL)


@dataclass
class Prewarmed:
    """Workers started before anyone asked; the workbench takes them one by one."""

    waiting: list[Started] = field(default_factory=list)
    # the LayoutRequest the first waiting worker was sent and has not been heard on yet
    asked: LayoutRequest | None = None

    def take(self) -> Started | None:
        if self.asked is not None:  # its answer first: it must not read as a request's
            self._answer()
        while self.waiting:
            proc, conn = self.waiting.pop(0)
            if (not isinstance(proc, Forked) or proc.attach()) and proc.is_alive():
                return proc, conn
            conn.close()
        return None

    def ask_layout(self, settings: Settings) -> None:
        """Send the first waiting worker the request `layout` answers, now: it reads
        alembic.ini between two of its imports while the verifier does its own (~0.1 s),
        where asked at `layout` the verifier waited for it (~60 ms)."""
        if not self.waiting or self.asked is not None:
            return
        request = _layout_request(settings)
        try:
            self.waiting[0][1].send(request)
        except OSError:  # gone: `layout` finds out and says nothing
            return
        self.asked = request

    def layout(self, settings: Settings) -> Layout | None:
        """alembic.ini as Alembic reads it, read by the first waiting worker; None when
        none is waiting or it could not say (then the caller reads it itself)."""
        if self.asked not in (None, _layout_request(settings)):
            self._answer()  # asked about another file: that answer is not this one's
        self.ask_layout(settings)
        if not self.waiting:
            return None
        answer = self._answer()
        if isinstance(answer, LayoutRefused):
            from alembic_preflight.errors import ConfigError

            raise ConfigError(answer.message)
        return answer

    def _answer(self) -> Any:
        """The first waiting worker's answer to `asked`; None (and that worker stopped)
        when none comes."""
        self.asked = None
        if not self.waiting:
            return None
        _, conn = self.waiting[0]
        try:
            # a worker still importing answers when it is done
            answered = conn.poll(60)
            answer = conn.recv() if answered else None
        except (OSError, EOFError):
            answered, answer = False, None
        if not answered:  # its answer could still come, where a request's should: not
            Prewarmed([self.waiting.pop(0)]).close()  # a worker of ours any more
            return None
        return answer

    def close(self) -> None:
        """Stop the workers nobody took (a run with fewer lanes, or none). They hold
        nothing yet (no connection, no file), and may still be importing: killed."""
        for proc, conn in self.waiting:
            with suppress(OSError):
                proc.kill()  # one not forked yet ends on its own: its pipe closes here
            conn.close()
        for proc, _ in self.waiting:
            proc.join(timeout=5)
        self.waiting, self.asked = [], None

    def __enter__(self) -> Prewarmed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _layout_request(settings: Settings) -> LayoutRequest:
    return LayoutRequest(str(settings.ini_path), settings.name, str(settings.project_dir.resolve()))


def start_early(*, fork: bool = True) -> None:
    """Workers for a `verify` whose command line is not read yet (reading it costs ~0.2 s
    with Typer): as many as a run uses by default; `prewarm` keeps what the run needs.
    `fork=False`: spawned, never copies of this process."""
    import threading

    # forked where that is safe: no thread of ours yet, and Linux (elsewhere a fork of a
    # process that loaded system frameworks may not work)
    fork = fork and sys.platform == "linux" and threading.active_count() == 1
    _EARLY.extend(start_workers(max(1, min(2, os.cpu_count() or 1)), fork=fork))


def take_early() -> list[Started]:
    """The workers start_early started, now yours (none after the first call)."""
    early = list(_EARLY)
    _EARLY.clear()
    return early


def prewarm(settings: Settings) -> Prewarmed:
    """One worker per lane the run will use, and one at least: it reads alembic.ini."""
    wanted = max(1, settings.lanes)
    early = take_early()
    taken, unused = early[:wanted], early[wanted:]
    Prewarmed(unused).close()
    if wanted > len(taken):
        taken += start_workers(wanted - len(taken), settings.driver)
    return Prewarmed(taken)


# -- when a worker hangs or dies (issue 15) --------------------------------------------------
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+)', re.M)


def sample_stack(proc: WorkerProcess, log_path: str, wait: float = 0.5) -> str:
    """The stack of a worker that does not answer: faulthandler dumps it on SIGUSR1 into
    the .stack file beside its log (even inside C code, a driver waiting on a socket)."""
    path = log_path + STACK_SUFFIX
    if proc.pid is None or not hasattr(signal, "SIGUSR1"):
        return ""
    with suppress(OSError):
        os.kill(proc.pid, signal.SIGUSR1)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if os.path.getsize(path):
                time.sleep(0.05)  # let it finish writing
                break
            time.sleep(0.02)
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def line_in(dump: str, file: str) -> int | None:
    """The line being run in `file`, the innermost such frame of a faulthandler dump (most
    recent call first) or a traceback (most recent call last)."""
    real = os.path.realpath(file)
    frames = [(os.path.realpath(m["file"]), int(m["line"])) for m in _FRAME.finditer(dump)]
    if "most recent call first" not in dump:
        frames.reverse()
    return next((line for path, line in frames if path == real), None)


def how_it_ended(proc: WorkerProcess) -> str:
    code = proc.exitcode
    if code is None:  # a forked lane's worker is not our child: its status is its parent's
        return "its exit status cannot be read here"
    if code < 0:
        with suppress(ValueError):
            return f"killed by signal {signal.Signals(-code).name}"
    return f"exit code {code}"


def end_group(proc: WorkerProcess) -> None:
    """Whatever a migration started in the worker's process group (it forked, or started
    `sleep`) ends with it: such children would hold pipes open after the run."""
    if proc.pid is not None:
        with suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)


def readable(conn: Connection, timeout: float) -> bool:
    """`conn.poll(timeout)`, in one poll(2): multiprocessing makes, fills and closes a
    selector for every call (~30 us of the verifier's CPU a message, ~870 messages at 100
    revisions). True also at the end of the pipe, as poll() is: recv() then says so.
    OSError when `conn` is closed, as poll() raises."""
    if not hasattr(select, "poll"):  # (not on Windows)
        return conn.poll(timeout)
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN)
    return bool(poller.poll(max(0, math.ceil(timeout * 1000))))


def recv_within(conn: Connection, proc: WorkerProcess | None, limit: float) -> Any:
    """One message from a worker, within `limit` seconds and one more: a migration that
    writes into our pipe (a fork, a stray fd) can begin a message that never ends, which
    recv() would wait for forever; then the worker is killed and recv() ends. What cannot
    be read ends the worker too: nothing more from it is trusted."""
    try:
        with _DEADLINES.within(limit + 1, lambda: proc.kill() if proc is not None else None):
            return conn.recv()
    except Exception:
        if proc is not None and proc.is_alive():
            proc.kill()
        raise


_DEADLINES = Deadlines()
