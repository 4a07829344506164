"""The graph check, run on small real Alembic projects."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from alembic_preflight.checks import graph
from alembic_preflight.checks.base import CheckContext
from alembic_preflight.findings import Finding, Severity
from alembic_preflight.project import load_project
from alembic_preflight.settings import build_settings

FIXTURES = Path(__file__).parent.parent / "fixtures"
V = "tests/fixtures/{}/migrations/versions/{}"


def findings(project_dir: Path, **flags: Any) -> list[Finding]:
    settings = build_settings(project_dir, flags)
    return list(graph.run(CheckContext(settings, load_project(settings))))


def summary(found: list[Finding]) -> list[tuple[str, Severity, str | None, int | None]]:
    return [(f.rule, f.severity, f.file, f.line) for f in found]


def test_clean_branches_and_merges_say_nothing() -> None:
    assert findings(FIXTURES / "branches_merges") == []
    assert findings(FIXTURES / "irreversible") == []


def test_several_heads() -> None:
    (f,) = findings(FIXTURES / "several_heads")
    assert f.rule == "multiple-heads"
    assert f.severity is Severity.ERROR
    assert f.file == V.format("several_heads", "2b3c4d5e6f70_add_email_to_users.py")
    assert f.line == 15
    assert f.revision == "2b3c4d5e6f70"
    assert "2b3c4d5e6f70 (" + V.format("several_heads", "2b3c4d5e6f70_") in f.message
    assert "3c4d5e6f7081 (" + V.format("several_heads", "3c4d5e6f7081_create_orders.py") in (
        f.message
    )
    assert f.fix == 'alembic merge heads -m "merge 2b3c4d5e6f70 and 3c4d5e6f7081"'


def test_merge_command_names_a_non_default_ini_and_section(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "several_heads", tmp_path, dirs_exist_ok=True)
    ini = (tmp_path / "alembic.ini").read_text().replace("[alembic]", "[app]", 1)
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "migrate.ini").write_text(ini.replace("%(here)s", "%(here)s/.."))
    (tmp_path / "alembic.ini").unlink()
    (f,) = findings(tmp_path, config=tmp_path / "db" / "migrate.ini", name="app")
    assert f.fix == (
        'alembic -c db/migrate.ini --name app merge heads -m "merge 2b3c4d5e6f70 and 3c4d5e6f7081"'
    )


def test_unlabelled_bases_are_an_error() -> None:
    found = findings(FIXTURES / "several_bases")
    assert summary(found) == [
        (
            "multiple-bases",
            Severity.ERROR,
            V.format("several_bases", "5e6f708192a3_create_audit_log.py"),
            16,
        ),
        (
            "multiple-heads",
            Severity.ERROR,
            V.format("several_bases", "5e6f708192a3_create_audit_log.py"),
            15,
        ),
    ]
    assert "4d5e6f708192" in found[0].message and "5e6f708192a3" in found[0].message


def test_labelled_bases_are_a_notice() -> None:
    found = findings(FIXTURES / "labelled_bases")
    assert [(f.rule, f.severity) for f in found] == [
        ("multiple-bases", Severity.NOTICE),
        ("multiple-heads", Severity.NOTICE),
    ]
    assert "8192a3b4c5d6 [audit]" in found[0].message


def test_missing_parent_and_dependency() -> None:
    found = findings(FIXTURES / "missing_parent")
    assert summary(found) == [
        (
            "missing-parent",
            Severity.ERROR,
            V.format("missing_parent", "a3b4c5d6e7f8_add_email_to_users.py"),
            16,
        ),
        (
            "missing-parent",
            Severity.ERROR,
            V.format("missing_parent", "b4c5d6e7f809_create_orders.py"),
            18,
        ),
    ]
    assert "'ffffffffffff'" in found[0].message and "down_revision" in found[0].message
    assert "'0000deadbeef'" in found[1].message and "depends_on" in found[1].message


def test_duplicate_revision_reports_every_file() -> None:
    found = findings(FIXTURES / "duplicate_ids")
    email = V.format("duplicate_ids", "d6e7f8091a2b_add_email_to_users.py")
    phone = V.format("duplicate_ids", "d6e7f8091a2b_add_phone_to_users.py")
    assert summary(found) == [
        ("duplicate-revision", Severity.ERROR, email, 15),
        ("duplicate-revision", Severity.ERROR, phone, 15),
    ]
    assert phone in found[0].message and email in found[1].message


def test_syntax_error_at_its_line_and_no_orphans() -> None:
    found = findings(FIXTURES / "syntax_error")
    assert summary(found) == [
        (
            "syntax-error",
            Severity.ERROR,
            V.format("syntax_error", "f8091a2b3c4d_add_email_to_users.py"),
            23,
        )
    ]
    assert "'(' was never closed" in found[0].message


def _project_with(tmp_path: Path, files: dict[str, str]) -> Path:
    shutil.copytree(FIXTURES / "several_heads", tmp_path, dirs_exist_ok=True)
    versions = tmp_path / "migrations" / "versions"
    for p in versions.glob("*.py"):
        p.unlink()
    for name, text in files.items():
        (versions / name).write_text(text)
    return tmp_path


def test_cycle_and_unreadable(tmp_path: Path) -> None:
    project = _project_with(
        tmp_path,
        {
            "a_one.py": "revision = 'a'\ndown_revision = 'b'\n",
            "b_two.py": "revision = 'b'\ndown_revision = 'a'\n",
            "c_three.py": "PARENT = 'a'\nrevision = 'c'\ndown_revision = PARENT\n",
        },
    )
    found = findings(project)
    assert [(f.rule, f.severity, f.line, f.revision) for f in found] == [
        ("unreadable", Severity.WARNING, 3, "c"),
        ("cycle", Severity.ERROR, 2, "a"),
    ]
    assert "a -> b -> a" in found[1].message


def test_heads_on_one_labelled_branch_diverged(tmp_path: Path) -> None:
    project = _project_with(
        tmp_path,
        {
            "a.py": "revision = 'a'\ndown_revision = None\nbranch_labels = ('main',)\n",
            "b.py": "revision = 'b'\ndown_revision = 'a'\n",
            "c.py": "revision = 'c'\ndown_revision = 'a'\n",
        },
    )
    (f,) = findings(project)
    assert (f.rule, f.severity) == ("multiple-heads", Severity.ERROR)
    assert f.fix == 'alembic merge heads -m "merge b and c"'
