"""Issue 8: the patterns long-lived Alembic histories contain, each a small real project
under tests/fixtures/, verified through the real CLI against the embedded PostgreSQL.

Where a verdict depends on what Alembic itself does (commits inside migrations, env.py
transactions), the expected verdict is what plain `alembic upgrade head` does on the
same project (noted at each test)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import psycopg
import pytest

from alembic_preflight.database.base import Server
from tests.checks.histories import line_of
from tests.conftest import FIXTURES, CliResult, load_script, run_cli


def verify(project: Path, *flags: str, locks: bool = False, **kw: Any) -> CliResult:
    """These histories are about what the other checks find; the locks check's findings
    on them (a lock_timeout notice, index builds on tables with rows) are its own tests'
    business (tests/checks/test_locks.py), except where `locks` asks for them."""
    extra = () if locks else ("--skip", "locks")
    r = run_cli("verify", project, "--database", "embedded", *flags, *extra, **kw)
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


# -- 4. commits inside migrations ------------------------------------------------------------
# Expected verdicts are what plain Alembic 1.x / SQLAlchemy 2.x / psycopg 3 do with the same
# project: `alembic upgrade head`, `downgrade base`, `upgrade head` and the resulting schema.


def with_env(project: Any, name: str, variant: str | None) -> Path:
    path: Path = project(name)
    if variant is not None:
        shutil.copy(path / "env_variants" / variant, path / "migrations" / "env.py")
    return path


@pytest.mark.parametrize("variant", [None, "transaction_per_migration.py"])
def test_autocommit_block_verifies_clean(project: Any, variant: str | None) -> None:
    # CREATE/DROP INDEX CONCURRENTLY inside autocommit_block(): Alembic runs it (exit 0)
    r = verify(with_env(project, "commits_inside", variant), locks=True)
    assert r.code == 0, r.stdout
    # the locks walk runs the concurrent build too: no lock of its own but the notice
    assert [(f["check"], f["rule"]) for f in r.findings()] == [("locks", "lock-timeout-missing")]
    assert statuses(r)["locks"] == "passed"
    assert set(statuses(r).values()) == {"passed", "skipped"}  # drift: no metadata
    assert statuses(r)["stepwise"] == statuses(r)["roundtrip"] == "passed"


def test_autocommit_block_under_env_transaction_fails_as_in_alembic(project: Any) -> None:
    # env.py's `with connectable.begin()`: Alembic's autocommit_block() asserts (exit 1)
    name = "commits_inside"
    r = verify(with_env(project, name, "outer_transaction.py"))
    assert r.code == 1
    (failed,) = r.findings("migration-failed")
    path = next(versions(name).glob("c0000000002b_*.py"))
    assert (failed["revision"], failed["line"]) == (
        "c0000000002b",
        line_of(path, "autocommit_block()"),
    )
    assert "AssertionError" in failed["message"]
    assert "env.py begins its own" in failed["fix"]


@pytest.mark.parametrize("variant", [None, "default.py"])
def test_commit_mid_migration_is_reported_as_lost(project: Any, variant: str | None) -> None:
    # op.get_bind().commit() then add_column: plain `alembic upgrade head` exits 0 and
    # leaves the column out and alembic_version at the parent (the revision is the last)
    name = "commit_mid_migration"
    r = verify(with_env(project, name, variant))
    assert r.code == 1
    path = next(versions(name).glob("c0000000002b_*.py"))
    (lost,) = r.findings("upgrade-not-committed")
    assert where(lost) == (
        "stepwise",
        "upgrade-not-committed",
        "c0000000002b",
        lost["file"],
        line_of(path, "get_bind().commit()"),
    )
    assert lost["file"].endswith(path.name)
    assert "rolled back when it is the last revision run" in lost["message"]
    assert "transaction_per_migration=True" in lost["fix"]
    assert "autocommit_block" in lost["fix"]


def test_drop_index_concurrently_in_a_transaction_is_reported_as_such() -> None:
    name = "concurrently_in_transaction"
    path = next(versions(name).glob("c0000000002b_*.py"))
    line = line_of(path, "DROP INDEX CONCURRENTLY")
    r = verify(FIXTURES / name)
    assert r.code == 1
    (lint,) = r.findings("concurrently-in-transaction")
    assert where(lint) == (
        "lint",
        "concurrently-in-transaction",
        "c0000000002b",
        rel(name, path),
        line,
    )
    (failed,) = r.findings("migration-failed")
    assert where(failed) == ("upgrade", "migration-failed", "c0000000002b", rel(name, path), line)
    assert "cannot run inside a transaction block" in failed["message"]
    assert "autocommit_block" in failed["fix"]


# -- 3. branches, merges, branch labels, depends_on ----------------------------------------


def test_branch_point_merge_label_and_depends_on_walk_every_revision() -> None:
    # a1 → a2 → {b1, c1} → d1 (merge) → e1; a2 → r001 [reports] → r002 (depends_on b1).
    # A downgrade that touched a sibling would fail (c1's drop_column on an absent column)
    # or leave a difference behind: none may show up.
    name = "branch_label_depends"
    revisions = sorted(p.name[:12] for p in versions(name).glob("*.py"))
    r = verify(FIXTURES / name)
    assert r.code == 0, r.stdout
    assert [(f["check"], f["rule"], f["severity"]) for f in r.findings()] == [
        ("graph", "multiple-heads", "notice")  # two heads on separately labelled branches
    ]
    cases = {c["revision"]: c["status"] for c in r.check("stepwise")["cases"]}
    assert sorted(cases) == revisions and set(cases.values()) == {"passed"}
    assert r.check("stepwise")["note"].startswith("8 of 8 revisions walked")
    assert statuses(r)["roundtrip"] == "passed"


# -- 5. histories that start from a schema made outside Alembic ----------------------------


def test_bootstrap_hint_without_the_setting(project: Any) -> None:
    name = "bootstrap_needed"
    base = next(versions(name).glob("b0075a000001_*.py"))
    r = verify(project(name))
    assert r.code == 1
    failed = [f for f in r.findings() if f["severity"] == "error"]
    assert {(f["check"], f["revision"], f["line"]) for f in failed} == {
        ("upgrade", "b0075a000001", line_of(base, "op.add_column")),
        ("stepwise", "b0075a000001", line_of(base, "op.add_column")),
    }
    for f in failed:  # every check that meets it says the same
        assert 'relation "users" does not exist' in f["message"]
        assert "set `bootstrap:`" in f["fix"]
    assert statuses(r)["roundtrip"] == "skipped"


def test_bootstrap_hint_after_an_empty_base_revision(project: Any) -> None:
    # issue 16: many histories begin with an empty "initial" revision, then change a
    # table made outside Alembic: the hint was only given at a base revision
    path = project("bootstrap_needed")
    vdir = path / "migrations/versions"
    (vdir / "b0075a000000_initial.py").write_text(
        '"""initial\n\nRevision ID: b0075a000000\nRevises:\n"""\n'
        "revision = 'b0075a000000'\ndown_revision = None\nbranch_labels = None\n"
        "depends_on = None\n\n\ndef upgrade() -> None:\n    pass\n\n\n"
        "def downgrade() -> None:\n    pass\n"
    )
    first = next(vdir.glob("b0075a000001_*.py"))
    first.write_text(
        first.read_text().replace("down_revision = None", "down_revision = 'b0075a000000'")
    )
    r = verify(path, "--checks", "upgrade,stepwise")
    failed = [f for f in r.findings() if f["severity"] == "error"]
    assert {(f["check"], f["revision"]) for f in failed} == {
        ("upgrade", "b0075a000001"),
        ("stepwise", "b0075a000001"),
    }
    assert all("set `bootstrap:`" in f["fix"] for f in failed)


@pytest.mark.parametrize("bootstrap", ["schema.sql", "app.schema:create_all"])
def test_bootstrap_setting_sql_file_or_function(project: Any, bootstrap: str) -> None:
    path = project("bootstrap_needed")
    (path / ".alembic-preflight.yml").write_text(f"bootstrap: {bootstrap}\n")
    r = verify(path)
    assert r.code == 0, r.stdout
    assert r.findings() == []
    assert statuses(r)["roundtrip"] == statuses(r)["stepwise"] == "passed"


def test_a_failure_after_the_bootstrap_does_not_claim_an_empty_database(project: Any) -> None:
    # issue 16: "(upgrade head on an empty database)" was said after a bootstrap
    path = project("bootstrap_needed")
    (path / ".alembic-preflight.yml").write_text("bootstrap: schema.sql\n")
    head = next((path / "migrations/versions").glob("b0075a000002_*.py"))
    head.write_text(
        head.read_text().replace(
            "    op.create_index(", '    op.execute("SELECT 1/0")\n    op.create_index('
        )
    )
    r = verify(path, "--checks", "upgrade")
    (f,) = r.findings()
    assert "upgrade head on the bootstrapped database" in f["message"], f["message"]
    assert "empty database" not in f["message"]


def test_a_failing_batch_operation_is_placed_at_its_own_line() -> None:
    # issue 16: the ops of `with op.batch_alter_table()` run when the block ends, so the
    # stack shows the `with` line; the operation that failed is the one to point at
    name = "batch_op_fails"
    path = next(versions(name).glob("b2b2b2b2b2b2_*.py"))
    r = verify(FIXTURES / name, "--checks", "upgrade,stepwise")
    found = {(f["check"], f["rule"], f["file"], f["line"]) for f in r.findings()}
    at = line_of(path, 'batch_op.alter_column("notes"')
    assert found == {
        ("upgrade", "migration-failed", rel(name, path), at),
        ("stepwise", "upgrade-failed", rel(name, path), at),
    }


# -- 6. downgrades that leave things behind -------------------------------------------------


def test_left_behind_objects_are_named_at_the_downgrade() -> None:
    name = "left_behind"
    files = {p.name[:12]: p for p in versions(name).glob("*.py")}
    r = verify(FIXTURES / name)
    assert r.code == 1
    left = {f["revision"]: f for f in r.findings("downgrade-leaves-behind")}
    expected = {
        "1e0000000002": "leaves trigger `items_touch` on `items`",
        "1e0000000003": "leaves type `item_status` (enum)",
        "1e0000000004": "leaves sequence `item_numbers`",
        "1e0000000005": "leaves function `item_label(integer)`",
        "1e0000000006": "leaves extension `citext`",
    }
    assert sorted(left) == sorted(expected)
    for rev, words in expected.items():
        f = left[rev]
        assert words in f["message"], f["message"]
        assert (f["check"], f["file"], f["line"]) == (
            "stepwise",
            rel(name, files[rev]),
            line_of(files[rev], "def downgrade"),
        )
    # drop order: DROP TABLE tags while item_tags still references it
    failed = r.findings("downgrade-failed")
    assert {(f["check"], f["revision"]) for f in failed} == {
        ("stepwise", "1e0000000007"),
        ("roundtrip", "1e0000000007"),
    }
    for f in failed:
        assert f["line"] == line_of(files["1e0000000007"], 'op.drop_table("tags")')
        assert "cannot drop table tags because other objects depend on it" in f["message"]
        assert "fk_item_tags_tag_id_tags on table item_tags" in f["fix"]
        assert "reverse order" in f["fix"]


# -- 7. Alembic extensions imported by env.py ------------------------------------------------


@pytest.mark.parametrize(
    ("name", "change", "words"),
    [
        # alembic-postgresql-enum: op.sync_enum_values, and its autogenerate comparator
        (
            "ext_postgresql_enum",
            ("app/models.py", '"shipped", name=', '"shipped", "lost", name='),
            "enum values of `orders.status` are 'new', 'paid', 'shipped' in the database but "
            "'new', 'paid', 'shipped', 'lost' in the models",
        ),
        # alembic_utils: PGFunction/PGView via register_entities and op.create_entity
        (
            "ext_alembic_utils",
            ("app/entities.py", "WHERE active", "WHERE NOT active"),
            "PGView `public.active_users` differs between the models and the database",
        ),
    ],
)
def test_extensions_env_imports_verify_and_drift_sees_their_objects(
    project: Any, name: str, change: tuple[str, str, str], words: str
) -> None:
    path = project(name)
    r = verify(path)
    assert r.code == 0, r.stdout + r.stderr
    assert r.findings() == []
    ran = statuses(r)
    assert ran.pop("compat") == "skipped"  # no base ref: nothing to compare the models with
    assert set(ran.values()) == {"passed"}  # drift included: the models match
    # the extension's own comparator runs in drift: a model change is seen
    file, old, new = change
    target = path / file
    assert old in target.read_text()
    target.write_text(target.read_text().replace(old, new))
    drifted = verify(path, "--checks", "upgrade,drift")
    assert drifted.code == 1
    assert [(f["rule"], f["message"]) for f in drifted.findings()] == [("model-drift", words)]


# -- 8. a run summary that scales -----------------------------------------------------------


def generate_real(path: Path, revisions: int, **kw: Any) -> Any:
    """bench/generate_real.py's long real-looking history, with its expected findings."""
    return load_script("bench/generate_real.py").generate(path, revisions, **kw)


def test_300_revisions_every_expected_finding_and_a_readable_console(tmp_path: Path) -> None:
    generated = generate_real(tmp_path / "real", 300)
    assert generated.revisions == 300 and len(generated.expected) >= 35
    r = verify(generated.path, timeout=900)
    assert r.code == 1
    found = sorted((f["check"], f["rule"], f["revision"]) for f in r.findings())
    assert found == generated.expected
    assert r.check("stepwise")["note"].startswith("300 of 300 revisions walked")
    assert r.report is not None and r.report["duration_s"] < 600
    # counts first, grouped by rule, the worst first; by-design revisions in one line
    lines = r.stdout.splitlines()
    counts = lines.index(next(x for x in lines if x.startswith("Findings: ")))
    table = []
    for line in lines[counts + 1 :]:
        if not line.strip():
            break
        n, severity, rule = line.split()
        table.append((severity, rule, int(n)))
    ranks = {"error": 0, "warning": 1, "notice": 2}
    assert [ranks[s] for s, _, _ in table] == sorted(ranks[s] for s, _, _ in table)
    assert {rule: n for _, rule, n in table} == {
        f"{check}/{rule}": n for (check, rule), n in generated.counts().items()
    }
    irreversible = generated.counts()[("lint", "irreversible")]
    assert f"{irreversible} revisions are irreversible by design" in r.stdout
    assert len(lines) < 400, len(lines)  # readable in a CI log


def test_a_failure_every_few_revisions_walks_on_from_checkpoints_and_leaves_no_database(
    tmp_path: Path, pg_server: Server
) -> None:
    """Issue 21: a lane whose revisions fail every few steps goes back to its fast walk
    after each, rebuilding from checkpoints (templates of its database) it drops again;
    every stepwise finding is the one expected, and on a server of the user's no
    database of ours is left."""
    generated = generate_real(tmp_path / "real", 80)
    url = pg_server.url("postgres")
    checks = "graph,lint,stepwise"  # lint owns the by-design irreversible ones
    r = run_cli("verify", generated.path, "--database-url", url, "--checks", checks)
    assert r.report is not None and r.code == 1, r.stdout + r.stderr
    found = sorted((f["check"], f["rule"], f["revision"]) for f in r.findings())
    assert found == generated.expected
    assert r.check("stepwise")["note"].startswith("80 of 80 revisions walked")
    with psycopg.connect(pg_server.conninfo()) as c:
        left = c.execute("SELECT datname FROM pg_database WHERE datname LIKE 'preflight%'")
        assert left.fetchall() == []
