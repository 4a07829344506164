"""Which catalog pages of a database were written since we last looked, read from the
server's write-ahead log (issue 21), so a snapshot reads those pages again instead of
listing every catalog row.

Why: the listing reads a version of every catalog row a definition is made of, twice a
revision in the stepwise walk; its cost grows with the schema, and at 1000 revisions it
was a quarter of each lane's time. Any exact way of finding what changed that reads the
catalogs costs at least their scans (half the listing, measured). The WAL holds every
write to every catalog page, from any session, a migration's own writes to the catalogs
too, and pg_walinspect (PostgreSQL 15+) reads it: a function called on a connection of
ours to a database of ours on the same server. Nothing is added to the database the
migrations run in.

What a window of WAL says:
- every heap page of a catalog of the database written in it (its block references);
- the transactions that ended in it (COMMIT, ABORT, each with its subtransactions): rows
  change their visibility then, with no write to their pages, so the pages each
  transaction wrote are kept until it ends, and read again then (a savepoint rolled back
  brings rows back that way).
A transaction that ends and may have written before we started watching (its id is
below the first one not given out when we started) cannot be accounted for, nor can a
prepared transaction, or more WAL than MAX_WINDOW: then the window is None and the
caller reads everything. But the commit of the snapshots' own session's transaction (the
caller says which, `WalState.own`) changes nothing its session saw, nor what any later
one sees: its pages were read as they were written.

Reading needs the WAL flushed that far: the server flushes it at the commit of a
transaction that wrote (synchronous_commit on), so each look first updates a row of a
table of ours. The block references and the subtransactions are read from the text
pg_walinspect writes for each record; `open` checks that text on this server first, with
a transaction of its own, and refuses a server whose text it does not read as expected.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

Page = tuple[int, int]  # (catalog number, block)

# The table whose row each look updates, in the watch's database
FLUSH_TABLE = "alembic_preflight_flush"
# Sent before each look: the commit of a transaction that wrote flushes the WAL
_FLUSH = f"BEGIN; UPDATE {FLUSH_TABLE} SET n = n + 1; COMMIT;"
# More WAL than this since the last look (other checks copying databases meanwhile): the
# listing costs less than reading it
MAX_WINDOW = 16 * 2**20

_BLOCK = re.compile(r"rel \d+/(\d+)/(\d+) fork (\w+) blk (\d+)")
_SUBXACTS = re.compile(r"subxacts:((?: \d+)+)")
_LSN = re.compile(r"[0-9A-F]+/[0-9A-F]+")


def make_ready(conn: psycopg.Connection[Any]) -> None:
    """Make the database `conn` is in (ours, autocommit) one a watch can read from:
    pg_walinspect, and FLUSH_TABLE's one row. psycopg's error where the server will not."""
    conn.execute("CREATE EXTENSION pg_walinspect")
    conn.execute(f"CREATE TABLE {FLUSH_TABLE} (n bigint)")
    conn.execute(f"INSERT INTO {FLUSH_TABLE} VALUES (0)")


@dataclass
class WalState:
    """One database watched from a position: what the next window needs."""

    since: str  # the WAL position the next window starts at
    xmax: int  # the first transaction id not given out when watching began
    dboid: str
    filenodes: dict[int, int]  # a catalog's file number → its catalog number
    pending: dict[int, set[Page]] = field(default_factory=dict)  # by transaction not ended
    own: set[int] = field(default_factory=set)  # the snapshots' session's transactions


class WalWatch:
    """Reads windows of WAL on `conn`, a connection of ours (autocommit) to a database of
    ours holding pg_walinspect and FLUSH_TABLE. Not for concurrent use."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    @classmethod
    def open(cls, conn: psycopg.Connection[Any]) -> WalWatch | None:
        """A watch on `conn`, or None (and `conn` closed) where it cannot work: not
        PostgreSQL 15+, no pg_walinspect, not allowed to read the WAL, or records whose
        text does not read as expected here."""
        watch = cls(conn)
        try:
            conn.execute("SET synchronous_commit = on")
            if watch._reads_its_own_writes():
                return watch
        except psycopg.Error:
            pass
        conn.close()
        return None

    def start(self) -> str:
        """The WAL position from which a window starts, all written before it flushed."""
        rows = self._run(f"{_FLUSH} SELECT pg_current_wal_flush_lsn()::text")
        return str(rows[0][0])

    def window(self, state: WalState) -> set[Page] | None:
        """The catalog pages of `state`'s database written since `state.since`, and
        those of the transactions that ended since; `state` moves on. None when that
        cannot be told (see the module's docstring)."""
        assert _LSN.fullmatch(state.since) and state.dboid.isdigit()
        since = state.since
        rows = self._run(
            f"{_FLUSH} WITH f AS (SELECT pg_current_wal_flush_lsn() AS e),"
            f" ok AS (SELECT e, pg_wal_lsn_diff(e, '{since}') BETWEEN 1 AND {MAX_WINDOW}"
            " AS fits FROM f),"
            f" w AS (SELECT r.* FROM ok, LATERAL pg_get_wal_records_info('{since}', ok.e) r"
            " WHERE ok.fits)"
            " SELECT 'end', (SELECT max(end_lsn) FROM w)::text, (SELECT fits FROM ok)::text,"
            " NULL, NULL::pg_lsn"
            # each (transaction, pages) once, where it first comes: a migration step writes
            # a few pages many times
            " UNION ALL SELECT w.xid::text, w.resource_manager, w.record_type,"
            " CASE WHEN w.resource_manager = 'Transaction' THEN w.description"
            " ELSE w.block_ref END, min(w.start_lsn) FROM w"
            " WHERE w.resource_manager = 'Transaction' AND w.record_type IN"
            " ('COMMIT', 'ABORT', 'PREPARE', 'COMMIT_PREPARED', 'ABORT_PREPARED')"
            f" OR w.block_ref LIKE '%/{state.dboid}/%'"
            " GROUP BY 1, 2, 3, 4 ORDER BY 5 NULLS FIRST"
        )
        end, fits = rows[0][1], rows[0][2] == "true"
        if not fits or end is None:
            return None
        touched = _read(state, rows[1:])
        if touched is not None:
            state.since = end
        return touched

    def _run(self, statements: str) -> list[tuple[Any, ...]]:
        """The rows of the last of `statements` (sent at once: one round trip)."""
        cur = self.conn.execute(statements.encode())
        rows: list[tuple[Any, ...]] = []
        while True:
            if cur.description is not None:
                rows = cur.fetchall()
            if not cur.nextset():
                return rows

    def _reads_its_own_writes(self) -> bool:
        """Whether a window here tells the pages a transaction wrote, and the end of it
        and of its subtransactions: one committed into it, one rolled back."""
        conn = self.conn
        found = conn.execute(
            "SELECT current_setting('server_version_num')::int >= 150000"
            " AND EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_walinspect'),"
            " (SELECT oid::text FROM pg_database WHERE datname = current_database()),"
            " pg_relation_filenode('pg_class')::int8"
        ).fetchone()
        if found is None or not found[0]:
            return False
        state = WalState(self.start(), 0, found[1], {int(found[2]): 0})
        name = "alembic_preflight_probe"
        self._run(
            f"BEGIN; CREATE TABLE {name}_a (); SAVEPOINT s; CREATE TABLE {name}_b ();"
            f" ROLLBACK TO SAVEPOINT s; SAVEPOINT t; CREATE TABLE {name}_c ();"
            " RELEASE SAVEPOINT t; ROLLBACK; SELECT 1"
        )
        pages = self.window(state)
        # three transactions wrote pg_class (the top one and two subtransactions), and
        # all three ended: none is left pending
        return bool(pages) and not state.pending


def _read(state: WalState, records: Sequence[tuple[Any, ...]]) -> set[Page] | None:
    """The pages the records (xid, resource manager, type, text), in WAL order, say were
    written or changed visibility."""
    touched: set[Page] = set()
    for xid_text, manager, kind, text in (r[:4] for r in records):
        xid = int(xid_text)
        if manager == "Transaction":
            if kind not in ("COMMIT", "ABORT"):
                return None  # a prepared transaction: its id and end are elsewhere
            ended = {xid}
            listed = _SUBXACTS.search(text or "")
            if listed:
                ended.update(int(x) for x in listed[1].split())
            if kind == "COMMIT" and xid in state.own:
                for x in ended:
                    state.pending.pop(x, None)
                state.own.discard(xid)
                continue
            for x in ended:
                if x < state.xmax:
                    return None  # it may have written before we began watching
                touched |= state.pending.pop(x, set())
            continue
        for db, filenode, fork, block in _BLOCK.findall(text or ""):
            catalog = state.filenodes.get(int(filenode))
            if db != state.dboid or fork != "main" or catalog is None:
                continue
            page = (catalog, int(block))
            touched.add(page)
            if xid:
                state.pending.setdefault(xid, set()).add(page)
    return touched
