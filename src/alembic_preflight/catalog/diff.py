"""What differs between two snapshots."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from alembic_preflight.catalog.objects import SchemaObject
from alembic_preflight.catalog.queries import Key
from alembic_preflight.catalog.snapshot import Snapshot


class Change(NamedTuple):
    """One object defined differently before and after."""

    before: SchemaObject
    after: SchemaObject


@dataclass(frozen=True)
class SchemaDiff:
    """What `after` has that `before` has not (added), the reverse (removed), and changed."""

    added: tuple[SchemaObject, ...] = ()
    removed: tuple[SchemaObject, ...] = ()
    changed: tuple[Change, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


def diff_snapshots(before: Snapshot, after: Snapshot) -> SchemaDiff:
    b, a = before.objects, after.objects
    if after.generation is not None and after.generation == before.generation:
        return SchemaDiff()  # one snapshot (nothing changed between two takes)
    if after.base is not None and after.base == before.generation:
        # read on top of `before` by one Snapshotter: every other key holds the same
        # object in both (a large schema has thousands)
        keys = after.changed
        added = [k for k in keys if k in a and k not in b]
        removed = [k for k in keys if k in b and k not in a]
        changed = [k for k in keys if k in a and k in b and not _same(k, b[k], a[k])]
    else:
        # only what differs is put in order: snapshots of one Snapshotter share the
        # objects that did not change
        added, removed = list(a.keys() - b.keys()), list(b.keys() - a.keys())
        changed = [k for k, o in a.items() if k in b and b[k] is not o and not _same(k, b[k], o)]
    return SchemaDiff(
        added=tuple(a[k] for k in _ordered(added)),
        removed=tuple(b[k] for k in _ordered(removed)),
        changed=tuple(Change(b[k], a[k]) for k in _ordered(changed)),
    )


# Kinds whose definition carries source text as written (a function's body) or may be
# re-created with other line breaks: compared with whitespace runs made one space, so a
# body re-created with one blank line more is not "changed" (issue 16). The detail of a
# real change still shows both texts exactly.
_SOURCE_KINDS = frozenset(
    {"function", "procedure", "aggregate", "view", "materialized view", "trigger", "rule"}
)


def _same(key: Key, before: SchemaObject, after: SchemaObject) -> bool:
    if before.definition == after.definition:
        return True
    return key[0] in _SOURCE_KINDS and before.definition.split() == after.definition.split()


# The order lines are reported in: containers before what they contain.
_KIND_ORDER = (
    "schema",
    "extension",
    "type",
    "sequence",
    "table",
    "column",
    "constraint",
    "index",
    "view",
    "materialized view",
    "function",
    "procedure",
    "aggregate",
    "trigger",
    "rule",
    "policy",
    "statistics",
    "comment",
)


def _ordered(keys: Iterable[Key]) -> list[Key]:
    rank = {k: i for i, k in enumerate(_KIND_ORDER)}
    return sorted(keys, key=lambda k: (rank.get(k[0], len(rank)), k[0], k[1]))
