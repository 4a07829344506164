"""Progress while the long checks run, through the real CLI: plain lines in a CI log (no
TTY), bars on a terminal (a pseudo-terminal as stderr), never on stdout."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from tests.checks.histories import Rev, long_history, write_project
from tests.conftest import run_cli

LINE = re.compile(r"^alembic-preflight: (\w+): (\d+)/(\d+) (revisions|steps), (\d+) s$", re.M)


def _lines(stderr: str, check: str) -> list[tuple[int, int]]:
    return [(int(m[2]), int(m[3])) for m in LINE.finditer(stderr) if m[1] == check]


def _slow_start(n: int) -> list[Rev]:
    """n revisions, the first of which takes 3.5 s to upgrade: past the first seconds of a
    check, when nothing is said yet (output_progress.QUIET_S)."""
    revs = long_history(n)
    first = revs[0]
    revs[0] = replace(first, upgrade=first.upgrade + "\ntime.sleep(3.5)", imports="import time\n")
    return revs


def test_a_ci_log_gets_a_line_per_tenth_of_each_long_check(tmp_path: Path) -> None:
    """Two lanes, upgrade and roundtrip beside the walk: past its first seconds, each
    check says each tenth of its total, counting up to the total, on stderr only."""
    write_project(tmp_path, _slow_start(60))
    checks = "upgrade,roundtrip,stepwise"
    r = run_cli("verify", tmp_path, "--database", "embedded", "--checks", checks, "--jobs", "2")
    assert r.code == 0, r.stdout + r.stderr
    assert "2 parallel lanes" in r.check("stepwise")["note"]
    # upgrade runs every revision once; roundtrip copies upgrade's head, then runs every
    # downgrade and every upgrade again (two steps a revision)
    for check, total in (("stepwise", 60), ("upgrade", 60), ("roundtrip", 120)):
        said = _lines(r.stderr, check)
        assert {t for _, t in said} == {total}, (check, r.stderr)
        counts = [d for d, _ in said]
        assert counts == sorted(set(counts)), (check, r.stderr)  # only ever up
        assert counts[-1] == total, (check, r.stderr)
        # from the first line on, a line at each tenth (and every 10 s on a slow machine)
        tenths = {d * 10 // total for d in counts}
        assert tenths >= set(range(min(tenths), 11)), (check, r.stderr)
        # the last count comes before the check's own line, never after it
        ours = [
            ln for ln in r.stderr.splitlines() if ln.startswith(f"alembic-preflight: {check}: ")
        ]
        assert ours[-1].startswith(f"alembic-preflight: {check}: passed in "), r.stderr
    # upgrade's first revision is the slow one: every tenth after it is said
    assert {d * 10 // 60 for d, _ in _lines(r.stderr, "upgrade")} == set(range(1, 11))
    assert "revisions," not in r.stdout and "steps," not in r.stdout


def test_a_short_history_gets_no_progress_lines(tmp_path: Path) -> None:
    """Done in a second or two: the log holds each check's result line only."""
    write_project(tmp_path, long_history(6))
    r = run_cli(
        "verify", tmp_path, "--database", "embedded", "--checks", "upgrade,roundtrip,stepwise"
    )
    assert r.code == 0, r.stdout + r.stderr
    assert LINE.search(r.stderr) is None, r.stderr
    assert "alembic-preflight: stepwise: passed in " in r.stderr


# -- on a terminal ---------------------------------------------------------------------
HIDE, SHOW = "\x1b[?25l", "\x1b[?25h"


def _on_a_terminal(
    project: Path, *args: str, interrupt_when: str | None = None
) -> tuple[int, str, str]:
    """The CLI with a pseudo-terminal as stderr and a pipe as stdout: (exit code, what
    the terminal got, stdout). `interrupt_when`: Ctrl-C once the terminal shows it."""
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CI_"))}
    env.update({"TERM": "xterm", "COLUMNS": "120", "NO_COLOR": "1", "PYTHONWARNINGS": "ignore"})
    for name in ("TTY_INTERACTIVE", "TTY_COMPATIBLE", "FORCE_COLOR"):
        env.pop(name, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "alembic_preflight", "verify", str(project), *args],
        stdout=subprocess.PIPE,
        stderr=slave,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    seen = b""
    interrupted = False
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every holder of the terminal has closed it
                    break
                if not chunk:
                    break
                seen += chunk
            elif proc.poll() is not None:
                break
            if interrupt_when and not interrupted and interrupt_when.encode() in seen:
                proc.send_signal(signal.SIGINT)
                interrupted = True
        stdout = proc.communicate(timeout=60)[0].decode()
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, seen.decode(errors="replace"), stdout


def test_a_terminal_gets_bars_per_lane_that_are_gone_before_the_report(tmp_path: Path) -> None:
    write_project(tmp_path, long_history(60))
    code, terminal, stdout = _on_a_terminal(
        tmp_path, "--database", "embedded", "--checks", "upgrade,roundtrip,stepwise", "--jobs", "2"
    )
    assert code == 0, terminal + stdout
    # the bars: the walk's total and each lane, with counts; no plain progress lines
    assert re.search(r"stepwise .*/60 revisions", terminal), terminal
    shares = [
        int(re.findall(rf"lane {lane} .*?\d+/(\d+) revisions .* ETA", terminal)[-1])
        for lane in (0, 1)
    ]
    assert sum(shares) == 60, terminal  # lane 0's is shorter: it walks after the others
    assert "revisions, " not in terminal
    # the lines of each finished check still reach the terminal, whole
    assert re.search(r"alembic-preflight: stepwise: passed in [\d.]+ s", terminal), terminal
    # the cursor is shown again at the end, and the report on stdout is untouched
    assert terminal.rfind(SHOW) > terminal.rfind(HIDE) >= 0, terminal
    assert "\x1b" not in stdout and "━" not in stdout
    assert "stepwise" in stdout and "No findings." in stdout


def test_ctrl_c_during_the_walk_stops_the_bars_and_shows_the_cursor(tmp_path: Path) -> None:
    revs = long_history(20)  # and a last revision slow enough to be interrupted in
    slow = Rev("r0020", "r0019", "time.sleep(60)", "pass", imports="import time\n")
    write_project(tmp_path, [*revs, slow])
    code, terminal, _ = _on_a_terminal(
        tmp_path,
        "--database",
        "embedded",
        "--checks",
        "stepwise",
        interrupt_when="20/21 revisions",
    )
    assert code == 130, terminal
    assert terminal.rfind(SHOW) > terminal.rfind(HIDE) >= 0, terminal
    assert "Traceback" not in terminal
    # the message comes after the bars are gone, on a line of its own
    tail = terminal[terminal.rfind(SHOW) :]
    assert "alembic-preflight: error: interrupted" in tail, terminal
