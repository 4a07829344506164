"""Fixtures for the reporter tests, and the golden-file check.

Regenerate golden files with `UPDATE_GOLDEN=1 pytest tests/reporters`; without it the
tests compare, so a changed output fails until someone looks at the diff.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from reporter_samples import make_report

from alembic_preflight.findings import Report

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture
def report() -> Report:
    return make_report()


@pytest.fixture
def golden() -> Callable[[str, str], None]:
    def check(name: str, actual: str) -> None:
        path = GOLDEN / name
        if os.environ.get("UPDATE_GOLDEN"):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(actual, encoding="utf-8")
        assert path.exists(), f"no golden file {path}; run with UPDATE_GOLDEN=1"
        assert actual == path.read_text(encoding="utf-8")

    return check
