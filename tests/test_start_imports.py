"""What the verifier imports before its checks run: only what the run uses (issue 21: each
import is time every run spends before any check, ~0.3 s of it in all). Read from the
real CLI with Python's own -X importtime, in a CI-like run: stderr is not a terminal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any


def _imported(proj: Path) -> set[str]:
    argv = [sys.executable, "-X", "importtime", "-m", "alembic_preflight"]
    run = subprocess.run(
        [*argv, "verify", ".", "--checks", "graph"],
        cwd=proj,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return {
        line.rsplit("|", 1)[1].strip()
        for line in run.stderr.splitlines()
        if line.startswith("import time:")
    }


def test_no_yaml_parser_without_a_yaml_settings_file_and_no_bars_off_a_terminal(
    project: Any,
) -> None:
    proj = project("sync_good")
    modules = _imported(proj)
    assert "alembic_preflight.commands.verify" in modules  # (what the run did is seen)
    # PyYAML (~20 ms) reads .alembic-preflight.yml, which this project has not;
    # rich.progress (~13 ms) draws bars on a terminal only
    assert "yaml" not in modules
    assert "rich.progress" not in modules
    (proj / ".alembic-preflight.yml").write_text("checks: [graph]\n")
    assert "yaml" in _imported(proj)
