"""The locks check on real Alembic projects and a real PostgreSQL: each rule at the line of
the statement, the quiet cases quiet, projections to production sizes, and bad input."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git, run_cli

VERSIONS = "migrations/versions"


def _findings(report: dict[str, Any], check: str = "locks") -> list[dict[str, Any]]:
    return [f for f in report["findings"] if f["check"] == check]


def _placed(findings: list[dict[str, Any]], severities: set[str]) -> set[tuple[str, str, int]]:
    return {
        (f["rule"], Path(f["file"]).name.split("_")[0], f["line"])
        for f in findings
        if f["severity"] in severities
    }


def test_each_rule_at_the_statement_line_and_the_quiet_cases_quiet(project: Any) -> None:
    # `upgrade,locks`: the check needs no other database check to run
    result = run_cli("verify", project("locks_risky"), "--checks", "upgrade,locks")
    assert result.code == 0, result.stderr  # warnings and notices do not fail the run
    report = result.report
    assert report is not None
    checks = {c["id"]: c for c in report["checks"]}
    assert checks["locks"]["status"] == "passed"
    assert "traced 10 of 10 revisions" in checks["locks"]["note"]
    found = _findings(report)
    assert _placed(found, {"error", "warning"}) == {
        ("blocking-index-build", "l03", 16),
        ("table-rewrite", "l04", 16),
        ("validating-constraint", "l05", 16),
        ("set-not-null-scan", "l06", 17),  # the ALTER, not the UPDATE before it
        ("long-exclusive-lock", "l07", 17),  # the UPDATE after the RENAME's lock
    }
    # one notice for the whole history (one setting fixes it), at the first revision
    (notice,) = [f for f in found if f["severity"] == "notice"]
    assert (notice["rule"], Path(notice["file"]).name[:3], notice["line"]) == (
        "lock-timeout-missing",
        "l02",
        16,
    )
    # every revision's lock is its own (it runs in a transaction of its own): each ALTER
    # of `orders` asks for it again; l10 sets lock_timeout; l08 builds concurrently; l01
    # only creates tables
    assert "; 6 more revisions take a strong lock with no lock_timeout" in notice["message"]
    by_rule = {f["rule"]: f for f in found}
    assert (
        "rewrites `orders` under ACCESS EXCLUSIVE: reads and writes wait"
        in (by_rule["table-rewrite"]["message"])
    )
    assert "under SHARE: writes wait" in by_rule["blocking-index-build"]["message"]
    # an old revision of a full run, on a table of unknown size: not worth a larger sample
    assert "give its production size (table-rows" in by_rule["table-rewrite"]["message"]
    statements = checks["locks"]["statements"]
    assert {(Path(s["file"]).name[:3], s["line"], s["table"]) for s in statements} == {
        ("l03", 16, "orders"),
        ("l04", 16, "orders"),
        ("l05", 16, "orders"),
        ("l06", 17, "orders"),
    }
    for s in statements:
        assert s["sample_rows"] is None and s["projected_s"] is None, s
    rewrite = next(s for s in statements if s["rewrite"])
    assert rewrite["mode"] == "AccessExclusiveLock" and rewrite["blocks"] == "reads and writes"


def _shown(report: dict[str, Any], check: str) -> list[tuple[Any, ...]]:
    """A check's findings as a user reads them, in a stable order."""
    shown = ("rule", "revision", "line", "severity", "message")
    return sorted(tuple(f[k] for k in shown) for f in _findings(report, check))


def _comparable(report: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    """The locks check's findings and statements, without the timings."""
    locks = next(c for c in report["checks"] if c["id"] == "locks")
    found = _shown(report, "locks")
    kept = ("revision", "line", "table", "mode", "blocks", "rewrite", "scan", "index")
    statements = sorted(tuple(s[k] for k in kept) for s in locks.get("statements", []))
    return found, statements


@pytest.mark.parametrize(
    ("fixture", "from_walk"),
    [
        ("locks_risky", True),
        # c..2b's autocommit_block ends the walk's transaction: stepwise walks it again per
        # request, but its first upgrade, from its parent with rows, was traced already
        ("commits_inside", True),
        # b2's upgrade fails with rows: the per-request walk traces its retry on emptied
        # tables, as the locks walk's own retry runs it
        ("not_null_no_default", True),
        ("synthetic_rows", True),
        # d4's retry keeps the rows `data:` declares (the locks walk has none): locks
        # upgrades the history itself (d4 once more without rows)
        ("declared_rows", False),
    ],
)
def test_beside_stepwise_it_reads_the_walks_upgrades_and_finds_the_same(
    project: Any, fixture: str, from_walk: bool
) -> None:
    path = project(fixture)
    alone = run_cli("verify", path, "--checks", "locks")
    both = run_cli("verify", path, "--checks", "stepwise,locks")
    assert alone.report is not None and both.report is not None, both.stderr
    notes = {c["id"]: c["note"] for c in both.report["checks"]}
    assert ("as the stepwise walk upgraded them" in notes["locks"]) is from_walk, notes
    alone_note = next(c["note"] for c in alone.report["checks"] if c["id"] == "locks")
    assert any(f"traced {n} of {n}" in alone_note for n in (2, 3, 4, 10)), alone_note
    assert "as the stepwise walk" not in alone_note
    assert _comparable(both.report) == _comparable(alone.report)
    if fixture == "locks_risky":  # something to compare: each rule's finding, 4 statements
        assert [len(x) for x in _comparable(alone.report)] == [6, 4]
    if fixture == "not_null_no_default":
        # b2's retry on emptied tables takes its own ACCESS EXCLUSIVE on orders (the
        # emptying's locks, ended first, do not hide it), in both walks
        (notice,) = _comparable(alone.report)[0]
        assert notice[:2] == ("lock-timeout-missing", "b2b2b2b2b2b2"), notice
        assert "takes ACCESS EXCLUSIVE on `orders`" in notice[4], notice
    # and the walk, traced, says what it says untraced
    walk = run_cli("verify", path, "--checks", "stepwise")
    assert walk.report is not None
    assert _comparable_walk(both.report) == _comparable_walk(walk.report)


def _comparable_walk(report: dict[str, Any]) -> tuple[list[Any], str]:
    stepwise = next(c for c in report["checks"] if c["id"] == "stepwise")
    return _shown(report, "stepwise"), stepwise["status"]


def test_a_pull_requests_own_revisions_get_their_cost_per_million_rows(project: Any) -> None:
    path = project("locks_risky")
    versions = path / VERSIONS
    later = sorted(versions.glob("l0[4-9]_*.py")) + sorted(versions.glob("l1*_*.py"))
    kept = {p: p.read_text() for p in later}
    for p in later:
        p.unlink()
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "-A")
    git(path, "commit", "-qm", "l01-l03")
    for p, text in kept.items():
        p.write_text(text)
    result = run_cli("verify", path, "--checks", "locks", "--changed-since", "main")
    assert result.code == 0, result.stderr
    assert result.report is not None
    statements = next(c for c in result.report["checks"] if c["id"] == "locks")["statements"]
    timed = {Path(s["file"]).name[:3] for s in statements if s["sample_rows"]}
    assert timed == {"l04", "l05", "l06"}  # l03 is not the pull request's
    for s in statements:
        if s["sample_rows"]:
            assert s["sample_rows"] >= 20_000 and s["per_million_s"] > 0, s
    rewrite = next(f for f in _findings(result.report) if f["rule"] == "table-rewrite")
    assert "per million rows (measured" in rewrite["message"]
    # a pull request's revisions get a lock_timeout notice each; the older ones one
    notices = [f for f in _findings(result.report) if f["rule"] == "lock-timeout-missing"]
    assert _placed(notices, {"notice"}) == {
        ("lock-timeout-missing", rev, line)
        for rev, line in [
            ("l02", 16),
            ("l04", 16),
            ("l05", 16),
            ("l06", 17),
            ("l07", 16),
            ("l09", 16),
        ]
    }
    older = next(f for f in notices if "l02" in f["file"])
    assert "; 1 more older revision takes a strong lock" in older["message"]


def test_a_known_size_over_the_budget_is_an_error(project: Any) -> None:
    path = project("locks_risky")
    result = run_cli("verify", path, "--checks", "locks", "--table-rows", "orders=1e9")
    assert result.code == 1, result.stderr
    assert result.report is not None
    errors = [f for f in _findings(result.report) if f["severity"] == "error"]
    assert {f["rule"] for f in errors} == {
        "blocking-index-build",
        "table-rewrite",
        "validating-constraint",
        "set-not-null-scan",
    }
    for f in errors:
        assert "at 1,000,000,000 rows (measured" in f["message"]
        assert "over the lock budget of 2.0 s" in f["message"]
    statements = next(c for c in result.report["checks"] if c["id"] == "locks")["statements"]
    assert all(s["production_rows"] == 1_000_000_000 and s["projected_s"] > 2 for s in statements)
    # a budget no projection reaches: warnings again, and the run passes
    calm = run_cli(
        "verify", path, "--checks", "locks", "--table-rows", "orders=1000", "--lock-budget", "60"
    )
    assert calm.code == 0, calm.stderr
    assert calm.report is not None
    assert not [f for f in _findings(calm.report) if f["severity"] == "error"]


def test_table_stats_from_a_file_and_the_settings(project: Any) -> None:
    path = project("locks_risky")
    stats = path / "table-stats.csv"
    # psql -At output ('|'), a comment, a never-analyzed table (-1), schema-qualified
    stats.write_text("# from production\npublic.orders|50000000\ncustomers|-1\n")
    result = run_cli("verify", path, "--checks", "locks", "--table-stats", stats)
    assert result.code == 1, result.stderr
    assert result.report is not None
    assert any("at 50,000,000 rows" in f["message"] for f in _findings(result.report))
    # the same from the settings file; a flag's entry overrides the file's
    (path / ".alembic-preflight.yml").write_text("table-rows:\n  orders: 50_000_000\n")
    small = run_cli("verify", path, "--checks", "locks", "--table-rows", "orders=10")
    assert small.code == 0, small.stderr
    assert small.report is not None
    assert any("at 10 rows" in f["message"] for f in _findings(small.report))


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--table-rows", "orders"), "--table-rows takes TABLE=ROWS"),
        (("--table-rows", "orders=many"), "not a number of rows"),
        (("--sample-rows", "-1"), "--sample-rows / sample-rows must be between 0"),
        (("--lock-budget", "0"), "--lock-budget / lock-budget must be more than 0"),
    ],
)
def test_bad_sizes_and_budgets_exit_2(project: Any, args: tuple[str, ...], says: str) -> None:
    result = run_cli("verify", project("locks_risky"), "--checks", "locks", *args)
    assert result.code == 2
    assert says in result.stderr
    assert "Traceback" not in result.stderr


def test_a_broken_stats_file_is_named_with_its_line(project: Any) -> None:
    path = project("locks_risky")
    stats = path / "stats.csv"
    stats.write_text("orders,50000000\ncustomers,lots\n")
    result = run_cli("verify", path, "--checks", "locks", "--table-stats", stats)
    assert result.code == 2
    assert f"{stats}:2: not a number of rows: 'lots'" in result.stderr
    missing = run_cli("verify", path, "--checks", "locks", "--table-stats", path / "nope.csv")
    assert missing.code == 2 and "cannot read the table stats" in missing.stderr


def test_no_traced_revision_is_no_pass(project: Any) -> None:
    # the first revision's upgrade fails: nothing was traced, so locks did not pass
    path = project("locks_risky")
    first = next((path / VERSIONS).glob("l01_*.py"))
    first.write_text(
        first.read_text().replace(
            'op.create_table(\n        "customers"',
            'op.execute("SELECT 1/0")\n    op.create_table(\n        "customers"',
        )
    )
    result = run_cli("verify", path, "--checks", "upgrade,locks")
    assert result.report is not None
    locks = next(c for c in result.report["checks"] if c["id"] == "locks")
    assert locks["status"] == "failed", locks
    assert "no revision could be traced: l01 fails to upgrade" in locks["note"]
    assert result.code == 1
    # one defect, one entry: upgrade's, which locks has seen too
    assert "also seen by: locks/upgrade-failed" in result.stdout
    # alone, locks cannot pass over it
    alone = run_cli("verify", path, "--checks", "locks")
    assert alone.code == 1, alone.stdout
    assert alone.report is not None
    (failed,) = [f for f in _findings(alone.report) if f["severity"] == "error"]
    assert (failed["rule"], failed["revision"], failed["line"]) == ("upgrade-failed", "l01", 16)


@pytest.mark.slow
def test_the_projection_is_close_to_a_real_timing(project: Any, db: Any) -> None:
    """Sampled at 5,000 rows, projected to 300,000: within a factor of 3 of the same
    statement timed on a table of 300,000 rows (linear growth is the model)."""
    path = project("locks_risky")
    result = run_cli(
        "verify",
        path,
        "--checks",
        "locks",
        "--sample-rows",
        "5000",
        "--table-rows",
        "orders=300000",
    )
    assert result.report is not None, result.stderr
    statements = next(c for c in result.report["checks"] if c["id"] == "locks")["statements"]
    rewrite = next(s for s in statements if s["rewrite"])
    projected = rewrite["projected_s"]
    # the same table at l04's parent, 300,000 rows, the same ALTER, timed
    db.execute(
        "CREATE TABLE orders (id serial PRIMARY KEY, amount integer, note text, ref text,"
        " customer_id integer, flag integer NOT NULL DEFAULT 0)"
    )
    db.execute("CREATE INDEX ix_orders_note ON orders (note)")
    db.execute(
        "INSERT INTO orders (amount, note, ref, customer_id) SELECT g, 'note ' || g,"
        " NULL, NULL FROM generate_series(1, 300000) g"
    )
    db.execute("ANALYZE orders")
    started = time.perf_counter()
    db.execute("ALTER TABLE orders ALTER COLUMN amount TYPE BIGINT")
    real = time.perf_counter() - started
    assert real / 3 <= projected <= real * 3, (projected, real)


def test_one_shard_traces_and_merge_reports_keeps_its_statements(
    project: Any, tmp_path: Path
) -> None:
    import json

    path = project("locks_risky")
    reports = []
    for k in (1, 2):
        r = run_cli("verify", path, "--checks", "locks", "--shard", f"{k}/2")
        assert r.code == 0, r.stderr
        assert r.report is not None
        locks = next(c for c in r.report["checks"] if c["id"] == "locks")
        if k == 2:
            assert locks["status"] == "skipped" and locks["note"] == "runs in shard 1 of 2"
        out = tmp_path / f"shard{k}.json"
        out.write_text(json.dumps(r.report))
        reports.append(out)
    merged = tmp_path / "merged.json"
    m = run_cli("merge-reports", *reports, "--report-json", merged, report=False)
    assert m.code == 0, m.stderr
    locks = next(c for c in json.loads(merged.read_text())["checks"] if c["id"] == "locks")
    assert locks["status"] == "passed"
    assert len(locks["statements"]) == 4


@pytest.mark.parametrize("locks_listed", ["altered first", "referenced first"])
def test_a_foreign_keys_two_tables_give_one_wording_whatever_order_pg_locks_lists(
    locks_listed: str,
) -> None:
    """pg_locks has no order: the finding names the table the statement alters (it named
    either, run by run, on tests/fixtures/unnamed_drop_constraint)."""
    from alembic_preflight.checks.locks.grade import Limits, grade
    from alembic_preflight.findings import Finding
    from alembic_preflight.worker.protocol import TableEffect, Traced, TracedStatement

    effects = [
        TableEffect("books", "ShareRowExclusiveLock", new_lock=True, rows=True),
        TableEffect("authors", "ShareRowExclusiveLock", new_lock=True, rows=True),
    ]
    if locks_listed == "referenced first":
        effects.reverse()
    statement = TracedStatement(
        sql="ALTER TABLE books ADD CONSTRAINT fk_books_author FOREIGN KEY(author_id) "
        "REFERENCES authors (id)",
        line=16,
        seconds=0.001,
        rowcount=-1,
        transaction=0,
        lock_timeout="0",
        effects=tuple(effects),
    )
    graded = grade(Traced("2b02", (statement,)), None, Limits({}, 2.0), file="v.py")
    notices = [f for f in graded if isinstance(f, Finding)]
    assert [f.rule for f in notices] == ["lock-timeout-missing"]
    assert notices[0].message.startswith("takes SHARE ROW EXCLUSIVE on `books` with no")
