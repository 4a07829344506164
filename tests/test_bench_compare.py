"""bench/compare.py, the interleaved A/B timing bench/HISTORY.md's dated entries cite: it
runs both sides for real (the base from `git archive`), compares their findings, and
refuses a base git does not know with a message, not a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _compare(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "bench/compare.py", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_pair_against_head_runs_both_sides_with_the_same_findings() -> None:
    run = _compare("--base", "HEAD", "--size", "4", "--pairs", "1", "--", "--checks", "upgrade")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "pair 1 base exit 0" in run.stdout and "pair 1 new  exit 0" in run.stdout
    assert "exit codes: [0]" in run.stdout
    assert "findings: the same on both sides (0)" in run.stdout
    assert "wall, s" in run.stdout and "new won" in run.stdout


def test_a_base_git_does_not_know_is_a_usage_error() -> None:
    run = _compare("--base", "no-such-commit-here", "--size", "2")
    assert run.returncode == 2
    assert "--base no-such-commit-here" in run.stderr
    assert "Traceback" not in run.stderr
