"""bench/run.py's baselines must time all the work they stand for: a ratio against a
baseline that leaves a command out flatters the baseline and wrongs the verifier. And the
bench, stopped, leaves nothing running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

from alembic_preflight.database.base import Server
from tests.conftest import ROOT, load_script, processes_with


def _bench() -> ModuleType:
    return load_script("bench/run.py")


def test_the_alembic_cli_baseline_times_all_four_commands(
    pg_server: Server, tmp_path: Path
) -> None:
    bench = _bench()
    project = bench.generate(tmp_path / "proj", 5, seed=1).path
    runner = bench.Bench(pg_server, 120.0, tmp_path)
    try:
        measured = runner.alembic_cli(project, 5)
    finally:
        runner.admin.close()
    assert measured.ok, measured.note
    # upgrade, downgrade, upgrade again, check: four runs, each timed, all summed
    assert len(measured.steps) == 4, measured.steps
    assert list(measured.steps) == [label for label, _ in bench.CLI_SEQUENCE]
    assert all(s > 0 for s in measured.steps.values())
    assert measured.seconds == round(sum(measured.steps.values()), 3)


def test_a_tool_the_bench_runs_ends_with_the_bench(tmp_path: Path) -> None:
    # Ctrl-C while a tool runs: the tool is in a session of its own, which the terminal's
    # Ctrl-C does not reach, so the bench must end it
    marker = f"bench-timed-{os.getpid()}"
    script = (
        "import os, signal, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from tests.conftest import load_script\n"
        "bench = load_script('bench/run.py')\n"
        "def interrupt(*_): raise KeyboardInterrupt\n"
        "signal.signal(signal.SIGALRM, interrupt); signal.alarm(1)\n"
        "sleeper = ['sh', '-c', 'sleep 60; true']\n"
        "bench._timed(sleeper, bench.Path('.'), dict(os.environ), 120)\n"
    )
    env = {**os.environ, "BENCH_TEST_MARKER": marker}
    run = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert run.returncode != 0 and "KeyboardInterrupt" in run.stderr, run.stderr
    assert processes_with(marker) == []


def test_sigterm_stops_the_bench_its_server_and_its_tool(tmp_path: Path) -> None:
    marker = f"bench-sigterm-{os.getpid()}"
    argv = [sys.executable, str(ROOT / "bench" / "run.py"), "--sizes", "3", "--tools", "a"]
    argv += ["--repeat", "40", "--ready-runs", "0", "--workdir", str(tmp_path / "w")]
    argv += ["--out", str(tmp_path / "out")]
    proc = subprocess.Popen(
        argv,
        env={**os.environ, "BENCH_TEST_MARKER": marker},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        seen = ""
        for line in proc.stdout:  # the server runs and the project is made: (a) is next
            seen += line
            if line.startswith("== 3 revisions"):
                break
        assert "== 3 revisions" in seen, seen
        time.sleep(1.0)  # into (a)'s commands
        running = processes_with(marker)
        assert any("alembic" in p for p in running), running  # the tool
        assert any("postgres" in p for p in running), running  # the bench's server
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 130  # as the verifier's own Ctrl-C and SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    deadline = time.monotonic() + 10
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)  # the server's processes end just after it says it stopped
    assert processes_with(marker) == []


def test_a_target_is_judged_on_the_ratio_itself_not_its_rounding() -> None:
    bench = _bench()

    def measured(tool: str, size: int, seconds: float) -> object:
        return bench.Measurement(tool, size, seconds, True, steps={"stepwise": 1.0})

    # 5.258 s against 5.237 s is 1.004: over a limit of 1.0, though it rounds to 1.00
    results = {200: {"a": measured("a", 200, 5.237), "d": measured("d", 200, 5.258)}}
    target = next(t for t in bench.targets(results, []) if t["target"] == "(d)/(a) at 200")
    assert target["value"] == 1.004
    assert target["met"] is False
    results = {300: {"g": measured("g", 300, 1.0), "d": measured("d", 300, 4.004)}}
    defect = bench.real_targets(results)[0]
    assert (defect["value"], defect["met"]) == (4.004, False)
