"""The cyclic garbage collector is paused while a process starts (collector.pause, in
__main__ and in each worker) and runs again once what was loaded is kept for good
(collector.keep_all): a run must not go on with it off, or a long walk's garbage cycles
would pile up. In a process of its own: the collector is the interpreter's, not a test's."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

_SCRIPT = """
import gc
from alembic_preflight import collector
collector.pause()
assert not gc.isenabled()
import sqlalchemy.dialects.postgresql  # what a worker loads while paused
collector.keep_all()
print(gc.isenabled(), gc.get_freeze_count() > 10_000)
"""


def test_the_collector_runs_again_once_the_start_is_kept() -> None:
    proc = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "True"]


# the console script, and the image's entry point (`docker run IMAGE verify`)
_ENTRY_POINTS = {
    "console script": "from alembic_preflight.__main__ import run\nrun()\n",
    "image": "from alembic_preflight.action import main\nsys.exit(main(sys.argv[1:]))\n",
}


@pytest.mark.parametrize("entry", sorted(_ENTRY_POINTS))
def test_a_verify_run_ends_its_start_with_the_collector_running(project: Any, entry: str) -> None:
    """The verifier's own process: paused from its start on (the console script's and the
    image's alike), running again after the project is loaded (commands/verify.py calls
    keep_all); --checks graph needs no database, so the run is quick."""
    script = (
        "import atexit, gc, os, sys\n"
        "sys.argv = ['alembic-preflight', 'verify', '.', '--checks', 'graph']\n"
        "from alembic_preflight import collector\n"
        "keep = collector.keep_all\n"
        "def told():\n"
        "    before = gc.isenabled()\n"
        "    keep()\n"
        "    os.write(2, b'KEPT %d %d\\n' % (before, gc.isenabled()))\n"
        "collector.keep_all = told\n" + _ENTRY_POINTS[entry]
    )
    proj = project("sync_good")
    proc = subprocess.run([sys.executable, "-c", script], cwd=proj, capture_output=True, text=True)
    assert "KEPT 0 1" in proc.stderr, proc.stderr
