"""The records a synthetic value is made from: a column as the catalog query describes
it, what its CHECKs ask of its values (Limits), and the slot a value goes in."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from alembic_preflight.catalog.seed_checks import Fact, domain_facts


@dataclass(frozen=True)
class Limits:
    """What simple CHECKs on a column (and on its domain) ask of its values."""

    compare: tuple[tuple[str, str], ...] = ()  # (op, constant's text), the column left
    min_len: int = 0
    max_len: int | None = None

    @classmethod
    def of(cls, facts: Iterable[Fact]) -> Limits:
        compare: list[tuple[str, str]] = []
        min_len, max_len = 0, None
        for f in facts:
            if f.kind == "value":
                compare.append((f.op, f.args[0]))
            elif f.kind == "length" and f.args[0].lstrip("-").isdigit():
                n = int(f.args[0])
                if f.op in (">", ">="):
                    min_len = max(min_len, n + (f.op == ">"))
                elif f.op in ("<", "<="):
                    top = n - (f.op == "<")
                    max_len = top if max_len is None else min(max_len, top)
        return cls(tuple(compare), min_len, max_len)


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # as format_type prints it: what the generated text is cast to
    typname: str  # the base type's name (a domain's base)
    category: str  # pg_type.typcategory
    typmod: int
    notnull: bool
    default: bool
    auto: bool  # identity or generated: never given a value
    labels: tuple[str, ...] = ()  # enum labels, or the values a simple CHECK allows
    elem: Column | None = None  # an array's element, named as the array column
    limits: Limits = Limits()

    @classmethod
    def from_json(cls, c: Mapping[str, Any], facts: Sequence[Fact]) -> Column:
        """A column as the catalog query gives it, with the facts of its table's CHECKs
        (those about other columns are not looked at)."""
        facts = [f for f in facts if f.col == c["name"]] + domain_facts(c, c["name"])
        allowed = next((f.args for f in facts if f.kind == "in"), ())
        return cls(
            name=c["name"],
            type=c["type"],
            typname=c["typname"],
            category=c["category"],
            typmod=int(c["typmod"]),
            notnull=bool(c["notnull"]),
            default=bool(c["default"]),
            auto=bool(c["auto"]),
            labels=allowed or tuple(c["labels"] or ()),
            elem=Column.element(c["name"], c.get("elem")),
            limits=Limits.of(facts),
        )

    @classmethod
    def element(cls, name: str, elem: Mapping[str, Any] | None) -> Column | None:
        if not elem:
            return None
        facts = domain_facts(elem, name)
        allowed = next((f.args for f in facts if f.kind == "in"), ())
        return cls(
            name=name,
            type="",
            typname=elem["typname"],
            category=elem["category"],
            typmod=int(elem["typmod"]),
            notnull=False,
            default=False,
            auto=False,
            labels=allowed or tuple(elem["labels"] or ()),
            limits=Limits.of(facts),
        )


@dataclass(frozen=True)
class Slot:
    """Where a value goes: row `i` (1-based) of `rows`, in the column numbered `offset`.
    Each column has a run of `rows` numbers of its own, so `n` differs between the rows
    of a column (unique indexes) and between the columns of a row (a later CHECK (a <> b)
    or a column copied into another's unique index meets values that differ, as real
    columns' do)."""

    i: int
    offset: int = 0
    rows: int = 1

    @property
    def n(self) -> int:
        return self.offset * self.rows + self.i

    @property
    def needed(self) -> int:
        """How many distinct values the columns numbered up to this one take."""
        return (self.offset + 1) * self.rows
