"""From a statement timed on `sample-rows` rows to what it would cost on the production
table: linear in the rows (a rewrite or a scan reads each row once; an index build's sort
is n·log n, close to linear at these sizes, so "about")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    """One statement: measured on the traced run's rows, and on the grown tables."""

    small_s: float
    big_s: float
    big_rows: int

    def per_row(self) -> float:
        """The sample's whole time spread over its rows: an upper bound (the statement's
        fixed cost is counted as rows' work), never zero where a difference of two
        timings would drown in noise (a foreign key's lookup per row costs microseconds)."""
        return self.big_s / max(1, self.big_rows)

    def at(self, rows: int) -> float:
        """Seconds at `rows` rows."""
        return max(self.small_s, self.per_row() * rows)


def production_rows(sizes: Mapping[str, int], table: str) -> int | None:
    """The production size given for `table` (as a trace names it: schema-qualified when
    outside the search path), matching `orders`, `public.orders` or `"Orders"`."""
    want = _plain(table)
    for name, rows in sizes.items():
        given = _plain(name)
        if given == want or given == f"public.{want}" or want == f"public.{given}":
            return rows
    return None


def _plain(name: str) -> str:
    return name.replace('"', "").strip()


def rows_text(rows: int) -> str:
    return f"{rows:,}"
