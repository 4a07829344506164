"""How long a schema snapshot takes: full, and incremental after a one-revision change.

Usage: python bench/snapshot_speed.py ["host=/path/to/socket user=postgres dbname=postgres"]
Without a conninfo it starts the embedded PostgreSQL. For 100 and 500 tables it creates a
scratch database next to the one named, fills it and drops it afterwards, then times:

- full: a fresh `Snapshotter` (what every snapshot cost before snapshots were incremental)
- unchanged: the same Snapshotter again, nothing changed (one listing query)
- incremental: the same Snapshotter after one small migration step (a column added,
  an index created, a table renamed, an enum value added), read back and checked equal
  to a full snapshot
- take_snapshot: the psycopg wrapper (its own transaction, SET LOCAL search_path)
- listing: the one statement every incremental snapshot starts with (a version of every
  catalog row a definition is made of, by object), against the same rows only counted,
  one count per catalog: what any exact listing of "what changed" that reads the
  catalogs costs at least (xmin filters and change counters read them too)

Targets (issue 7): full well under 30 ms at 100 tables; incremental after a one-revision
change well under 5 ms at 500 tables.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from alembic_preflight.catalog.listing import _LISTING
from alembic_preflight.catalog.row_map import branches
from alembic_preflight.catalog.snapshot import Snapshot, Snapshotter, take_snapshot

SIZES = (100, 500)
ROUNDS = 20


def build(conn: psycopg.Connection[Any], tables: int) -> None:
    conn.execute("CREATE TYPE state AS ENUM ('a', 'b', 'c')")
    for i in range(tables):
        conn.execute(
            f"""CREATE TABLE t{i:03d} (
                  id serial PRIMARY KEY,
                  name text NOT NULL DEFAULT '',
                  state state,
                  amount numeric(10,2) CHECK (amount >= 0),
                  parent_id integer REFERENCES t{max(i - 1, 0):03d} (id),
                  created timestamptz NOT NULL DEFAULT now(),
                  UNIQUE (name, parent_id))"""
        )
        conn.execute(f"CREATE INDEX ix_t{i:03d}_created ON t{i:03d} (created)")
        conn.execute(f"COMMENT ON TABLE t{i:03d} IS 'table {i}'")
    conn.execute("CREATE VIEW v AS SELECT id, name FROM t000")


def _steps(tables: int) -> Iterator[tuple[str, str]]:
    """(label, DDL) pairs, each a one-revision change; repeated with fresh names."""
    for n in range(10**6):
        t = f"t{(n * 7) % tables:03d}"
        yield "add column", f"ALTER TABLE {t} ADD COLUMN extra_{n} integer DEFAULT {n}"
        yield "create index", f"CREATE INDEX ix_extra_{n} ON {t} (name, id)"
        yield (
            "create table",
            (f"CREATE TABLE new_{n} (id serial PRIMARY KEY, ref integer REFERENCES {t} (id))"),
        )
        yield "rename table", f"ALTER TABLE new_{n} RENAME TO renamed_{n}"
        yield "add enum value", f"ALTER TYPE state ADD VALUE 'v{n}'"


def _ms(fn: Callable[[], Snapshot]) -> tuple[float, Snapshot]:
    start = time.perf_counter()
    snap = fn()
    return (time.perf_counter() - start) * 1000, snap


def _summary(times: list[float]) -> str:
    return f"median {statistics.median(times):6.2f} ms, min {min(times):6.2f} ms"


# The listing's rows, counted per catalog: the same scans and filters, without the row
# versions, their grouping by object, and the rows sent back
_SCANS_ONLY = " UNION ALL ".join(
    f"SELECT {i}, count(*) FROM {catalog} {alias} WHERE {where}"
    for i, catalog, alias, _, _, where in branches()
)


def _statement_ms(conn: psycopg.Connection[Any], sql: str) -> list[float]:
    times = []
    for n in range(ROUNDS + 5):
        start = time.perf_counter()
        conn.execute(sql.encode(), prepare=True).fetchall()
        if n >= 5:  # planned and cached by then
            times.append((time.perf_counter() - start) * 1000)
    return times


def measure(conn: psycopg.Connection[Any], tables: int) -> None:
    def query(sql: str) -> list[tuple[Any, ...]]:
        # as take_snapshot does: statements with the same text every time are prepared
        return conn.execute(sql.encode(), prepare="ANY('{" not in sql).fetchall()

    @contextmanager
    def pinned() -> Iterator[None]:
        with conn.transaction():
            conn.execute("SET LOCAL search_path = pg_catalog, public")
            yield

    def full() -> Snapshot:
        with pinned():
            return Snapshotter().take(query)

    snapshotter = Snapshotter()

    def incremental() -> Snapshot:
        with pinned():
            return snapshotter.take(query)

    full_times = [_ms(full)[0] for _ in range(ROUNDS)]
    incremental()
    same_times = [_ms(incremental)[0] for _ in range(ROUNDS)]
    by_step: dict[str, list[float]] = {}
    steps = _steps(tables)
    for _ in range(ROUNDS):
        for _ in range(5):
            label, ddl = next(steps)
            conn.execute(ddl)
            ms, snap = _ms(incremental)
            by_step.setdefault(label, []).append(ms)
        assert snap == full(), "incremental snapshot differs from a full one"
    wrapper = []
    take_snapshot(conn)
    for _ in range(ROUNDS):
        label, ddl = next(steps)
        conn.execute(ddl)
        wrapper.append(_ms(lambda: take_snapshot(conn))[0])
    every = [t for ts in by_step.values() for t in ts]
    print(f"{tables} tables, {len(snap)} objects")
    print(f"  full (fresh Snapshotter)      {_summary(full_times)}")
    print(f"  incremental, nothing changed  {_summary(same_times)}")
    for label, ts in by_step.items():
        print(f"  incremental after {label:<12}{_summary(ts)}")
    print(f"  incremental, every change     {_summary(every)}")
    print(f"  take_snapshot after a change  {_summary(wrapper)}")
    print(f"  listing (versions by object)  {_summary(_statement_ms(conn, _LISTING))}")
    print(f"  its scans alone (counts)      {_summary(_statement_ms(conn, _SCANS_ONLY))}")


def main(conninfo: str | None) -> None:
    if conninfo is None:
        from alembic_preflight.database.embedded import start_embedded

        with start_embedded() as server:
            return main(server.conninfo())
    with psycopg.connect(conninfo, autocommit=True) as admin:
        for tables in SIZES:
            admin.execute("DROP DATABASE IF EXISTS preflight_bench")
            admin.execute("CREATE DATABASE preflight_bench")
            try:
                with psycopg.connect(conninfo, dbname="preflight_bench", autocommit=True) as conn:
                    build(conn, tables)
                    measure(conn, tables)
            finally:
                admin.execute("DROP DATABASE preflight_bench")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
