"""Issue 8: the patterns long-lived Alembic histories contain, each a small real project
under tests/fixtures/, verified through the real CLI against the embedded PostgreSQL.

Where a verdict depends on what Alembic itself does (commits inside migrations, env.py
transactions), the expected verdict is what plain `alembic upgrade head` does on the
same project (noted at each test)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.checks.histories import line_of
from tests.conftest import FIXTURES, CliResult, run_cli


def verify(project: Path, *flags: str, **kw: Any) -> CliResult:
    r = run_cli("verify", project, "--database", "embedded", *flags, **kw)
    assert r.report is not None, r.stdout + r.stderr
    return r


def versions(name: str) -> Path:
    return FIXTURES / name / "migrations" / "versions"


def rel(name: str, path: Path) -> str:
    return f"tests/fixtures/{name}/migrations/versions/{path.name}"


def where(f: dict[str, Any]) -> tuple[str, str, str | None, str | None, int | None]:
    return (f["check"], f["rule"], f["revision"], f["file"], f["line"])


def statuses(r: CliResult) -> dict[str, str]:
    assert r.report is not None
    return {c["id"]: c["status"] for c in r.report["checks"]}


# -- 1. irreversible by design -------------------------------------------------------------


def test_irreversible_by_design_is_one_warning_per_revision_and_the_run_passes() -> None:
    name = "irreversible_by_design"
    files = {p.name[:12]: p for p in versions(name).glob("*.py")}
    r = verify(FIXTURES / name)
    assert r.code == 0, r.stdout
    # lint owns the finding (the same static test stepwise uses to skip the downgrade);
    # stepwise and roundtrip say it in their notes only
    expected = [
        ("lint", "irreversible", rev, rel(name, files[rev]), line_of(files[rev], "raise "))
        for rev in ("1a0000000002", "1a0000000003", "1a0000000004")
    ]
    assert sorted(where(f) for f in r.findings()) == expected
    assert {f["severity"] for f in r.findings()} == {"warning"}
    assert statuses(r)["stepwise"] == "passed"
    assert "3 revisions are irreversible by design" in r.check("stepwise")["note"]
    assert statuses(r)["roundtrip"] == "skipped"
    assert "3 revisions are irreversible by design: 1a0000000002" in r.stdout
    # the revision after them is still walked: its downgrade runs
    assert {c["revision"]: c["status"] for c in r.check("stepwise")["cases"]}[
        "1a0000000005"
    ] == "passed"


def test_irreversible_setting_error_and_allow() -> None:
    name = "irreversible_by_design"
    errors = verify(FIXTURES / name, "--irreversible", "error")
    assert errors.code == 1
    assert [f["severity"] for f in errors.findings()] == ["error"] * 3
    allowed = verify(FIXTURES / name, "--irreversible", "allow")
    assert allowed.code == 0 and allowed.findings() == []


def test_irreversible_without_lint_stepwise_says_it_once() -> None:
    r = verify(FIXTURES / "irreversible_by_design", "--checks", "upgrade,roundtrip,stepwise")
    assert r.code == 0
    found = r.findings()
    assert sorted((f["check"], f["revision"]) for f in found) == [
        ("stepwise", "1a0000000002"),
        ("stepwise", "1a0000000003"),
        ("stepwise", "1a0000000004"),
    ]
    assert "Cannot undelete data!" in found[0]["message"]


# -- 2. dropping an unnamed constraint -----------------------------------------------------


def test_unnamed_drop_constraint_is_a_lint_error_and_named_as_the_walks_cause() -> None:
    name = "unnamed_drop_constraint"
    plain = next(versions(name).glob("2b0000000002_*.py"))
    batch = next(versions(name).glob("2b0000000003_*.py"))
    r = verify(FIXTURES / name)
    assert r.code == 1
    lint = [where(f) for f in r.findings("unnamed-drop-constraint")]
    assert lint == [
        ("lint", "unnamed-drop-constraint", "2b0000000002", rel(name, plain),
         line_of(plain, "op.drop_constraint(None")),
        ("lint", "unnamed-drop-constraint", "2b0000000003", rel(name, batch),
         line_of(batch, "batch_op.drop_constraint(None")),
    ]  # fmt: skip
    assert all(f["severity"] == "error" for f in r.findings("unnamed-drop-constraint"))
    failed = r.findings("downgrade-failed")
    assert {(f["check"], f["revision"]) for f in failed} == {
        ("stepwise", "2b0000000002"),
        ("stepwise", "2b0000000003"),
        ("roundtrip", "2b0000000003"),  # the head: the first downgrade to base
    }
    for f in failed:
        assert "Can't emit DROP CONSTRAINT" in f["message"]
        assert " at 0x" not in f["message"]
        line = line_of(plain if f["revision"] == "2b0000000002" else batch, "drop_constraint(None")
        assert f["fix"].startswith(f"the cause is lint unnamed-drop-constraint at line {line}")
