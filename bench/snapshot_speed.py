"""How long take_snapshot takes on a 100-table database (target: well under 30 ms).

Usage: python bench/snapshot_speed.py "host=/path/to/socket user=postgres dbname=postgres"
It creates a scratch database next to the one named, fills it and drops it afterwards.
"""

from __future__ import annotations

import statistics
import sys
import time

import psycopg

from alembic_preflight.schema import take_snapshot

TABLES = 100


def build(conn: psycopg.Connection) -> None:
    conn.execute("CREATE TYPE state AS ENUM ('a', 'b', 'c')")
    for i in range(TABLES):
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


def main(conninfo: str) -> None:
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS preflight_bench")
        admin.execute("CREATE DATABASE preflight_bench")
        try:
            with psycopg.connect(conninfo, dbname="preflight_bench", autocommit=True) as conn:
                build(conn)
                times = []
                for _ in range(30):
                    start = time.perf_counter()
                    snap = take_snapshot(conn)
                    times.append((time.perf_counter() - start) * 1000)
                print(
                    f"{TABLES} tables, {len(snap)} objects: first {times[0]:.1f} ms, "
                    f"median {statistics.median(times):.1f} ms, min {min(times):.1f} ms"
                )
        finally:
            admin.execute("DROP DATABASE preflight_bench")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "dbname=postgres")
