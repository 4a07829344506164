"""bench/run.py's baselines must time all the work they stand for: a ratio against a
baseline that leaves a command out flatters the baseline and wrongs the verifier."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from alembic_preflight.database.base import Server
from tests.conftest import ROOT


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


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
