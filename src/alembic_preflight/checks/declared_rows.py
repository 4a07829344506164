"""`data:`: rows the settings declare for a revision, put in its tables just before it
runs, in every check that runs it (upgrade, roundtrip's second upgrade, the copy at head
drift and roundtrip start from, stepwise and its rebuilds): a migration meets the same
realistic rows wherever it runs (issue 16)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

from alembic_preflight.catalog.seed import insert_rows
from alembic_preflight.checks.base import CheckContext
from alembic_preflight.findings import Finding, RuleText, Severity, first_line
from alembic_preflight.worker.protocol import UPGRADE, Outcome

Rows = dict[str, list[dict[str, Any]]]  # table -> rows

# The checks that can report a row `data:` declares being refused, in the order one is
# chosen to say it (once, whichever of them runs).
_REPORTERS = ("upgrade", "roundtrip", "stepwise")


def user_data(ctx: CheckContext) -> dict[str, Rows]:
    """`data:` keyed by revision id (the settings may name a revision by label or prefix)."""
    ids = ctx.project.history.named_by(ctx.settings).data
    return {
        ids[name]: {table: list(rows) for table, rows in tables.items()}
        for name, tables in ctx.settings.data.items()
    }


def reports_refusals(ctx: CheckContext, check_id: str) -> bool:
    """Whether `check_id` is the one that says a declared row was refused."""
    running = [c for c in _REPORTERS if c in ctx.settings.checks]
    return bool(running) and running[0] == check_id


def insert_declared(
    conn: psycopg.Connection[Any], ctx: CheckContext, check_id: str, rev: str, rows: Rows
) -> tuple[list[str], list[Finding]]:
    """Insert `rev`'s declared rows: (tables filled, findings for rows refused; only for
    the check that reports them)."""
    filled: list[str] = []
    refused: list[Finding] = []
    for table, table_rows in rows.items():
        try:
            insert_rows(conn, table, table_rows)
            filled.append(table)
        except psycopg.OperationalError:
            raise  # the connection, not the rows
        except psycopg.Error as e:
            if reports_refusals(ctx, check_id):
                refused.append(data_failed(ctx, check_id, rev, table, e))
    return filled, refused


def upgrade_with_rows(
    ctx: CheckContext,
    check_id: str,
    target: str = "heads",
    lane: int = 0,
    on_running: Callable[[Any], None] | None = None,
) -> tuple[Outcome, list[Finding]]:
    """`upgrade <target>`, stopping before each revision with declared rows to insert
    them (into its parents' schema, as the walk does); `on_running` hears each revision
    start (Workbench.run)."""
    bench = ctx.bench
    assert bench is not None
    data = user_data(ctx)
    refused: list[Finding] = []
    history = ctx.project.history
    for rev in history.topological_order() if data else ():
        if rev not in data:
            continue
        for parent in history.parents(rev) + history.dependencies(rev):
            outcome = bench.run(UPGRADE, parent, lane=lane, on_running=on_running)
            if not outcome.ok:
                return outcome, refused
        with psycopg.connect(
            bench.server.conninfo(bench.lanes[lane].dbname), autocommit=True
        ) as conn:
            refused += insert_declared(conn, ctx, check_id, rev, data[rev])[1]
    return bench.run(UPGRADE, target, lane=lane, on_running=on_running), refused


def data_failed(
    ctx: CheckContext, check_id: str, rev: str, table: str, error: psycopg.Error
) -> Finding:
    from alembic_preflight.settings import data_line, find_settings_file

    found = find_settings_file(ctx.settings.project_dir)
    path = found[0].resolve() if found else None
    where = ctx.rel(path) if path else "the settings"
    return Finding(
        check=check_id,
        rule="data-failed",
        severity=Severity.ERROR,
        message=f"rows for `{table}` from {where} (data: {rev}) cannot be inserted "
        f"before {rev}: {first_line(str(error))}",
        revision=rev,
        file=where if path else None,
        line=data_line(path, rev) if path else None,
    )


RULES: dict[str, RuleText] = {
    "data-failed": RuleText(
        "Rows from the settings cannot be inserted",
        "The rows `data:` declares for this revision were refused by the database (a column "
        "that does not exist there yet, a constraint). Correct them in the settings file. "
        "Said once, by the first of upgrade, roundtrip and stepwise that runs.",
    ),
}
