"""A snapshot diff in words: one English line per object, and a detail block."""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from alembic_preflight.catalog.diff import Change, SchemaDiff
from alembic_preflight.catalog.objects import SchemaObject
from alembic_preflight.catalog.queries import Key


@dataclass(frozen=True)
class Wording:
    """How to say each side of a diff; `{obj}` names the object, `{what}` the change."""

    added: str
    removed: str
    changed: str


# after downgrade vs before upgrade ("downgrade of r0029 leaves type `status_0028` (enum)"),
# and after a downgrade to base vs the empty database. Only the two ends are compared: an
# object missing may have been dropped by the upgrade and not re-created by an empty
# downgrade, so the words say what the downgrade failed to do, not who removed it.
DOWNGRADE = Wording(
    added="leaves {obj}",
    removed="does not restore {obj} (it was there before the upgrade)",
    changed="does not restore {obj} as it was: {what}",
)


# second upgrade to head vs the first ("the second upgrade to head creates ...")
REUPGRADE = Wording(
    added="creates {obj} that the first upgrade did not",
    removed="does not create {obj} that the first upgrade did",
    changed="creates {obj} differently: {what}",
)


def describe(diff: SchemaDiff, wording: Wording = DOWNGRADE) -> list[str]:
    """One short line per object, without a subject: the caller puts "downgrade of r0029"
    or "the second upgrade to head" in front.

    An object added or removed with the thing it belongs to (the columns of a table left
    behind) is not named again; `detail` lists everything.
    """
    parents = {o.key: o.parent for o in (*diff.added, *diff.removed)}
    added = {o.key for o in diff.added}
    removed = {o.key for o in diff.removed}
    lines = [
        wording.added.format(obj=phrase(o)) for o in diff.added if not _inside(o, added, parents)
    ]
    lines += [
        wording.removed.format(obj=phrase(o))
        for o in diff.removed
        if not _inside(o, removed, parents)
    ]
    lines += [
        wording.changed.format(obj=phrase(c.after), what=_what_changed(c)) for c in diff.changed
    ]
    return lines


def _inside(obj: SchemaObject, keys: Collection[Key], parents: Mapping[Key, Key | None]) -> bool:
    """Whether something `obj` belongs to, directly or not, is among `keys`."""
    parent = obj.parent
    for _ in range(10):  # parents nest a few levels deep: comment, column, table, schema
        if parent is None:
            return False
        if parent in keys:
            return True
        parent = parents.get(parent)
    return False


_NOUN = {
    "constraint": "constraint",
    "statistics": "statistics object",
}


_CONSTRAINT_NOUN = {
    "primary key": "primary key",
    "foreign key": "foreign key",
    "unique": "unique constraint",
    "check": "check constraint",
    "exclusion": "exclusion constraint",
}


# what is named with the object it is on: "index `ix_orders_note` on `orders`"
_ON_PARENT = {"constraint", "index", "trigger", "rule", "policy", "statistics"}


def phrase(obj: SchemaObject) -> str:
    """The object in words: "type `status` (enum)", "index `ix_note` on `orders`"."""
    if obj.kind == "comment":
        kind, _, name = obj.name.partition(" ")
        if obj.parent is not None:
            kind, name = obj.parent
        return f"comment on {_NOUN.get(kind, kind)} `{_short(name, kind, None)}`"
    noun = _NOUN.get(obj.kind, obj.kind)
    if obj.kind == "constraint":
        noun = _CONSTRAINT_NOUN.get(obj.flavor or "", "constraint")
    if obj.kind == "table" and obj.flavor == "foreign":
        noun = "foreign table"
    text = f"{noun} `{_short(obj.name, obj.kind, obj.parent)}`"
    if obj.kind in _ON_PARENT and obj.parent is not None:
        text += f" on `{obj.parent[1]}`"
    if obj.kind in ("type", "table") and obj.flavor and obj.flavor != "foreign":
        text += f" ({obj.flavor})"
    return text


def _short(name: str, kind: str, parent: Key | None) -> str:
    """A constraint's, trigger's, rule's or policy's own name, without its table's."""
    if kind in ("constraint", "trigger", "rule", "policy") and parent is not None:
        prefix = parent[1] + "."
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def _what_changed(change: Change) -> str:
    before, after = change.before, change.after
    old, new = before.parts, after.parts
    if old or new:
        labels = [*new, *(k for k in old if k not in new)]
        said = []
        for label in labels:
            if old.get(label) != new.get(label):
                was, now = old.get(label, "none"), new.get(label, "none")
                said.append(f"{was} → {now}" if label == "null" else f"{label} {was} → {now}")
        if said:
            return "; ".join(said)
    a, b = before.definition, after.definition
    if "\n" not in a and "\n" not in b and max(len(a), len(b)) <= 80:
        return f"{a or 'none'} → {b or 'none'}"
    return "definition differs"


def detail(diff: SchemaDiff, *, labels: tuple[str, str] = ("before", "after")) -> str:
    """The definitions that differ, unified-diff style: `+` only in after, `-` only in
    before; changed objects as a unified diff of their definition lines."""
    out: list[str] = []
    for sign, objs in (("+", diff.added), ("-", diff.removed)):
        for obj in objs:
            out.append(f"{sign} {obj.kind} {obj.name}")
            out.extend(f"{sign}     {line}" for line in obj.definition.splitlines())
    for change in diff.changed:
        out.append(f"~ {change.after.kind} {change.after.name}")
        lines = difflib.unified_diff(
            change.before.definition.splitlines(),
            change.after.definition.splitlines(),
            fromfile=labels[0],
            tofile=labels[1],
            lineterm="",
            n=2,
        )
        out.extend("    " + line for line in lines)
    return "\n".join(out)
