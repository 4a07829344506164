"""The listing's catalog rows one by one, by page: what a snapshot keeps when the WAL says
which catalog pages were written (catalog/wal_watch.py), so it reads those pages again
instead of listing every row.

Each row is the listing's (catalog/listing.py: the same catalogs, the same filters, the
same object each row belongs to), kept as its place (ctid) and the transaction that
wrote it (xmin): an object's version is the set of its rows' places and writers, so it
changes exactly when the listing's combined hash of the same does."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from alembic_preflight.catalog.listing import (
    _DESCRIPTIONS,
    _FIRST_USER_OID,
    _HEADER,
    _VERSIONED,
    Root,
)
from alembic_preflight.catalog.statements import Statement
from alembic_preflight.catalog.wal_watch import Page

# (catalog number, ctid, xmin) of one row; the catalog number is its place in CATALOGS
RowId = tuple[int, str, str]
Version = tuple[frozenset[RowId], frozenset[RowId]]  # an object's rows, then its comment's


# The catalogs whose rows the listing versions: _VERSIONED's, then pg_description (the
# comments; a change there changes only the object's comment)
CATALOGS = (*(c for c, *_ in _VERSIONED), "pg_description")
_NOTE = len(CATALOGS) - 1


def branches() -> list[tuple[int, str, str, str, str, str]]:
    """(number, catalog, alias, root catalog SQL, root oid SQL, filter) for each catalog
    whose rows the listing versions, the listing's filter each."""
    out = [
        (i, cat, alias, cls, oid, where.format(u=_FIRST_USER_OID))
        for i, (cat, alias, (cls, oid), where) in enumerate(_VERSIONED)
    ]
    out.append((_NOTE, "pg_description", "d", "d.classoid", "d.objoid", f"({_DESCRIPTIONS})"))
    return out


# The listing's filters read every relation's kind and every sequence once, for its one
# scan of each catalog; on a few pages a lookup per row costs less (pg_depend's compared
# each row with every sequence: 1.3 ms for 19 pages at 1000 revisions). The same rows:
# a relation's kind never changes, nor does a dependency's object
_ON_PAGES = {
    "pg_attribute": (
        f"a.attrelid >= {_FIRST_USER_OID} AND a.attnum > 0 AND NOT a.attisdropped AND EXISTS"
        " (SELECT 1 FROM pg_class k WHERE k.oid = a.attrelid AND k.relkind NOT IN ('i', 'I', 'S'))"
    ),
    "pg_depend": (
        f"d.objid >= {_FIRST_USER_OID} AND (d.refclassid = 'pg_extension'::regclass"
        " AND d.deptype = 'e' OR d.classid = 'pg_proc'::regclass AND d.deptype = 'i'"
        " OR d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')"
        " AND EXISTS (SELECT 1 FROM pg_sequence q WHERE q.seqrelid = d.objid))"
    ),
}


def _row(i: int, alias: str, cls: str, oid: str) -> str:
    return f"'{i}', {alias}.ctid::text, {alias}.xmin::text, ({cls})::oid::text, ({oid})::oid::text"


# What every statement here starts with: the listing's header (a row whose first column
# starts with '='), the files the catalogs are in ('#', one per catalog, in order: a
# catalog rewritten, VACUUM FULL, moves every row), the session's transaction id if it
# has one ('@'), then rows of five text columns: catalog number, ctid, xmin, the object's
# catalog oid, its oid
_PREAMBLE = (
    f"SELECT h.*, NULL, NULL, NULL, NULL FROM ({_HEADER}) h"
    " UNION ALL SELECT '@', pg_current_xact_id_if_assigned()::text, NULL, NULL, NULL"
    " UNION ALL SELECT '#', string_agg(pg_relation_filenode(c)::text, ' ' ORDER BY n),"
    " NULL, NULL, NULL FROM unnest(ARRAY["
    + ", ".join(f"'{c}'::regclass" for c in CATALOGS)
    + "]) WITH ORDINALITY AS f(c, n)"
)


def _every_row() -> Statement:
    """Every row, and ('!', the first transaction id not yet given out, as text): a
    transaction below it may have written before this snapshot, unseen by the WAL read
    after it."""
    rows = " UNION ALL ".join(
        f"SELECT {_row(i, alias, cls, oid)} FROM {cat} {alias} WHERE {where}"
        for i, cat, alias, cls, oid, where in branches()
    )
    xmax = "SELECT '!', pg_snapshot_xmax(pg_current_snapshot())::text, NULL, NULL, NULL"
    return Statement(f"{_PREAMBLE} UNION ALL {xmax} UNION ALL {rows}")


def _on_pages() -> Statement:
    """The rows on the pages $1 (catalog numbers) and $2 (blocks): one TID range scan a
    page, each fenced (OFFSET 0) so that the planner neither joins the pages to a scan of
    the catalog nor reads an index its filter could use (generic plans, which cannot know
    how few pages there are, did both). `wp`: no catalog's alias (_VERSIONED's are one or
    two letters)."""
    parts = []
    for i, cat, alias, cls, oid, where in branches():
        where = _ON_PAGES.get(cat, where)
        parts.append(
            "SELECT x.* FROM unnest($1, $2) AS wp(c, b),"
            f" LATERAL (SELECT {_row(i, alias, cls, oid)} FROM (SELECT ctid, xmin, * FROM {cat}"
            " WHERE ctid >= ('(' || wp.b || ',0)')::tid"
            f" AND ctid < ('(' || (wp.b + 1) || ',0)')::tid OFFSET 0) {alias}"
            f" WHERE {where} OFFSET 0) x WHERE wp.c = {i}"
        )
    return Statement(f"{_PREAMBLE} UNION ALL " + " UNION ALL ".join(parts), ("int4[]", "int8[]"))


EVERY_ROW = _every_row()
ON_PAGES = _on_pages()
assert "%" not in EVERY_ROW.text + ON_PAGES.text  # see sql.literal


@dataclass(frozen=True)
class Preamble:
    """What a statement here says before its rows."""

    header: str
    filenodes: tuple[str, ...]  # each catalog's, in CATALOGS order
    xid: int | None  # the session's transaction, if it has an id
    xmax: int | None  # EVERY_ROW's only

    @property
    def files(self) -> dict[int, int]:
        """Each catalog's file number → its catalog number."""
        return {int(f): i for i, f in enumerate(self.filenodes)}


def split(found: Iterable[tuple[Any, ...]]) -> tuple[Preamble, list[tuple[int, str, str, Root]]]:
    """A statement's preamble, and its rows as (catalog number, ctid, xmin, root)."""
    header, filenodes, xid, xmax = "", (), None, None
    rows: list[tuple[int, str, str, Root]] = []
    for r in found:
        first = r[0]
        if first.startswith("="):
            header = first
        elif first == "#":
            filenodes = tuple(r[1].split(" "))
        elif first == "@":  # as the WAL names it: 32 bits (the epoch is xmax's to check)
            xid = int(r[1]) % 2**32 if r[1] is not None else None
        elif first == "!":
            xmax = int(r[1])
        else:
            rows.append((int(first), r[1], r[2], (r[3], r[4])))
    return Preamble(header, filenodes, xid, xmax), rows


@dataclass
class RowMap:
    """The listing's rows by page and by object, kept up to date a page at a time."""

    pages: dict[Page, dict[str, tuple[str, Root]]] = field(default_factory=dict)
    roots: dict[Root, set[RowId]] = field(default_factory=dict)

    @classmethod
    def of(cls, rows: Iterable[tuple[int, str, str, Root]]) -> RowMap:
        made = cls()
        for cat, ctid, xmin, root in rows:
            made.pages.setdefault((cat, _block(ctid)), {})[ctid] = (xmin, root)
            made.roots.setdefault(root, set()).add((cat, ctid, xmin))
        return made

    def version(self, root: Root) -> Version:
        rows = self.roots.get(root, ())
        return (
            frozenset(r for r in rows if r[0] != _NOTE),
            frozenset(r for r in rows if r[0] == _NOTE),
        )

    def versions(self) -> dict[Root, Version]:
        return {root: self.version(root) for root in self.roots}

    def reread(
        self, pages: Iterable[Page], rows: Iterable[tuple[int, str, str, Root]]
    ) -> tuple[dict[Root, Version], list[Root]]:
        """`rows`: what `pages` hold now. The objects whose rows changed with their new
        versions, and those left with no row."""
        fresh: dict[Page, dict[str, tuple[str, Root]]] = {page: {} for page in pages}
        for cat, ctid, xmin, root in rows:
            fresh.setdefault((cat, _block(ctid)), {})[ctid] = (xmin, root)
        dirty: set[Root] = set()
        for page, now in fresh.items():
            before = self.pages.get(page, {})
            for ctid, (xmin, root) in before.items():
                if now.get(ctid) != (xmin, root):
                    self.roots[root].discard((page[0], ctid, xmin))
                    dirty.add(root)
            for ctid, (xmin, root) in now.items():
                if before.get(ctid) != (xmin, root):
                    self.roots.setdefault(root, set()).add((page[0], ctid, xmin))
                    dirty.add(root)
            if now:
                self.pages[page] = now
            else:
                self.pages.pop(page, None)
        came: dict[Root, Version] = {}
        gone: list[Root] = []
        for root in dirty:
            if self.roots.get(root):
                came[root] = self.version(root)
            else:
                self.roots.pop(root, None)
                gone.append(root)
        return came, gone


def _block(ctid: str) -> int:
    return int(ctid[1 : ctid.index(",")])
