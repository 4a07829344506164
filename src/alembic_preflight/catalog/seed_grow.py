"""Grow a table that holds a few (seeded) rows to thousands, in one INSERT … SELECT.

Why not catalog.seed with more rows: it builds each value in Python for realism, which is
right for three rows and far too slow for twenty thousand (quadratic, measured: 36 s for
2,000). A larger sample only has to be as wide as the real rows and valid: each new row
copies an existing one, so CHECKs and foreign keys hold as they do for it, and in each
unique index one column is made distinct from the row number (numbers, text, uuids,
dates); serial, identity and generated columns take their own values."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from alembic_preflight.catalog.sql import literal

Query = Callable[[str], list[tuple[Any, ...]]]

# a row number far above the seeded rows' values, so a copy never meets an original
_OFFSET = 1_000_000

_COLUMNS = """
SELECT coalesce(json_agg(json_build_array(
         a.attname, format_type(a.atttypid, a.atttypmod), t.typcategory,
         a.attidentity = 'a' OR a.attgenerated <> ''
           OR coalesce(pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%', false),
         CASE WHEN a.atttypmod > 4 AND t.typcategory = 'S' THEN a.atttypmod - 4 END)
         ORDER BY a.attnum), '[]'),
       (SELECT coalesce(json_agg(ARRAY(SELECT x.attname FROM unnest(i.indkey) k
                                       JOIN pg_attribute x ON x.attrelid = i.indrelid
                                        AND x.attnum = k)), '[]')
          FROM pg_index i WHERE i.indrelid = {rel} AND i.indisunique),
       (SELECT count(*) FROM ONLY {table})
  FROM pg_attribute a
  JOIN pg_type t ON t.oid = a.atttypid
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE a.attrelid = {rel} AND a.attnum > 0 AND NOT a.attisdropped
"""


def grow_sql(query: Query, table: str, rows: int) -> str:
    """The INSERT that brings `table` (as SQL names it) to about `rows` rows, copying its
    own; raises ValueError when it holds none or a unique index cannot be made distinct."""
    found = query(_COLUMNS.format(rel=f"{literal(table)}::regclass", table=table))
    columns = json.loads(found[0][0]) if isinstance(found[0][0], str) else found[0][0]
    uniques = json.loads(found[0][1]) if isinstance(found[0][1], str) else found[0][1]
    have = int(found[0][2])
    if have == 0:
        raise ValueError("it holds no rows to copy")
    own = {name for name, _, _, auto, _ in columns if auto}
    kinds = {name: (type_, cat, length) for name, type_, cat, _, length in columns}
    distinct: set[str] = set()
    for index in uniques:
        if set(index) & (own | distinct):
            continue  # a serial or identity column, or one already made distinct
        pick = next((c for c in index if c in kinds and _distinct(c, *kinds[c])), None)
        if pick is None:
            raise ValueError(f"no column of its unique index ({', '.join(index)}) can vary")
        distinct.add(pick)
    names = [c[0] for c in columns if c[0] not in own]
    if not names:
        return f"INSERT INTO {table} SELECT FROM generate_series(1, {max(0, rows - have)})"
    copies = max(1, -(-(rows - have) // have))  # rounded up
    rn = f"(g::int8 * {have} + s.k + {_OFFSET})"
    exprs = [
        _distinct(n, *kinds[n], rn=rn) or "" if n in distinct else f"s.{_ident(n)}" for n in names
    ]
    cols = ", ".join(_ident(n) for n in names)
    return (
        f"INSERT INTO {table} ({cols}) SELECT {', '.join(exprs)} FROM "
        f"(SELECT row_number() OVER () AS k, * FROM ONLY {table}) s "
        f"CROSS JOIN generate_series(1, {copies}) g"
    )


def _distinct(name: str, type_: str, cat: str, length: int | None, rn: str = "0") -> str | None:
    """An expression of the row number `rn` that gives each copy its own value."""
    col = f"s.{_ident(name)}"
    if cat == "N":  # numbers
        return f"({rn})::{type_}"
    if cat == "S":  # text
        if length is not None:
            return f"left(md5({rn}::text), {min(length, 32)})::{type_}"
        return f"({col} || '-' || {rn})::{type_}"
    if cat == "U" and type_ == "uuid":
        return f"md5({rn}::text)::uuid"
    if cat == "D":  # dates and times
        step = "1 day" if type_ == "date" else "1 second"
        return f"({col} + {rn} * interval '{step}')::{type_}"
    return None


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
