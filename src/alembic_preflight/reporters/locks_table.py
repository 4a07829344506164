"""The job summary's table of what a deploy would block (the locks check's statements):
one row per statement and table, longest projected block first."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from alembic_preflight.findings import LockedStatement, duration, lock_mode


def locks_section(
    statements: Sequence[LockedStatement],
    where: Callable[[LockedStatement], str],
    cell: Callable[[str], str],
    limit: int = 20,
) -> str:
    """`where` gives a statement's file:line (linked); `cell` makes text safe in a cell."""
    if not statements:
        return ""

    def order(s: LockedStatement) -> tuple[float, float]:
        return (-(s.projected_s or 0.0), -(s.per_million_s or 0.0))

    rows = [
        "### What a deploy would block",
        "",
        "| Revision | Where | Table | Lock | Blocks | Does | Projected | Per million rows |",
        "|---|---|---|---|---|---|---:|---:|",
    ]
    for s in sorted(statements, key=order)[:limit]:
        does = "rewrite" if s.rewrite else "index build" if s.index else "scan" if s.scan else ""
        projected = (
            f"{duration(s.projected_s)} at {s.production_rows:,} rows"
            if s.projected_s is not None and s.production_rows is not None
            else ""
        )
        per_million = duration(s.per_million_s) if s.per_million_s is not None else ""
        rows.append(
            f"| {cell(s.revision)} | {where(s)} | {cell(s.table)} | {lock_mode(s.mode)} | "
            f"{s.blocks} | {does} | {projected} | {per_million} |"
        )
    if len(statements) > limit:
        rows.append(f"\n{len(statements) - limit} more in the JSON report.")
    return "\n".join(rows)
