"""The stepwise check, through the real CLI against the embedded PostgreSQL."""

from __future__ import annotations

import shutil
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from alembic_preflight.catalog.seed import seed_with_psycopg as seed_empty_tables
from alembic_preflight.checks import CHECKS
from alembic_preflight.checks.stepwise.plan import busy_cost, split
from alembic_preflight.commands.run_checks import busy_before_walk
from alembic_preflight.project.history import load_history
from tests.checks import histories
from tests.checks.histories import Rev, line_of, long_history, write_project
from tests.conftest import FIXTURES, CliResult, processes_with, run_cli

V = "tests/fixtures/{}/migrations/versions/{}"


def verify(project: Path, *flags: str, checks: str = "stepwise", **kw: Any) -> CliResult:
    r = run_cli("verify", project, "--database", "embedded", "--checks", checks, *flags, **kw)
    assert r.report is not None, r.stderr
    return r


def where(f: dict[str, Any]) -> tuple[str, str | None, str | None, int | None]:
    return (f["rule"], f["revision"], f["file"], f["line"])


def cases(r: CliResult) -> dict[str, str]:
    return {c["revision"]: c["status"] for c in r.check("stepwise")["cases"]}


def test_index_left_by_a_pass_downgrade_is_seen_only_stepwise() -> None:
    name = "index_downgrade_pass"
    path = FIXTURES / name / "migrations/versions/b2b2b2b2b2b2_index_orders_note.py"
    r = verify(FIXTURES / name, checks="roundtrip,stepwise")
    assert r.check("roundtrip")["status"] == "passed"
    (f,) = r.findings()
    assert where(f) == (
        "downgrade-leaves-behind",
        "b2b2b2b2b2b2",
        V.format(name, path.name),
        line_of(path, "def downgrade"),
    )
    assert f["message"] == "downgrade of b2b2b2b2b2b2 leaves index `ix_orders_note` on `orders`"
    assert "ix_orders_note" in f["detail"]
    assert r.code == 1


def test_enum_left_behind() -> None:
    name = "enum_left_behind"
    path = FIXTURES / name / "migrations/versions/3c4d5e6f7081_add_order_status_and_total.py"
    r = verify(FIXTURES / name)
    (f,) = r.findings()
    assert where(f) == (
        "downgrade-leaves-behind",
        "3c4d5e6f7081",
        V.format(name, path.name),
        line_of(path, "def downgrade"),
    )
    assert f["message"] == "downgrade of 3c4d5e6f7081 leaves type `order_status` (enum)"
    assert "'new', 'paid', 'shipped'" in f["detail"]


def test_not_null_column_without_default_fails_only_with_rows() -> None:
    name = "not_null_no_default"
    path = FIXTURES / name / "migrations/versions/b2b2b2b2b2b2_add_customer_ref.py"
    r = verify(FIXTURES / name)
    (f,) = r.findings()
    assert where(f) == (
        "fails-with-rows",
        "b2b2b2b2b2b2",
        V.format(name, path.name),
        line_of(path, "op.add_column"),
    )
    assert f["message"].startswith("upgrade of b2b2b2b2b2b2 fails on a table that holds rows")
    assert 'column "customer_ref" of relation "orders" contains null values' in f["message"]
    # the walk went on: the revision was re-tried on empty tables and downgraded
    assert cases(r) == {"a1a1a1a1a1a1": "passed", "b2b2b2b2b2b2": "failed"}
    assert verify(FIXTURES / name, "--no-seed-data").findings() == []


def test_failures_that_depend_on_synthetic_values_are_warnings(tmp_path: Path) -> None:
    # issue 16: an enum cast and a data migration's own int() fail on made-up values only
    name = "synthetic_rows"
    versions = FIXTURES / name / "migrations/versions"
    b = versions / "b2b2b2b2b2b2_status_as_enum.py"
    c = versions / "c3c3c3c3c3c3_note_length.py"
    r = verify(FIXTURES / name)
    enum_cast, python_error = r.findings()
    assert where(enum_cast) == (
        "fails-with-synthetic-rows",
        "b2b2b2b2b2b2",
        V.format(name, b.name),
        line_of(b, "op.alter_column("),
    )
    assert where(python_error) == (
        "fails-with-synthetic-rows",
        "c3c3c3c3c3c3",
        V.format(name, c.name),
        line_of(c, "int(body)"),
    )
    assert {enum_cast["severity"], python_error["severity"]} == {"warning"}
    assert "invalid input value for enum account_status" in enum_cast["message"]
    assert "real data may differ" in enum_cast["message"]
    assert "`data:`" in enum_cast["fix"]
    assert r.code == 0
    # realistic rows declared with `data:` pass; the same failure with the user's own
    # rows is an error: they are what production holds
    project = tmp_path / "p"
    shutil.copytree(FIXTURES / name, project)
    settings = project / ".alembic-preflight.yml"
    settings.write_text(
        "data:\n  b2b2b2b2b2b2:\n"
        "    accounts: [{id: 1, status: active}, {id: 2, status: closed}]\n"
        "    notes: [{id: 1, body: '12'}]\n"
    )
    assert verify(project).findings() == []
    settings.write_text("data:\n  b2b2b2b2b2b2:\n    accounts: [{id: 1, status: gone}]\n")
    r = verify(project)
    declared = next(f for f in r.findings() if f["revision"] == "b2b2b2b2b2b2")
    assert (declared["rule"], declared["severity"]) == ("fails-with-rows", "error")
    assert "fails on the rows `data:` declares" in declared["message"]
    assert r.code == 1


def test_function_recreated_with_other_whitespace_is_the_same(tmp_path: Path) -> None:
    # issue 16: a downgrade re-creating a body with one blank line more left nothing behind
    name = "function_whitespace"
    r = verify(FIXTURES / name, checks="stepwise,roundtrip")
    assert r.findings() == [] and r.code == 0
    # a real change to the body is still one, shown exactly as PostgreSQL keeps it
    project = tmp_path / "p"
    shutil.copytree(FIXTURES / name, project)
    b = project / "migrations/versions/b2b2b2b2b2b2_touch_skips_unchanged_rows.py"
    b.write_text(b.read_text().replace("  NEW.updated_at := now();", "  NEW.updated_at := 1;"))
    (f,) = verify(project).findings()
    assert f["rule"] == "downgrade-leaves-behind"
    assert "does not restore function `touch()` as it was" in f["message"]
    assert "NEW.updated_at := 1;" in f["detail"]


def test_hanging_steps_end_cleanly_with_the_report_written() -> None:
    name = "sleeps"
    versions = FIXTURES / name / "migrations/versions"
    a = versions / "a1a1a1a1a1a1_create_orders.py"
    b = versions / "b2b2b2b2b2b2_add_x.py"
    marker = uuid.uuid4().hex
    started = time.monotonic()
    r = verify(FIXTURES / name, "--step-timeout", "3", env={"PREFLIGHT_TEST_MARK": marker})
    assert time.monotonic() - started < 60
    assert r.code == 1
    sql_sleep, py_sleep = r.findings()
    assert where(sql_sleep) == (
        "step-timeout",
        "a1a1a1a1a1a1",
        V.format(name, a.name),
        line_of(a, "pg_sleep"),
    )
    assert "downgrade of a1a1a1a1a1a1 did not finish within 3 s" in sql_sleep["message"]
    assert where(py_sleep) == (
        "step-timeout",
        "b2b2b2b2b2b2",
        V.format(name, b.name),
        # the line it hung at, from the worker's stack (issue 15; was the function's)
        line_of(b, "time.sleep(600)"),
    )
    assert "upgrade of b2b2b2b2b2b2 did not finish within 3 s" in py_sleep["message"]
    assert cases(r)["c3c3c3c3c3c3"] == "skipped"
    assert "not reached: c3c3c3c3c3c3" in r.check("stepwise")["note"]
    assert processes_with(marker) == []


def test_merge_revision_with_two_parents_and_depends_on() -> None:
    name = "merge_two_parents"
    path = FIXTURES / name / "migrations/versions/0000000000d1_index_qty.py"
    r = verify(FIXTURES / name)
    # a walk that downgraded a sibling branch or the other parent would see differences
    # everywhere; only the one real mistake is reported, and every revision was walked
    (f,) = r.findings()
    assert where(f) == (
        "downgrade-leaves-behind",
        "0000000000d1",
        V.format(name, path.name),
        line_of(path, "def downgrade"),
    )
    assert cases(r) == {
        "000000000001": "passed",
        "0000000000a1": "passed",
        "0000000000a2": "passed",
        "0000000000b1": "passed",
        "0000000000cc": "passed",
        "0000000000d1": "failed",
    }


def test_downgrade_floor_and_skipped_revisions() -> None:
    r = verify(FIXTURES / "merge_two_parents", "--downgrade-floor", "0000000000d1")
    assert r.findings() == []
    assert "6 not downgraded" in r.check("stepwise")["note"]
    r = verify(FIXTURES / "merge_two_parents", "--skip-revisions", "0000000000d1")
    assert r.findings() == []
    assert cases(r)["0000000000d1"] == "skipped"


def test_irreversible_downgrades_warn_and_the_walk_goes_on() -> None:
    name = "irreversible_walk"
    versions = FIXTURES / name / "migrations/versions"
    b = versions / "b2b2b2b2b2b2_purge_empty_notes.py"
    c = versions / "c3c3c3c3c3c3_add_total.py"
    r = verify(FIXTURES / name)
    assert r.code == 0
    by_design, raised = r.findings()
    assert where(by_design) == (
        "irreversible",
        "b2b2b2b2b2b2",
        V.format(name, b.name),
        line_of(b, "def downgrade"),
    )
    assert by_design["severity"] == "warning"
    assert "RuntimeError('Cannot undelete data!')" in by_design["message"]
    assert where(raised) == (
        "irreversible",
        "c3c3c3c3c3c3",
        V.format(name, c.name),
        line_of(c, "def downgrade"),
    )
    assert "NotImplementedError: total cannot be dropped" in raised["message"]
    assert set(cases(r).values()) == {"passed"}
    errors = verify(FIXTURES / name, "--irreversible", "error")
    assert [f["severity"] for f in errors.findings()] == ["error", "error"]
    assert verify(FIXTURES / name, "--irreversible", "allow").findings() == []


def test_long_correct_history_has_no_finding_with_one_or_two_lanes(tmp_path: Path) -> None:
    write_project(tmp_path, long_history(120))
    for jobs in ("1", "2"):
        r = verify(tmp_path, "--jobs", jobs)
        assert r.findings() == [], r.findings()
        assert len(cases(r)) == 120
        assert set(cases(r).values()) == {"passed"}
        assert r.check("stepwise")["note"].startswith("120 of 120 revisions walked")


def _with_mistake(tmp_path: Path, n: int, at: int) -> Path:
    revs = long_history(n)
    bad = revs[at]
    revs[at] = Rev(
        bad.rev, bad.down, bad.upgrade + '\nop.execute("CREATE SEQUENCE stray")', bad.downgrade
    )
    return write_project(tmp_path, revs)


def test_a_mistake_late_in_a_long_history_is_found_by_the_second_lane(tmp_path: Path) -> None:
    project = _with_mistake(tmp_path, 40, 33)
    r = verify(project, "--jobs", "2")
    assert "2 parallel lanes" in r.check("stepwise")["note"]
    (f,) = r.findings()
    assert (f["rule"], f["revision"]) == ("downgrade-leaves-behind", "r0033")
    assert f["message"] == "downgrade of r0033 leaves sequence `stray`"


# env.py's runs, logged: each worker's first run takes 0.5 s more (its imports, say)
LOGGED_RUN = """\
import os, sys, time
from pathlib import Path

_log = Path(__file__).with_name("runs.log")
_first = not hasattr(sys, "_preflight_test_ran")
sys._preflight_test_ran = True
with _log.open("a") as f:
    f.write(f"{os.getpid()} start {time.time()}\\n")
if _first:
    time.sleep(0.5)
"""
LOGGED_END = """
with _log.open("a") as f:
    f.write(f"{os.getpid()} end {time.time()}\\n")
"""


def test_the_second_lane_upgrades_to_its_slice_while_env_py_is_probed(tmp_path: Path) -> None:
    """Lane 1's worker would wait for the probe of env.py on lane 0 with a CPU free: its
    upgrade to its slice's start runs meanwhile (Workbench.open's head start). Both
    workers' first env.py runs overlap, and the walk is as without it."""
    write_project(tmp_path, long_history(40))
    env_py = tmp_path / "migrations" / "env.py"
    env_py.write_text(LOGGED_RUN + histories.ENV_PY + LOGGED_END)
    r = verify(tmp_path, "--jobs", "2")
    assert r.findings() == [], r.findings()
    assert set(cases(r).values()) == {"passed"} and len(cases(r)) == 40
    assert "2 parallel lanes" in r.check("stepwise")["note"]
    first: dict[str, dict[str, float]] = {}
    for line in (env_py.parent / "runs.log").read_text().splitlines():
        pid, what, at = line.split()
        first.setdefault(pid, {}).setdefault(what, float(at))
    assert len(first) == 2, first
    starts = [runs["start"] for runs in first.values()]
    ends = [runs["end"] for runs in first.values()]
    assert max(starts) < min(ends), first


def test_beside_the_other_checks_lane_0_walks_its_slice_after_them(tmp_path: Path) -> None:
    """With upgrade and roundtrip on lane 0, lane 1 walks at once and lane 0 walks the
    first slice once they are done: every revision walked once, the same finding as one
    lane after the other checks (--jobs 1)."""
    project = _with_mistake(tmp_path, 40, 5)  # early: in lane 0's slice
    checks = "upgrade,roundtrip,stepwise"
    results = [verify(project, "--jobs", jobs, checks=checks) for jobs in ("2", "1")]
    for r in results:
        assert r.check("upgrade")["status"] == "passed", r.check("upgrade")["note"]
        walked = [f for f in r.findings() if f["check"] == "stepwise"]
        assert [(f["rule"], f["revision"]) for f in walked] == [
            ("downgrade-leaves-behind", "r0005")
        ]
        assert len(cases(r)) == 40
    assert "2 parallel lanes" in results[0].check("stepwise")["note"]
    assert "parallel" not in results[1].check("stepwise")["note"]


def test_a_lane_done_early_takes_over_the_end_of_a_slower_one(tmp_path: Path) -> None:
    """The second slice's downgrades are slow (0.2 s each from r0080, which the plan
    cannot know): the first lane, done long before, upgrades to a cut in the rest of the
    second slice and walks from there. Every revision is walked once, in order, and the
    leftover in the part taken over is found, once."""
    revs = long_history(150)
    for i in range(80, 150):
        r = revs[i]
        slow = "import time\ntime.sleep(0.2)\n" + textwrap.dedent(r.downgrade).strip()
        revs[i] = Rev(r.rev, r.down, r.upgrade, slow)
    bad = revs[145]
    revs[145] = Rev(
        bad.rev, bad.down, bad.upgrade + '\nop.execute("CREATE SEQUENCE stray")', bad.downgrade
    )
    write_project(tmp_path, revs)
    r = verify(tmp_path, "--jobs", "2")
    (f,) = r.findings()
    assert (f["rule"], f["revision"]) == ("downgrade-leaves-behind", "r0145")
    assert f["message"] == "downgrade of r0145 leaves sequence `stray`"
    walked = cases(r)
    assert list(walked) == [x.rev for x in revs]  # each once, in order
    assert {k for k, v in walked.items() if v != "passed"} == {"r0145"}
    note = r.check("stepwise")["note"]
    assert note.startswith("150 of 150 revisions walked"), note
    assert "of them by a lane done early with its own slice" in note, note


def test_shards_walk_their_share_only(tmp_path: Path) -> None:
    project = _with_mistake(tmp_path, 40, 33)
    first = verify(project, "--shard", "1/2", "--jobs", "1")
    second = verify(project, "--shard", "2/2", "--jobs", "1")
    assert first.findings() == []
    assert [f["revision"] for f in second.findings()] == ["r0033"]
    walked = set(cases(first)) | set(cases(second))
    assert walked == {f"r{i:04d}" for i in range(40)}
    assert not set(cases(first)) & set(cases(second))
    assert "this shard" in second.check("stepwise")["note"]


def test_split_balances_replay_against_walking() -> None:
    assert split(0, 10, 1, 0.15) == [(0, 10)]
    slices = split(0, 200, 2, 0.15)
    assert slices[0][0] == 0 and slices[-1][1] == 200
    (a, b), (c, d) = slices
    assert b == c
    # the second lane first replays [0, c) at 0.15 a revision: the first walks further
    assert abs((b - a) - (c * 0.15 + (d - c))) <= 1
    assert split(100, 200, 3, 0.15)[0][0] == 100
    # slice 0 starts `delay` revisions late: it is that much shorter in walking time
    (a, b), (c, d) = split(0, 200, 2, 0.15, delay=30)
    assert b < slices[0][1]
    assert abs((b - a) + 30 - (c * 0.15 + (d - c))) <= 1
    # later revisions walk slower: with growth, the last lane gets fewer of them
    (a, b), (c, d) = split(0, 200, 2, 0.15, growth=1 / 400)
    assert b > slices[0][1]

    def walked(x: int) -> float:
        return x + x * (x - 1) / 800

    assert abs(walked(b) - (0.15 * walked(c) + walked(d) - walked(c))) <= 1.5
    # a slice past the base first pays its start: the first walks that much further
    (a, b), (c, d) = split(0, 200, 2, 0.15, start_cost=13)
    assert b > slices[0][1]
    assert abs((b - a) - (c * 0.15 + 13 + (d - c))) <= 1
    # a shard's first slice starts past the base too: both pay it, and it cancels out
    assert split(100, 200, 2, 0.15, start_cost=13) == split(100, 200, 2, 0.15)


def test_lane_0_is_not_held_for_a_check_that_skips_at_once() -> None:
    """roundtrip skips before it runs anything when a revision is irreversible by design,
    and compat without a base ref: lane 0 then joins the walk after the others alone,
    and its slice is cut by those only."""
    others = [CHECKS["upgrade"], CHECKS["roundtrip"], CHECKS["compat"]]
    for fixture, base_ref, runs in (
        ("irreversible_by_design", None, ["upgrade"]),
        ("irreversible_by_design", "main", ["upgrade", "compat"]),
        ("sync_good", None, ["upgrade", "roundtrip"]),
        ("sync_good", "main", ["upgrade", "roundtrip", "compat"]),
    ):
        history = load_history([FIXTURES / fixture / "migrations" / "versions"], recursive=False)
        n = len(history.revisions)
        assert n > 0
        assert busy_before_walk(others, history, base_ref) == busy_cost(runs, n), fixture
    assert busy_cost(["upgrade"], 5) < busy_cost(["upgrade", "roundtrip"], 5)
    assert busy_cost(["upgrade"], 5) < busy_cost(["upgrade", "compat"], 5)


# -- seeding, directly against a server ----------------------------------------------------
def test_seeding_respects_keys_uniques_checks_and_enums(db: Any) -> None:
    db.execute("""
        CREATE TYPE mood AS ENUM ('ok', 'meh', 'bad');
        CREATE TABLE parent (id serial PRIMARY KEY, code varchar(3) NOT NULL UNIQUE);
        CREATE TABLE child (
            id bigint PRIMARY KEY,
            parent_id int NOT NULL REFERENCES parent(id),
            kind text NOT NULL CHECK (kind IN ('x', 'y')),
            mood mood NOT NULL,
            at timestamptz NOT NULL,
            ok boolean,
            amount numeric(4, 2) NOT NULL CHECK (amount > 0)
        );
        CREATE TABLE lonely (id int PRIMARY KEY REFERENCES lonely(id), weird point NOT NULL,
                             w tsquery NOT NULL);
        CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);
    """)
    out = seed_empty_tables(db, exclude=("alembic_version",))
    assert sorted(out.filled) == ["child", "parent"]
    assert [t for t, _ in out.skipped] == ["lonely"]
    assert db.execute("SELECT count(*) FROM parent").fetchone() == (3,)
    assert db.execute("SELECT count(DISTINCT code) FROM parent").fetchone() == (3,)
    rows = db.execute("SELECT parent_id, kind, mood::text FROM child ORDER BY id").fetchall()
    assert len(rows) == 3
    assert {k for _, k, _ in rows} <= {"x", "y"}
    assert db.execute("SELECT count(*) FROM alembic_version").fetchone() == (0,)
    # filled tables are left alone the next time; a re-created table is filled again
    again = seed_empty_tables(db, exclude=("alembic_version",), known=out.seen)
    assert again.filled == () and again.skipped == ()


def test_user_rows_from_the_settings_file(tmp_path: Path) -> None:
    project = tmp_path / "p"
    shutil.copytree(FIXTURES / "not_null_no_default", project)
    settings = project / ".alembic-preflight.yml"
    settings.write_text("data:\n  b2b2b2b2b2b2:\n    orders:\n      - {id: 7, note: real}\n")
    (f,) = verify(project, "--no-seed-data").findings()
    assert (f["rule"], f["revision"]) == ("fails-with-rows", "b2b2b2b2b2b2")
    settings.write_text("data:\n  b2b2b2b2b2b2:\n    orders:\n      - {nope: 1}\n")
    (f,) = verify(project, "--no-seed-data").findings()
    assert (f["rule"], f["revision"]) == ("data-failed", "b2b2b2b2b2b2")
    assert "rows for `orders` from" in f["message"] and ".alembic-preflight.yml" in f["message"]
    assert '"nope"' in f["message"]


def test_declared_rows_reach_the_upgrade_check_and_survive_a_rebuild() -> None:
    # issue 16: `data:` rows went only to the stepwise walk, and were lost when the walk
    # rebuilt its database after a revision that leaves something behind (c3)
    name = "declared_rows"
    d = FIXTURES / name / "migrations/versions/d4d4d4d4d4d4_add_customer_ref.py"
    r = verify(FIXTURES / name, "--no-seed-data", checks="upgrade,stepwise")
    found = {(f["check"], f["rule"], f["revision"]) for f in r.findings()}
    assert found == {
        ("stepwise", "downgrade-leaves-behind", "c3c3c3c3c3c3"),
        ("stepwise", "fails-with-rows", "d4d4d4d4d4d4"),
        ("upgrade", "migration-failed", "d4d4d4d4d4d4"),
    }
    for f in r.findings():
        if f["revision"] == "d4d4d4d4d4d4":
            assert (f["file"], f["line"]) == (V.format(name, d.name), line_of(d, "op.add_column"))
            assert 'column "customer_ref" of relation "orders" contains null values' in f["message"]


# env.py as histories.ENV_PY, with the transaction mode a project chooses, and a line
# appended to a file for each of its runs (how many the walk needed)
COUNTING_ENV_PY = histories.ENV_PY.replace(
    "def run_migrations_online() -> None:\n",
    "def run_migrations_online() -> None:\n"
    "    with open(os.environ['ENV_RUNS'], 'a') as runs:\n"
    "        runs.write('run\\n')\n",
).replace(
    "context.configure(connection=connection, target_metadata=target_metadata)",
    "context.configure(connection=connection, target_metadata=target_metadata,\n"
    "                          transaction_per_migration=PER_MIGRATION)",
)


def _defects_among_correct_ones() -> list[Rev]:
    """Downgrades that fail (with rows and without), raise NotImplementedError when run,
    leave an enum type or a sequence behind (a re-upgrade of either fails), one downgrade
    and one upgrade that fail only with rows, each between correct revisions."""
    revs = long_history(16)
    defects = {
        3: (
            'op.add_column("t0000", sa.Column("late", sa.Integer()))',
            'op.drop_column("t0000", "lat")',
        ),
        5: (
            'op.create_index("ix_t0000_late", "t0000", ["late"])',
            'if op.get_bind() is not None:\n    raise NotImplementedError("kept on purpose")',
        ),
        7: (
            'sa.Enum("a", "b", name="grade").create(op.get_bind())\n'
            'op.add_column("t0000", sa.Column("grade", sa.Enum(name="grade", create_type=False)))',
            'op.drop_column("t0000", "grade")',
        ),
        9: ('op.execute("CREATE SEQUENCE ticket_no")', "pass"),
        11: (
            'op.add_column("t0000", sa.Column("code", sa.String(8)))',
            'op.add_column("t0000", sa.Column("code_old", sa.Integer(), nullable=False))\n'
            'op.drop_column("t0000", "code_old")\n'
            'op.drop_column("t0000", "code")',
        ),
        13: (
            'op.add_column("t0000", sa.Column("owner", sa.Integer(), nullable=False))',
            'op.drop_column("t0000", "owner")',
        ),
    }
    out: list[Rev] = []
    for i, r in enumerate(revs):
        out.append(r)
        if i in defects:
            up, dn = defects[i]
            out.append(Rev(f"d{i:04d}", out[-1].rev, up, dn, message=f"defect {i}"))
    fixed: list[Rev] = []
    for r in out:  # each revision after its predecessor in `out`
        down = fixed[-1].rev if fixed else None
        fixed.append(Rev(r.rev, down, r.upgrade, r.downgrade, message=r.message))
    return fixed


@pytest.mark.parametrize("per_migration", [False, True])
def test_the_fast_walk_goes_on_past_downgrades_that_fail_or_leave_things_behind(
    tmp_path: Path, per_migration: bool
) -> None:
    """Issue 21: such a downgrade is undone (a savepoint) inside the fast walk, which goes
    on from its revision: the findings are the per-request walk's, in either transaction
    mode, and env.py runs hardly more often than for the same history without them."""
    revs = _defects_among_correct_ones()
    project = write_project(tmp_path / "p", revs)
    env_py = project / "migrations" / "env.py"
    env_py.write_text(f"import os\nPER_MIGRATION = {per_migration}\n" + COUNTING_ENV_PY)
    runs = tmp_path / "runs"
    r = verify(project, "--jobs", "1", env={"ENV_RUNS": str(runs)})
    versions = project / "migrations" / "versions"

    def at(rev: str, text: str) -> tuple[str, int]:
        path = next(versions.glob(f"{rev}_*.py"))
        return f"{rev}", line_of(path, text)

    found = sorted((f["rule"], f["revision"], f["line"], f["severity"]) for f in r.findings())
    assert found == sorted(
        [
            ("downgrade-failed", *at("d0003", 'drop_column("t0000", "lat")'), "error"),
            ("irreversible", *at("d0005", "def downgrade"), "warning"),
            ("downgrade-leaves-behind", *at("d0007", "def downgrade"), "error"),
            ("downgrade-leaves-behind", *at("d0009", "def downgrade"), "error"),
            ("fails-with-rows", *at("d0011", '"code_old", sa.Integer()'), "error"),
            ("fails-with-rows", *at("d0013", '"owner", sa.Integer()'), "error"),
        ]
    ), r.stdout
    assert (
        "leaves type `grade` (enum)"
        in next(f for f in r.findings() if f["revision"] == "d0007")["message"]
    )
    assert r.check("stepwise")["note"].startswith(f"{len(revs)} of {len(revs)} revisions walked")
    assert set(cases(r).values()) == {"passed", "failed"}
    # the downgrade that fails only with rows is left to the per-request walk: a rebuild's
    # replay, its upgrade, downgrade, the retry without rows, its upgrade again, then a new
    # fast run (6 runs); the other five cost no run of their own (14 runs in all before
    # the fast walk went on past them, 8 now)
    with_defects = len(runs.read_text().splitlines())
    runs.unlink()
    clean = [Rev(x.rev, x.down, x.upgrade, x.downgrade, x.message) for x in revs]
    for i, x in enumerate(clean):
        if x.rev.startswith("d"):
            clean[i] = Rev(x.rev, x.down, "pass", "pass", x.message)
    correct = write_project(tmp_path / "q", clean)
    (correct / "migrations" / "env.py").write_text(env_py.read_text())
    assert verify(correct, "--jobs", "1", env={"ENV_RUNS": str(runs)}).findings() == []
    without = len(runs.read_text().splitlines())
    assert with_defects <= without + 6, (with_defects, without)


def test_a_deferred_violation_is_found_at_its_revision(tmp_path: Path) -> None:
    """A revision that leaves a row breaking a DEFERRABLE INITIALLY DEFERRED foreign key
    fails when its transaction commits, as `alembic upgrade` commits. The fast walk runs
    many steps in one transaction, so where a constraint is deferrable it commits after
    each step: here the next revision adds the missing parent row, and a walk that
    checked only at its end would pass both."""
    child = (
        'op.execute("CREATE TABLE child (id int PRIMARY KEY, parent_id int '
        'REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)")'
    )
    revs = [
        Rev(
            "d0",
            None,
            'op.create_table("parent", sa.Column("id", sa.Integer, primary_key=True))',
            'op.drop_table("parent")',
        ),
        Rev("d1", "d0", child, 'op.drop_table("child")'),
        Rev(
            "d2",
            "d1",
            'op.execute("INSERT INTO child VALUES (424242, 999999)")',
            'op.execute("DELETE FROM child WHERE id = 424242")',
        ),
        Rev(
            "d3",
            "d2",
            'op.execute("INSERT INTO parent VALUES (999999)")',
            'op.execute("DELETE FROM parent WHERE id = 999999")',
        ),
    ]
    project = write_project(tmp_path, revs)
    r = verify(project)
    (failed,) = [f for f in r.findings() if f["severity"] == "error"]
    assert (failed["rule"], failed["revision"], failed["line"]) == ("upgrade-failed", "d2", 15)
    assert failed["file"].endswith("migrations/versions/d2_step.py")
    assert failed["message"] == (
        "upgrade of d2 fails (upgraded alone from its parent): ForeignKeyViolation: insert "
        'or update on table "child" violates foreign key constraint "child_parent_id_fkey"'
    )
    assert "DEFERRABLE INITIALLY DEFERRED" in failed["fix"]
    assert cases(r) == {"d0": "passed", "d1": "passed", "d2": "failed", "d3": "skipped"}
    # without d3, `alembic upgrade head` fails too, at its one commit: no revision to
    # name there, and no hint about env.py (which did nothing wrong)
    (project / "migrations/versions/d3_step.py").unlink()
    r = verify(project, checks="upgrade")
    (whole,) = r.findings()
    assert (whole["rule"], whole["revision"]) == ("migration-failed", None)
    assert whole["message"].startswith(
        "upgrade head on an empty database fails at commit, after its migrations ran: "
        "ForeignKeyViolation"
    )
    assert "the stepwise check" in whole["fix"] and "env.py" not in whole["fix"]


def _valid_row_under_a_deferred_constraint() -> list[Rev]:
    """e2 writes a valid child row under a DEFERRABLE INITIALLY DEFERRED foreign key; its
    downgrade deletes it and its parent, then alters the child table; e1 and e0 drop the
    tables."""
    child = (
        'op.execute("CREATE TABLE child (id int PRIMARY KEY, parent_id int '
        'REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED, note text)")'
    )
    return [
        Rev(
            "e0",
            None,
            'op.create_table("parent", sa.Column("id", sa.Integer, primary_key=True))',
            'op.drop_table("parent")',
        ),
        Rev("e1", "e0", child, 'op.drop_table("child")'),
        Rev(
            "e2",
            "e1",
            'op.execute("INSERT INTO parent VALUES (777777)"); '
            'op.execute("INSERT INTO child VALUES (424242, 777777)")',
            'op.execute("DELETE FROM child WHERE id = 424242"); '
            'op.execute("DELETE FROM parent WHERE id = 777777"); '
            "op.execute(\"ALTER TABLE child ALTER COLUMN note SET DEFAULT 'x'\"); "
            'op.execute("ALTER TABLE child ALTER COLUMN note DROP DEFAULT")',
        ),
        Rev(
            "e3",
            "e2",
            'op.add_column("parent", sa.Column("n", sa.Integer))',
            'op.drop_column("parent", "n")',
        ),
    ]


def test_a_valid_row_under_a_deferred_constraint_does_not_stop_an_alter_table(
    tmp_path: Path,
) -> None:
    """A valid row written to a table with a DEFERRABLE INITIALLY DEFERRED foreign key
    leaves its check pending until the transaction ends; PostgreSQL refuses ALTER TABLE
    on that table meanwhile ("pending trigger events"). A deploy commits the upgrade
    before a downgrade runs: the walk must not report the downgrade as failing."""
    project = write_project(tmp_path, _valid_row_under_a_deferred_constraint())
    r = verify(project)
    assert r.findings() == []
    assert cases(r) == {"e0": "passed", "e1": "passed", "e2": "passed", "e3": "passed"}


def test_pending_checks_that_stop_a_downgrade_in_one_transaction_are_explained(
    tmp_path: Path,
) -> None:
    """The same history, downgraded to base in one transaction (roundtrip, as `alembic
    downgrade base` runs it): e2's DELETE of the parent row leaves a deferred check
    pending, and dropping the table then fails ("pending trigger events"). That finding
    is true (Alembic's own run fails alike); it says why, and what to change."""
    project = write_project(tmp_path, _valid_row_under_a_deferred_constraint())
    r = verify(project, checks="roundtrip")
    (finding,) = r.findings()
    assert (finding["check"], finding["rule"], finding["revision"]) == (
        "roundtrip",
        "downgrade-failed",
        "e0",
    ), finding
    assert "pending trigger events" in finding["message"]
    assert "transaction_per_migration=True" in finding["fix"]
    assert "SET CONSTRAINTS ALL IMMEDIATE" in finding["fix"]
