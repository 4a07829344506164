"""Traces into findings: which statement blocks whom, for how long, and how to avoid it.

Each finding is placed at the statement's line in the revision file. A statement that
rewrites, scans or indexes a table holding rows is graded by its projected block: an
error when the table's production size is known (`table-rows`) and the lock would be held
longer than `lock-budget`; a warning otherwise."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from alembic_preflight.checks.locks.projection import Timing, production_rows, rows_text
from alembic_preflight.findings import (
    Finding,
    LockedStatement,
    RuleText,
    Severity,
    duration,
    lock_mode,
)
from alembic_preflight.worker.protocol import Sampled, TableEffect, Traced, TracedStatement

ID = "locks"

STRONG = ("ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock")

RULES: dict[str, RuleText] = {
    "blocking-index-build": RuleText(
        "CREATE INDEX without CONCURRENTLY on a table that holds rows",
        "Building an index in a transaction holds a SHARE lock on the table for the whole "
        "build: every INSERT, UPDATE and DELETE waits. Build it with "
        "`op.create_index(..., postgresql_concurrently=True)` inside "
        "`with op.get_context().autocommit_block():`.",
    ),
    "table-rewrite": RuleText(
        "A statement rewrites a table that holds rows under ACCESS EXCLUSIVE",
        "A column type change (other than a few binary-compatible ones), a volatile default, "
        "or SET TABLESPACE/CLUSTER/VACUUM FULL writes the whole table anew while reads and "
        "writes wait. Add a new column, backfill it in batches, then swap.",
    ),
    "validating-constraint": RuleText(
        "A foreign key or CHECK is added and validated in one step",
        "Adding the constraint reads the whole table under a lock that blocks writes. Add it "
        "`NOT VALID` (postgresql_not_valid=True), then run `VALIDATE CONSTRAINT` in a later "
        "revision: it takes a lock that lets reads and writes go on.",
    ),
    "set-not-null-scan": RuleText(
        "SET NOT NULL reads the whole table under ACCESS EXCLUSIVE",
        "PostgreSQL checks every row while reads and writes wait. Add "
        "`CHECK (col IS NOT NULL) NOT VALID`, validate it in a later revision, then SET NOT "
        "NULL (PostgreSQL 12+ then skips the scan) and drop the CHECK.",
    ),
    "long-exclusive-lock": RuleText(
        "A strong lock is held while later statements of the same transaction run",
        "PostgreSQL keeps every lock until the transaction ends, so a data update or another "
        "rewrite after an ALTER TABLE extends how long the table is blocked. Split the "
        "revision, or commit in between (an autocommit_block).",
    ),
    "bootstrap-failed": RuleText(
        "The bootstrap failed",
        "The `bootstrap:` SQL file or module:function, run before the first upgrade, "
        "raised an error. Fix it; no revision could be traced.",
    ),
    "upgrade-failed": RuleText(
        "A revision's upgrade failed, with rows and on empty tables",
        "Upgraded alone from its parent, the revision raised an error; no revision after it "
        "could be traced. Fix its `upgrade()`; the detail shows the statement and the error.",
    ),
    "lock-timeout-missing": RuleText(
        "A strong lock is requested with no lock_timeout",
        "If any long query holds a lock on the table, the migration waits for it, and every "
        "query on the table queues behind the migration. Set a lock_timeout (e.g. "
        "`op.execute(\"SET lock_timeout = '2s'\")` at the top of upgrade(), or in env.py) and "
        "retry the deploy when it fires.",
    ),
}

SEVERITY = {
    "blocking-index-build": Severity.WARNING,
    "table-rewrite": Severity.WARNING,
    "validating-constraint": Severity.WARNING,
    "set-not-null-scan": Severity.WARNING,
    "long-exclusive-lock": Severity.WARNING,
    "lock-timeout-missing": Severity.NOTICE,
}

_VALIDATES = re.compile(r"\b(?:FOREIGN\s+KEY|REFERENCES|CHECK)\b", re.I)
_NOT_NULL = re.compile(r"\bSET\s+NOT\s+NULL\b", re.I)
_FIXES = {
    "blocking-index-build": "create the index with postgresql_concurrently=True inside "
    "op.get_context().autocommit_block()",
    "table-rewrite": "add a new column, backfill it in batches, then swap it in",
    "validating-constraint": "add the constraint NOT VALID, then VALIDATE CONSTRAINT in a "
    "later revision",
    "set-not-null-scan": "add CHECK (col IS NOT NULL) NOT VALID, validate it in a later "
    "revision, then SET NOT NULL",
    "long-exclusive-lock": "split the revision, or commit before the later statements "
    "(op.get_context().autocommit_block())",
    "lock-timeout-missing": "SET lock_timeout (e.g. '2s') before the statement, in "
    "upgrade() or env.py",
}


@dataclass(frozen=True)
class Limits:
    """What the grading needs from the settings."""

    sizes: Mapping[str, int]  # table -> production rows (table-rows, --table-stats)
    budget_s: float  # lock-budget


def blocks(mode: str) -> str:
    return "reads and writes" if mode == "AccessExclusiveLock" else "writes"


def risky_rule(statement: TracedStatement, effect: TableEffect) -> str | None:
    """The rule one table's effect breaks, or None (a table with no rows blocks nobody
    for long)."""
    if not effect.rows or effect.mode not in STRONG:
        return None
    if effect.rewritten:
        return "table-rewrite"
    if effect.index_built:
        return "blocking-index-build"
    if effect.scanned:
        if _NOT_NULL.search(statement.sql) and not _VALIDATES.search(statement.sql):
            return "set-not-null-scan"
        return "validating-constraint"
    return None


def risky_tables(trace: Traced) -> tuple[str, ...]:
    """The tables to grow when timing this revision on a larger sample."""
    found: list[str] = []
    for s in trace.statements:
        for e in s.effects:
            if risky_rule(s, e) is not None and e.table not in found:
                found.append(e.table)
    return tuple(found)


def grade(
    trace: Traced,
    sample: Sampled | None,
    limits: Limits,
    *,
    file: str | None,
) -> Iterator[Finding | LockedStatement]:
    """The findings of one revision's upgrade, and the statements the reports list."""
    rev = trace.revision
    statements = trace.statements
    timings = _timings(statements, sample)
    said_timeout = False
    for i, s in enumerate(statements):
        # lock-timeout-missing: once per revision, at its first strong lock on a table
        # that was there before it
        strong_new = [e for e in s.effects if e.new_lock]
        if strong_new and not said_timeout and s.lock_timeout in ("0", ""):
            said_timeout = True
            # the table the statement names first, as below (pg_locks has no order)
            e = min(strong_new, key=lambda e: _named_at(s.sql, e.table))
            yield _finding(
                "lock-timeout-missing",
                f"takes {lock_mode(e.mode)} on `{e.table}` with no lock_timeout set: if a "
                f"long query holds any lock on `{e.table}`, this waits for it, and every "
                f"query on `{e.table}` ({blocks(e.mode)}) queues behind it",
                rev,
                file,
                s,
            )
        yield from _held_while(statements, i, rev, file)
        said: set[str] = set()  # one finding per rule and statement: a foreign key
        # reads two tables; the one the statement names first (the table altered) is said
        for e in sorted(s.effects, key=lambda e: _named_at(s.sql, e.table)):
            rule = risky_rule(s, e)
            if rule is None:
                continue
            timing = timings.get(i)
            rows = production_rows(limits.sizes, e.table)
            held = _held_for(statements, timings, i, rows, limits.sizes)
            record = LockedStatement(
                revision=rev,
                file=file,
                line=s.line,
                sql=s.sql,
                table=e.table,
                mode=e.mode,
                blocks=blocks(e.mode),
                rewrite=e.rewritten,
                scan=e.scanned,
                index=e.index_built,
                seconds=s.seconds,
                sample_rows=timing.big_rows if timing else None,
                sample_seconds=timing.big_s if timing else None,
                per_million_s=round(timing.per_row() * 1e6, 3) if timing else None,
                production_rows=rows,
                projected_s=round(held, 3) if held is not None else None,
            )
            yield record
            if rule in said:
                continue
            said.add(rule)
            over = held is not None and held > limits.budget_s
            finding = _finding(
                rule,
                f"{_what(rule, e)} under {lock_mode(e.mode)}: {blocks(e.mode)} wait "
                f"until its transaction ends; {_cost(record, timing, sample, limits)}",
                rev,
                file,
                s,
            )
            if over:
                finding = _with(finding, Severity.ERROR)
            yield finding


def _named_at(sql: str, table: str) -> tuple[int, str]:
    """Where the statement names `table`; the name breaks a tie (not named at all)."""
    at = sql.find(table.replace('"', ""))
    return (at if at >= 0 else len(sql)), table


def _what(rule: str, e: TableEffect) -> str:
    if rule == "table-rewrite":
        return f"rewrites `{e.table}`"
    if rule == "blocking-index-build":
        return f"builds index `{e.index_built}` on `{e.table}` without CONCURRENTLY"
    if rule == "set-not-null-scan":
        return f"SET NOT NULL reads all of `{e.table}`"
    return f"validates the constraint by reading all of `{e.table}`"


def _cost(
    record: LockedStatement, timing: Timing | None, sample: Sampled | None, limits: Limits
) -> str:
    if timing is None:
        if sample is not None and sample.error:
            return f"not timed on a larger sample ({sample.error})"
        return (
            "the block grows with the table's rows: give its production size (table-rows, "
            "--table-stats) to project it against the lock budget"
        )
    measured = f"measured {duration(timing.big_s)} at {rows_text(timing.big_rows)} rows"
    if record.production_rows is not None and record.projected_s is not None:
        verdict = (
            f", over the lock budget of {duration(limits.budget_s)}"
            if record.projected_s > limits.budget_s
            else ""
        )
        return (
            f"about {duration(record.projected_s)} at {rows_text(record.production_rows)} "
            f"rows ({measured}){verdict}"
        )
    per_million = timing.per_row() * 1e6
    return (
        f"about {duration(per_million)} per million rows ({measured}); give the table's "
        f"size (table-rows) to compare with the lock budget"
    )


def _held_while(
    statements: tuple[TracedStatement, ...], i: int, rev: str, file: str | None
) -> Iterator[Finding]:
    """long-exclusive-lock at statement i: it does real work (changes rows, or rewrites,
    scans or indexes) while a strong lock on a table with rows, taken earlier in the same
    transaction, is still held."""
    s = statements[i]
    works = s.rowcount > 0 or any(e.rewritten or e.scanned or e.index_built for e in s.effects)
    if not works:
        return
    held: dict[str, tuple[str, int | None]] = {}
    for earlier in statements[:i]:
        if earlier.transaction != s.transaction:
            continue
        for e in earlier.effects:
            if e.new_lock and e.rows and e.mode in STRONG and e.table not in held:
                held[e.table] = (e.mode, earlier.line)
    if not held:
        return
    table, (mode, line) = next(iter(held.items()))
    what = f"changes {s.rowcount} row(s)" if s.rowcount > 0 else "does more work"
    since = f" since line {line}" if line else ""
    others = f" (and {len(held) - 1} more table(s))" if len(held) > 1 else ""
    yield _finding(
        "long-exclusive-lock",
        f"runs while `{table}`{others} is still locked {lock_mode(mode)}{since} "
        f"({blocks(mode)} wait): this statement {what} in the same transaction, so the "
        f"block lasts as long as both",
        rev,
        file,
        s,
    )


def _timings(statements: tuple[TracedStatement, ...], sample: Sampled | None) -> dict[int, Timing]:
    """Statement index -> its timing on the grown tables, where the sample ran the same
    statements in the same order."""
    if sample is None or sample.error or not sample.tables:
        return {}
    rows = min(n for _, n in sample.tables)
    out: dict[int, Timing] = {}
    for i, (s, (sql, seconds)) in enumerate(zip(statements, sample.statements, strict=False)):
        if s.sql != sql:
            break  # the upgrade took another path on the larger tables: stop pairing
        out[i] = Timing(small_s=s.seconds, big_s=seconds, big_rows=rows)
    return out


def _held_for(
    statements: tuple[TracedStatement, ...],
    timings: Mapping[int, Timing],
    i: int,
    rows: int | None,
    sizes: Mapping[str, int],
) -> float | None:
    """Seconds the lock taken at statement i is held at production size: its own time and
    that of every later statement of its transaction (each projected where its table's
    size is known and it was timed, else as measured). None without the size, or timing."""
    if rows is None or i not in timings:
        return None
    total = 0.0
    for j in range(i, len(statements)):
        s = statements[j]
        if s.transaction != statements[i].transaction:
            break
        timing = timings.get(j)
        sized = [production_rows(sizes, e.table) for e in s.effects]
        known = max((n for n in sized if n is not None), default=None)
        if j == i:
            known = rows
        total += timing.at(known) if timing is not None and known is not None else s.seconds
    return total


def _finding(rule: str, message: str, rev: str, file: str | None, s: TracedStatement) -> Finding:
    return Finding(
        check=ID,
        rule=rule,
        severity=SEVERITY[rule],
        message=message,
        revision=rev,
        file=file,
        line=s.line,
        detail=s.sql,
        fix=_FIXES[rule],
    )


def _with(finding: Finding, severity: Severity) -> Finding:
    from dataclasses import replace

    return replace(finding, severity=severity)
