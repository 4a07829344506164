"""--help as a user reads it in an 80-column terminal."""

from __future__ import annotations

import re

import pytest

from alembic_preflight.flags import REPORT_FLAGS, SETTINGS_FLAGS
from tests.conftest import run_cli

COMMANDS = ["verify", "baseline", "merge-reports", "rules", "lint"]


def help_text(*args: str) -> str:
    r = run_cli(*args, "--help", env={"COLUMNS": "80", "TERM": "dumb"}, report=False)
    assert r.code == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_fits_80_columns_without_type_placeholders(command: str | None) -> None:
    text = help_text(*([command] if command else []))
    # Typer's `<bool>`, `<str>`, `<list[str]>`, `<path>`: the options name their values
    assert not re.search(r"<[a-zA-Z][^>]*>", text), text
    assert all(len(line) <= 80 for line in text.splitlines()), text
    assert "…" not in text, text  # nothing cut off in a narrow column
    # no paragraph broken mid-sentence: a line of prose ends at a sentence or the width
    prose = [
        line.rstrip()
        for line in text.splitlines()
        if line.strip() and not line.startswith(("╭", "│", "╰")) and "Usage:" not in line
    ]
    for line in prose:
        assert len(line) >= 60 or line.endswith("."), line


@pytest.mark.parametrize("command", ["verify", "baseline"])
def test_project_dir_is_named_the_same_in_usage_and_text(command: str) -> None:
    text = help_text(command)
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    assert "[PROJECT_DIR]" in usage
    assert "PROJECT_DIR is where you would run `alembic`" in " ".join(text.split())


def test_every_option_names_its_value() -> None:
    text = help_text("verify")
    for flag in (*SETTINGS_FLAGS, *REPORT_FLAGS):
        name = flag.option[0].split("/")[0]
        row = re.compile(rf"│\s+{re.escape(name)}\s")
        line = next(line for line in text.splitlines() if row.match(line))
        if flag.metavar:
            assert f" {flag.metavar} " in line, line
    assert "never" in " ".join(text.split())  # --fail-on's third value
