"""Hand-built reports for the reporter tests (no database, no checks)."""

from __future__ import annotations

from dataclasses import replace

from alembic_preflight.checks import rule_docs
from alembic_preflight.findings import (
    CheckResult,
    DatabaseInfo,
    Finding,
    ProjectInfo,
    Report,
    Severity,
    Status,
)

E, W, N = Severity.ERROR, Severity.WARNING, Severity.NOTICE

BASE = "1a2b3c4d5e6f"
USERS = "2b3c4d5e6f70"
ORDERS = "3c4d5e6f7081"
HEAD_A = "c3f1a2b4d5e6"
MID_B = "4d5e6f708192"
HEAD_B = "d9e8f7a6b5c4"
VERSIONS = "db/migrations/versions"


def _file(rev: str, slug: str) -> str:
    return f"{VERSIONS}/{rev}_{slug}.py"


FILES = {
    BASE: _file(BASE, "initial"),
    USERS: _file(USERS, "users"),
    ORDERS: _file(ORDERS, "orders"),
    HEAD_A: _file(HEAD_A, "add_invoice_table"),
    MID_B: _file(MID_B, "add_status"),
    HEAD_B: _file(HEAD_B, "backfill_status"),
}
PARENTS: dict[str, tuple[str, ...]] = {
    BASE: (),
    USERS: (BASE,),
    ORDERS: (USERS,),
    HEAD_A: (ORDERS,),
    MID_B: (ORDERS,),
    HEAD_B: (MID_B,),
}
MERGE_FIX = f"alembic -c db/alembic.ini merge -m 'merge heads' {HEAD_A} {HEAD_B}"

TRACEBACK = "\n".join(
    ["Traceback (most recent call last):"]
    + [f'  File "env.py", line {i}, in run_migrations' for i in range(1, 19)]
    + ['psycopg.errors.UndefinedColumn: column "status" does not exist']
)


def make_report() -> Report:
    """A realistic failing run: two heads, lint findings, a stepwise failure."""
    graph = CheckResult(
        "graph",
        Status.FAILED,
        0.041,
        findings=(
            Finding(
                "graph",
                "multiple-heads",
                E,
                f"2 heads: {HEAD_A}, {HEAD_B}",
                fix=MERGE_FIX,
            ),
        ),
    )
    lint = CheckResult(
        "lint",
        Status.FAILED,
        0.212,
        findings=(
            Finding(
                "lint",
                "not-null-without-server-default",
                E,
                "orders.status is added NOT NULL without a server_default",
                revision=MID_B,
                file=FILES[MID_B],
                line=21,
                column=5,
                fix="add server_default=sa.text(\"'new'\") or backfill before NOT NULL",
            ),
            Finding(
                "lint",
                "unnamed-constraint",
                W,
                "ForeignKeyConstraint on invoices.order_id has no name",
                revision=HEAD_A,
                file=FILES[HEAD_A],
                line=30,
                column=9,
                fix="name it, e.g. fk_invoices_order_id_orders",
            ),
            Finding(
                "lint",
                "unnamed-constraint",
                W,
                "UniqueConstraint on users.email has no name",
                revision=USERS,
                file=FILES[USERS],
                line=18,
            ),
            Finding(
                "lint",
                "vague-message",
                N,
                "revision message 'fix' says little",
                revision=HEAD_B,
                file=FILES[HEAD_B],
                line=1,
            ),
        ),
    )
    upgrade = CheckResult("upgrade", Status.PASSED, 1.534, note="6 revisions to head")
    drift = CheckResult("drift", Status.SKIPPED, 0.0, note="env.py sets no target_metadata")
    roundtrip = CheckResult(
        "roundtrip",
        Status.FAILED,
        2.75,
        findings=(
            Finding(
                "roundtrip",
                "roundtrip-differs",
                E,
                "upgrade → downgrade → upgrade gives a different schema",
                detail="- index ix_orders_status on orders(status)\n+ (missing)",
            ),
        ),
    )
    stepwise = CheckResult(
        "stepwise",
        Status.FAILED,
        8.5,
        findings=(
            Finding(
                "stepwise",
                "downgrade-failed",
                E,
                f'downgrade of {HEAD_B} failed: column "status" does not exist',
                revision=HEAD_B,
                file=FILES[HEAD_B],
                line=40,
                detail=TRACEBACK,
                fix="drop the index before the column in downgrade()",
            ),
            Finding(
                "stepwise",
                "irreversible",
                N,
                "downgrade raises NotImplementedError",
                revision=USERS,
                file=FILES[USERS],
                line=33,
            ),
        ),
        note="6 revisions, 1 failed",
        cases=(
            (BASE, Status.PASSED),
            (USERS, Status.PASSED),
            (ORDERS, Status.PASSED),
            (HEAD_A, Status.PASSED),
            (MID_B, Status.PASSED),
            (HEAD_B, Status.FAILED),
        ),
    )
    return Report(
        tool_version="0.1.0",
        project=ProjectInfo(
            config="db/alembic.ini",
            script_location="db/migrations",
            revisions=6,
            heads=(HEAD_A, HEAD_B),
            bases=(BASE,),
            directory="db",
            parents=PARENTS,
            files=FILES,
        ),
        database=DatabaseInfo("postgresql", "16.4"),
        checks=(graph, lint, upgrade, drift, roundtrip, stepwise),
        duration_s=13.27,
        rules=rule_docs(),  # as the verifier fills it from the checks' RULES tables
    )


def make_passing_report() -> Report:
    r = make_report()
    return replace(
        r,
        project=replace(r.project, heads=(HEAD_B,)),
        checks=tuple(
            replace(c, status=Status.PASSED, findings=(), cases=()) if c.id != "drift" else c
            for c in r.checks
        ),
    )


HOSTILE = "::error file=x::pwned %0A ok\r\n::set-output name=a::b\nline3 [bold]x[/]"


def make_hostile_report() -> Report:
    """A revision message and a migration error that try to inject workflow commands."""
    r = make_report()
    bad = CheckResult(
        "upgrade",
        Status.FAILED,
        0.5,
        findings=(
            Finding(
                "upgrade",
                "migration-failed",
                E,
                HOSTILE,
                revision=HEAD_A,
                file="db/migrations/versions/a,b:c.py",
                line=3,
                detail="psycopg error\n::error file=y::from SQL\r\n%0A::add-mask::x",
            ),
            Finding(
                "lint",
                "vague-message",
                W,
                "message is '::warning::hi\nthere'",
                revision=HEAD_A,
                file=FILES[HEAD_A],
                line=1,
            ),
        ),
    )
    return replace(r, checks=(*r.checks[:2], bad, *r.checks[3:]))


def many_findings(n: int, severity: Severity = E, rule: str = "unnamed-constraint") -> Report:
    r = make_report()
    findings = tuple(
        Finding(
            "lint",
            rule,
            severity,
            f"finding number {i:03d}",
            revision=f"r{i:03d}",
            file=f"{VERSIONS}/r{i:03d}.py",
            line=i + 1,
        )
        for i in range(n)
    )
    return replace(r, checks=(CheckResult("lint", Status.FAILED, 1.0, findings=findings),))


def make_large_report() -> Report:
    """Issue 8: a 300-revision history with 40 findings, 12 of them irreversible by design."""
    revs = [f"{i:04d}abcdef12" for i in range(300)]
    files = {rev: f"{VERSIONS}/{rev}_step_{i}.py" for i, rev in enumerate(revs)}

    def at(i: int, check: str, rule: str, sev: Severity, msg: str, **kw: object) -> Finding:
        return Finding(check, rule, sev, msg, revision=revs[i], file=files[revs[i]], **kw)  # type: ignore[arg-type]

    lint = tuple(
        [
            at(i * 7, "lint", "unnamed-constraint", W, f"constraint {i} has no name", line=12)
            for i in range(14)
        ]
        + [
            at(i * 11, "lint", "python-side-default", W, f"column c{i} uses default=", line=20)
            for i in range(6)
        ]
        + [
            at(i * 13, "lint", "vague-message", N, "revision message 'update' says little", line=1)
            for i in range(3)
        ]
        + [
            at(
                250 + i,
                "lint",
                "not-null-without-server-default",
                E,
                f"t{i}.c is NOT NULL",
                line=9,
                fix="add a server_default",
            )
            for i in range(2)
        ]
    )
    stepwise = tuple(
        [
            at(
                i * 20,
                "stepwise",
                "irreversible",
                N,
                "downgrade raises NotImplementedError",
                line=30,
            )
            for i in range(12)
        ]
        + [
            at(
                290 + i,
                "stepwise",
                "downgrade-failed",
                E,
                f"downgrade of {revs[290 + i]} failed",
                line=40,
                detail=TRACEBACK,
            )
            for i in range(3)
        ]
    )
    return Report(
        tool_version="0.1.0",
        project=ProjectInfo(
            config="alembic.ini",
            script_location="migrations",
            revisions=300,
            heads=(revs[-1],),
            bases=(revs[0],),
            parents={rev: ((revs[i - 1],) if i else ()) for i, rev in enumerate(revs)},
            files=files,
        ),
        database=DatabaseInfo("postgresql", "17.2"),
        checks=(
            CheckResult("graph", Status.PASSED, 0.3),
            CheckResult("lint", Status.FAILED, 2.1, findings=lint),
            CheckResult("upgrade", Status.PASSED, 41.0, note="300 revisions to head"),
            CheckResult("drift", Status.PASSED, 3.2),
            CheckResult("roundtrip", Status.PASSED, 88.0),
            CheckResult(
                "stepwise",
                Status.FAILED,
                312.5,
                findings=stepwise,
                cases=tuple((r, Status.PASSED) for r in revs),
            ),
        ),
        duration_s=447.3,
        rules=rule_docs(),
    )


LEFT = "0035beef0035"  # its downgrade forgets the enum type
UNNAMED = "0033beef0033"  # its downgrade drops a constraint without a name


def old_revision(i: int) -> str:
    return f"{i:04d}beef{i:04d}"


def make_defects_report(conventions: int = 30) -> Report:
    """The issue's history in small: a naming convention the old revisions never followed
    (errors that sort first by file), one missing enum drop seen by three checks, and an
    unnamed drop seen by lint and by the stepwise downgrade that fails on it."""
    revs = [old_revision(i) for i in range(max(40, conventions))]
    files = {rev: f"{VERSIONS}/{rev}_step_{i}.py" for i, rev in enumerate(revs)}
    project_frames = "\n".join(
        ["Traceback (the project's own frames):"]
        + [
            line
            for i in range(5)
            for line in (
                f'  File "/work/db/migrations/env.py", line {70 + i}, in run_migrations_online',
                f"    step_{i}()",
            )
        ]
        + [
            f'  File "/work/{files[UNNAMED]}", line 22, in downgrade',
            '    op.drop_constraint(None, "orders", type_="check")',
            "sqlalchemy.exc.CompileError: Can't emit DROP CONSTRAINT for constraint "
            "CheckConstraint(<sqlalchemy.sql.elements.TextClause object at 0x7f>, "
            "table=Table('orders', MetaData(), schema=None)); it has no name",
        ]
    )
    lint = (
        *(
            Finding(
                "lint",
                "file-name-template",
                E,
                f"file name {rev}_step_{i}.py does not follow file_template "
                "'%(year)d_%(rev)s_%(slug)s'",
                revision=rev,
                file=files[rev],
                line=1,
                column=1,
                fix="rename the file, or change file_template in alembic.ini",
            )
            for i, rev in enumerate(revs[:conventions])
        ),
        Finding(
            "lint",
            "unnamed-drop-constraint",
            E,
            "drop_constraint(None, ...) can never run: Alembic needs the constraint's name",
            revision=UNNAMED,
            file=files[UNNAMED],
            line=22,
            column=5,
            fix="look the name up in the database (\\d table in psql) and pass it",
        ),
        Finding(
            "lint",
            "unnamed-constraint",
            W,
            "create_check_constraint(None, ...) creates an unnamed check constraint",
            revision=UNNAMED,
            file=files[UNNAMED],
            line=17,
            column=5,
        ),
    )
    roundtrip = (
        Finding(
            "roundtrip",
            "base-not-empty",
            E,
            "downgrade to base leaves type `order_status` (enum)",
            detail="+ type order_status\n+     labels: 'new', 'paid'",
            fix="run the stepwise check to see which revision's downgrade leaves it",
        ),
        Finding(
            "roundtrip",
            "reupgrade-failed",
            E,
            f"upgrade of {LEFT} fails (upgrade head after downgrade to base): "
            'DuplicateObject: type "order_status" already exists',
            revision=LEFT,
            file=files[LEFT],
            line=25,
            detail="statement:\nCREATE TYPE order_status AS ENUM ('new', 'paid')",
        ),
    )
    stepwise = (
        Finding(
            "stepwise",
            "downgrade-leaves-behind",
            E,
            f"downgrade of {LEFT} leaves type `order_status` (enum)",
            revision=LEFT,
            file=files[LEFT],
            line=34,
            detail="+ type order_status\n+     labels: 'new', 'paid'",
            fix="make downgrade() undo everything upgrade() does, and nothing more",
        ),
        Finding(
            "stepwise",
            "downgrade-failed",
            E,
            f"downgrade of {UNNAMED} fails (downgraded alone): CompileError: Can't emit DROP "
            "CONSTRAINT for constraint CheckConstraint(<sqlalchemy.sql.elements.TextClause "
            "object>, table=Table('orders', MetaData(), schema=None)); it has no name",
            revision=UNNAMED,
            file=files[UNNAMED],
            line=22,
            detail=project_frames,
            fix="the cause is lint unnamed-drop-constraint at line 22: look the name up in "
            "the database (\\d table in psql) and pass it",
        ),
        Finding(
            "stepwise",
            "seed-skipped",
            N,
            "table `orders` was left without synthetic rows: no value for `kind`",
            revision=LEFT,
        ),
    )
    return Report(
        tool_version="0.1.0",
        project=ProjectInfo(
            config="db/alembic.ini",
            script_location="db/migrations",
            revisions=len(revs),
            heads=(revs[-1],),
            bases=(revs[0],),
            directory="db",
            parents={rev: ((revs[i - 1],) if i else ()) for i, rev in enumerate(revs)},
            files=files,
        ),
        database=DatabaseInfo("postgresql", "16.4"),
        checks=(
            CheckResult("graph", Status.PASSED, 0.01),
            CheckResult("lint", Status.FAILED, 0.2, findings=lint),
            CheckResult("upgrade", Status.PASSED, 1.0),
            CheckResult("roundtrip", Status.FAILED, 2.0, findings=roundtrip),
            CheckResult("stepwise", Status.FAILED, 9.0, findings=stepwise),
        ),
        duration_s=12.5,
        rules=rule_docs(),
    )
