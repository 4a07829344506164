"""`alembic-preflight lint`: graph and lint on the files a commit touches, no database."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from alembic_preflight.commands import lint as lint_command
from tests.conftest import ROOT, run_cli

EXAMPLE = ROOT / "examples" / "project"
VERSIONS = Path("migrations", "versions")
EMPTY_DOWNGRADE = VERSIONS / "aa0000000002_add_nickname_to_users.py"
UNNAMED_DROP = VERSIONS / "aa0000000004_drop_unique_nickname_constraint.py"
HOUSE_NAMES = VERSIONS / "aa0000000005_add_constraints_with_house_names.py"  # warnings only


def test_lints_only_the_files_given(project: Any) -> None:
    root = project("lint_rules")
    result = run_cli("lint", UNNAMED_DROP, "-v", cwd=root)
    assert result.code == 1, result.stdout + result.stderr
    assert "lint/unnamed-drop-constraint" in result.stdout
    # the other files' findings are not this commit's
    assert "aa0000000002" not in result.stdout
    assert "empty-downgrade" not in result.stdout


def test_warnings_pass_unless_fail_on_warning(project: Any) -> None:
    root = project("lint_rules")
    passed = run_cli("lint", HOUSE_NAMES, cwd=root)
    assert passed.code == 0, passed.stdout + passed.stderr
    assert "lint/constraint-prefix" in passed.stdout
    failed = run_cli("lint", HOUSE_NAMES, "--fail-on", "warning", cwd=root)
    assert failed.code == 1, failed.stdout + failed.stderr


def test_fail_on_never_reports_and_exits_0(project: Any) -> None:
    """A hook that only informs, as `verify --fail-on never` does."""
    root = project("lint_rules")
    result = run_cli("lint", UNNAMED_DROP, "--fail-on", "never", cwd=root)
    assert result.code == 0, result.stdout + result.stderr
    assert "lint/unnamed-drop-constraint" in result.stdout
    assert "fail-on never: exit 0 although lint failed" in result.stderr


def test_a_directory_is_its_whole_project(project: Any) -> None:
    root = project("lint_rules")
    result = run_cli("lint", root, "-v")
    assert result.code == 1
    assert "empty-downgrade" in result.stdout and "unnamed-drop-constraint" in result.stdout


def test_the_graph_reads_the_whole_history(project: Any) -> None:
    root = project("several_heads")
    one = next((root / VERSIONS).glob("1a2b*.py"))
    result = run_cli("lint", one.relative_to(root), cwd=root)
    assert result.code == 1, result.stdout + result.stderr
    assert "graph/multiple-heads" in result.stdout


def test_files_are_grouped_by_their_project(tmp_path: Path, project: Any) -> None:
    rules = project("lint_rules")
    example = tmp_path / "example"
    shutil.copytree(EXAMPLE, example, ignore=shutil.ignore_patterns("__pycache__"))
    clean = sorted((example / VERSIONS).glob("*.py"))
    assert run_cli("lint", *clean).code == 0
    # a report per project, and the worst exit code
    both = run_cli("lint", clean[0], rules / UNNAMED_DROP)
    assert both.code == 1
    assert both.stdout.count("alembic-preflight 0.1.0:") == 2


def test_a_file_in_no_project_is_skipped(tmp_path: Path) -> None:
    stray = tmp_path / "repo" / "versions" / "0001_x.py"
    stray.parent.mkdir(parents=True)
    (tmp_path / "repo" / ".git").mkdir()  # the walk up stops at the repository's top
    stray.write_text("revision = '0001'\n")
    result = run_cli("lint", stray, cwd=tmp_path)
    assert result.code == 0, result.stdout + result.stderr
    assert "no alembic.ini in their folder or above it" in result.stderr
    assert result.stdout == ""


def test_other_python_files_are_not_revisions(project: Any) -> None:
    root = project("lint_rules")
    (root / VERSIONS / "__init__.py").write_text("")
    result = run_cli("lint", VERSIONS / "__init__.py", "migrations/env.py", cwd=root)
    assert (result.code, result.stdout) == (0, "")


def test_config_names_the_project(project: Any, tmp_path: Path) -> None:
    root = project("lint_rules")
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    ini = root / "alembic.ini"
    text = ini.read_text().replace("%(here)s/migrations", str(root / "migrations"))
    (moved / "settings.ini").write_text(text)
    ini.unlink()
    assert run_cli("lint", root / UNNAMED_DROP).code == 0  # no alembic.ini above it: skipped
    result = run_cli("lint", root / UNNAMED_DROP, "--config", moved / "settings.ini")
    assert result.code == 1, result.stdout + result.stderr
    assert "unnamed-drop-constraint" in result.stdout


def test_the_settings_file_chooses_checks_but_not_the_scope(project: Any) -> None:
    root = project("lint_rules")
    # a pull request's scope (a git ref this copy does not have) is CI's, not the hook's
    (root / ".alembic-preflight.yml").write_text("changed-since: origin/main\nskip: [graph]\n")
    result = run_cli("lint", UNNAMED_DROP, cwd=root)
    assert result.code == 1, result.stdout + result.stderr
    assert "lint/unnamed-drop-constraint" in result.stdout
    assert "graph" not in result.stderr  # skipped by the settings: not run


def test_baseline_entries_of_other_files_are_not_fixed(project: Any) -> None:
    root = project("lint_rules")
    written = run_cli("baseline", ".", "--checks", "graph,lint", cwd=root)
    assert written.code == 0, written.stderr
    result = run_cli("lint", UNNAMED_DROP, cwd=root)
    assert result.code == 0, result.stdout + result.stderr  # accepted by the baseline
    assert "fixed" not in result.stdout  # the files not given were not looked at


def test_no_database_and_no_worker(project: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project("lint_rules")

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the hook started a database or a worker")

    monkeypatch.setattr("alembic_preflight.commands.verify.Starting", refuse)
    monkeypatch.setattr("alembic_preflight.worker.client.start_workers", refuse)
    monkeypatch.chdir(root)
    assert lint_command.lint([UNNAMED_DROP], {}) == 1
    assert (
        lint_command.lint(
            [EMPTY_DOWNGRADE.parent / "aa0000000001_create_users_and_accounts.py"], {}
        )
        == 0
    )
