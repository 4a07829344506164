"""A schema snapshot's objects, kept up to date row by row as the Snapshotter reads its
catalog queries' rows again (catalog/snapshot.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from alembic_preflight.catalog.listing import Root, Row
from alembic_preflight.catalog.queries import _LABELLED, _LABELS, Key


@dataclass(frozen=True)
class SchemaObject:
    """One object of the schema, with the canonical text two snapshots are compared by."""

    kind: str  # schema, table, column, constraint, index, sequence, type, view, ...
    name: str  # unique within kind: `orders`, `app.orders`, `orders.note`, `f(integer)`
    definition: str
    flavor: str | None = None  # enum, domain, partitioned, check, foreign key, ...
    parent: Key | None = None  # the object it belongs to: a column's table, ...

    @property
    def key(self) -> Key:
        return (self.kind, self.name)

    @property
    def parts(self) -> dict[str, str]:
        """The definition by label, for kinds that have labelled lines; else empty."""
        if self.kind not in _LABELLED:
            return {}
        parts: dict[str, str] = {}
        last = ""
        for line in self.definition.splitlines():
            label, sep, value = line.partition(": ")
            if sep and label in _LABELS:
                parts[label] = value
                last = label
            elif last:  # a value that spans lines (a long default expression)
                parts[last] += "\n" + line
        return parts


class Objects:
    """The snapshot's objects, kept up to date row by row.

    Each row makes an object and maybe its comment; objects are merged by key (two rows
    with one key should not happen: if some version makes them, their definitions are
    joined in sorted order), and kept only when everything they belong to is there.
    """

    def __init__(self) -> None:
        self.made: dict[Key, list[tuple[Root, SchemaObject]]] = {}
        self.found: dict[Key, SchemaObject] = {}
        self.children: dict[Key, set[Key]] = {}
        self.kept: dict[Key, SchemaObject] = {}
        self.touched: set[Key] = set()
        self.changed: set[Key] = set()  # keys kept differently since the last snapshot
        self.tables: set[Key] = set()  # the tables' keys among those kept

    def take_changed(self) -> frozenset[Key]:
        """The keys kept differently since this was last asked (or since `fill`)."""
        changed, self.changed = frozenset(self.changed), set()
        return changed

    @staticmethod
    def _keys(row: Row) -> tuple[Key, ...]:
        kind, _, name, *_, comment = row
        if comment is None:
            return ((kind, name),)
        return ((kind, name), ("comment", f"{kind} {name}"))

    def add(self, root: Root, row: Row) -> None:
        kind, flavor, name, parent_kind, parent_name, definition, comment = row
        parent = (parent_kind, parent_name) if parent_kind else None
        obj = SchemaObject(kind, name, definition or "", flavor, parent)
        self.made.setdefault(obj.key, []).append((root, obj))
        self.touched.add(obj.key)
        if comment is not None:
            note = SchemaObject("comment", f"{kind} {name}", comment, None, obj.key)
            self.made.setdefault(note.key, []).append((root, note))
            self.touched.add(note.key)

    def remove(self, root: Root, row: Row) -> None:
        for key in self._keys(row):
            made = self.made.get(key)
            if made is not None:
                made[:] = [m for m in made if m[0] != root]
                if not made:
                    del self.made[key]
            self.touched.add(key)

    def fill(self, rows: Iterable[tuple[Root, Row]]) -> None:
        """Build from nothing: what add for each row then settle would, in bulk."""
        made = self.made
        for root, row in rows:
            kind, flavor, name, parent_kind, parent_name, definition, comment = row
            parent = (parent_kind, parent_name) if parent_kind else None
            key = (kind, name)
            obj = SchemaObject(kind, name, definition or "", flavor, parent)
            made.setdefault(key, []).append((root, obj))
            if comment is not None:
                note = SchemaObject("comment", f"{kind} {name}", comment, None, key)
                made.setdefault(note.key, []).append((root, note))
        found = self.found = {
            k: m[0][1] if len(m) == 1 else _merged([o for _, o in m]) for k, m in made.items()
        }
        children = self.children
        for k, o in found.items():
            if o.parent is not None:
                children.setdefault(o.parent, set()).add(k)
        self.kept = {k: o for k, o in found.items() if _rooted(o, found)}
        self.tables = {k for k in self.kept if k[0] == "table"}
        self.changed = set()

    def settle(self) -> None:
        found, children = self.found, self.children
        # Whether an object is kept depends on whether what it belongs to is found, and
        # so on up: objects that appear, go, or move to another parent change that for
        # everything below them; an object read again as it was changes nothing below.
        moved: list[Key] = []
        for key in self.touched:
            old = found.get(key)
            made = self.made.get(key)
            new = _merged([o for _, o in made]) if made else None
            old_parent = old.parent if old is not None else None
            new_parent = new.parent if new is not None else None
            if (old is None) != (new is None) or old_parent != new_parent:
                moved.append(key)
            if old_parent is not None and old_parent != new_parent:
                children.get(old_parent, set()).discard(key)
            if new is None:
                found.pop(key, None)
            else:
                found[key] = new
                if new_parent is not None:
                    children.setdefault(new_parent, set()).add(key)
        todo, seen = list(self.touched), set()
        below = set(moved)
        while todo:
            key = todo.pop()
            if key in seen:
                continue
            seen.add(key)
            obj = found.get(key)
            if obj is not None and _rooted(obj, found):
                if self.kept.get(key) is not obj:
                    self.kept[key] = obj
                    self.changed.add(key)
                    if key[0] == "table":
                        self.tables.add(key)
            elif self.kept.pop(key, None) is not None:
                self.changed.add(key)
                self.tables.discard(key)
            if key in below:
                kids = children.get(key, ())
                below.update(kids)
                todo.extend(kids)
        self.touched = set()


def _merged(objs: list[SchemaObject]) -> SchemaObject:
    if len(objs) == 1:
        return objs[0]
    objs = sorted(objs, key=lambda o: (o.definition, o.flavor or "", o.parent or ("", "")))
    first = objs[0]
    definition = "\n".join(o.definition for o in objs)
    return SchemaObject(first.kind, first.name, definition, first.flavor, first.parent)


def _rooted(obj: SchemaObject, found: Mapping[Key, SchemaObject]) -> bool:
    seen = 0
    while obj.parent is not None:
        parent = found.get(obj.parent)
        if parent is None or seen > 10:
            return False
        obj, seen = parent, seen + 1
    return True
