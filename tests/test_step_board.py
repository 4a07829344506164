"""The step board (worker/step_board.py): a walk's worker forked from the verifier says
which step and revision function it starts in memory the two share, not in a message
each; the verifier reads it when a step's time is up and when the worker answers, hangs
or dies. Real forks, a real walk on a real PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from alembic_preflight.worker.step_board import StepBoard

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="forked on Linux only")


def test_what_a_fork_writes_is_read_here_the_latest_last() -> None:
    board = StepBoard()
    assert board.read().seq == 0 and board.read().latest(0) is None
    pid = os.fork()
    if pid == 0:  # the copy writes and ends: nothing else (no import, no lock)
        ok = board.step("a1", "upgrade") and board.running("a1", True)
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    reading = board.read()
    assert reading.step is not None and reading.running is not None
    assert (reading.step.revision, reading.step.number, reading.step.running) == ("a1", 1, False)
    assert (reading.running.revision, reading.running.number) == ("a1", 1)
    assert reading.latest(0) == reading.running  # written second
    assert reading.latest(reading.step.seq) == reading.running
    assert reading.latest(reading.seq) is None  # nothing since


def test_what_cannot_be_written_is_sent_and_the_board_says_it_came_last() -> None:
    board = StepBoard()
    assert board.step("a1", "upgrade")
    assert not board.step("a1", "sample")  # not a step of the board's
    assert not board.running("x" * 241, False)  # longer than the board holds
    reading = board.read()
    assert reading.step is not None and reading.step.sent
    assert reading.running is not None and reading.running.sent
    assert reading.latest(0) == reading.running


# In a process of its own: the worker is forked from it, as `verify` forks its first
# worker before any thread starts (pytest's process has threads).
_WALK = """
import json, sys
from pathlib import Path
from alembic_preflight.worker import client
started = client.start_workers(1, fork=True)
from alembic_preflight.database.embedded import start_embedded
from alembic_preflight.project import load_project
from alembic_preflight.settings import build_settings
from alembic_preflight.workbench import Workbench
from alembic_preflight.worker.protocol import WALK, WalkRequest
settings = build_settings(Path(sys.argv[1]), {"step_timeout": float(sys.argv[2])})
heard = []
with start_embedded() as server:
    bench = Workbench(settings, load_project(settings), server, prewarmed=client.Prewarmed(started))
    with bench.open(lanes=1):
        steps = (("a1b2c3d4e5f6", True), ("b2c3d4e5f6a7", True))
        request = WalkRequest(steps=steps, seed=True, exclude=("alembic_version",), known=())
        outcome = bench.run(WALK, request, on_progress=heard.append)
f = outcome.failure
print(json.dumps({
    "heard": [[m.revision, m.step] for m in heard],
    "failure": [f.kind.value, f.revision, f.phase] if f else None,
}))
"""


def _walk(proj: Path, how: str, timeout: float, **env: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", _WALK, str(proj), str(timeout)],
        capture_output=True, text=True, env={**os.environ, "DIE_HOW": how, **env},
        timeout=120, cwd=proj,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    said: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    return said


@pytest.mark.parametrize("how", ["exit", "hang"])
def test_a_walk_sends_no_step_and_its_death_or_hang_is_placed_from_the_board(
    project: Any, how: str
) -> None:
    """The walk upgrades, downgrades and upgrades a1b2c3d4e5f6 again, then dies in (or
    hangs in) b2c3d4e5f6a7's upgrade. Only the revision done came as a message; the step
    the worker stopped in is read from the board, and the failure is placed there."""
    said = _walk(project("revision_dies"), how, 2)
    assert said["heard"] == [["a1b2c3d4e5f6", "done"], ["b2c3d4e5f6a7", "upgrade"]]
    kind = "worker-crash" if how == "exit" else "timeout"
    assert said["failure"] == [kind, "b2c3d4e5f6a7", "upgrade"]


def test_each_step_written_on_the_board_has_its_own_time(project: Any) -> None:
    """--step-timeout bounds each step, as when each step was a message: b2c3d4e5f6a7's
    upgrade, downgrade and upgrade again take 2.8 s each against a limit of 3 s, 8.4 s
    in all after the last message (a1b2c3d4e5f6 done), more than that message's own
    allowance (3 s, and 5 for env.py)."""
    said = _walk(project("revision_dies"), "slow", 3, SLOW_S="2.8")
    assert said["failure"] is None
    assert said["heard"] == [["a1b2c3d4e5f6", "done"], ["b2c3d4e5f6a7", "done"]]
