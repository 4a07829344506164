"""A column's synthetic value for a slot, as its type's input text: one its enum, a CHECK
or its name allows, else one made for its type or its type's category."""

from __future__ import annotations

import json
import re
import string
from collections.abc import Callable

from alembic_preflight.catalog.seed_columns import Column, Slot
from alembic_preflight.catalog.seed_names import NAMED_CHOICES, named_kind
from alembic_preflight.catalog.seed_numbers import (
    date_value,
    number_value,
    range_value,
    time_value,
    timestamp_value,
)


def value(col: Column, slot: Slot) -> str | None:
    """A column's synthetic value at `slot`, as the type's input text; None when the type
    is not one we know how to make (the column is left NULL if it may be)."""
    choices = choices_of(col)
    if choices:
        return choices[(slot.offset + slot.i - 1) % len(choices)]
    by_type = _BY_TYPE.get(col.typname)
    if by_type is not None:
        return by_type(col, slot)
    by_category = _BY_CATEGORY.get(col.category)
    return by_category(col, slot) if by_category is not None else None


def _text(col: Column, slot: Slot) -> str | None:
    make = _MADE_FOR.get(named_kind(col.name) or "")
    made = make(col, slot) if make is not None else None
    if made is not None and _fits(col, made):
        return made
    shortest, longest = _lengths(col)
    text = f"{col.name}-{slot.i}"
    if longest is not None:
        text = _shortened(text, col.name, slot, longest)
    return text + "x" * (shortest - len(text))  # after the row's number: rows stay apart


def _lengths(col: Column) -> tuple[int, int | None]:
    """The shortest and longest text a column takes: its type's limit, its CHECKs'."""
    limits = [col.limits.max_len]
    if col.category == "S" and col.typmod > 4:
        limits.append(col.typmod - 4)
    return col.limits.min_len, min((n for n in limits if n is not None), default=None)


def _fits(col: Column, text: str) -> bool:
    shortest, longest = _lengths(col)
    excluded = any(op == "<>" and text == c for op, c in col.limits.compare)
    return shortest <= len(text) and (longest is None or len(text) <= longest) and not excluded


def choices_of(col: Column) -> tuple[str, ...]:
    """The values a column takes in turn: its enum's labels or those a CHECK allows, or
    real names for a text column whose name says what it holds (a time zone)."""
    if col.labels:
        return tuple(v for v in col.labels if _fits(col, v))
    if col.category != "S":
        return ()
    named = NAMED_CHOICES.get(named_kind(col.name) or "", ())
    return tuple(v for v in named if _fits(col, v))


def _slugged(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "item"


_MADE_FOR: dict[str, Callable[[Column, Slot], str | None]] = {
    "email": lambda col, slot: f"{_slugged(col.name).replace('-', '.')}{slot.i}@example.com",
    "json": lambda col, slot: _json(col, slot),
    "url": lambda col, slot: f"https://example.com/{_slugged(col.name)}/{slot.n}",
    "uuid": lambda col, slot: _uuid(col, slot),
    "ip": lambda col, slot: _network(col, slot),
    "phone": lambda col, slot: f"+1555{slot.n:07d}",
    "slug": lambda col, slot: f"{_slugged(col.name)}-{slot.n}",
    "number": lambda col, slot: str(slot.n),
    "date": lambda col, slot: date_value(col, slot),
    "timestamp": lambda col, slot: timestamp_value(col, slot),
}


def _shortened(text: str, name: str, slot: Slot, limit: int) -> str:
    """`text` cut to `limit` characters, keeping what tells rows and columns apart."""
    if len(text) <= limit:
        return text
    head = name[: max(0, limit - len(str(slot.n)) - 1)]
    if head:
        return f"{head}-{slot.n}"
    for short in (str(slot.n), _base36(slot.n), str(slot.i), _base36(slot.i)):
        if len(short) <= limit:
            return short
    return text[:limit]


def _base36(n: int) -> str:
    digits = ""
    while n:
        n, d = divmod(n, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[d] + digits
    return digits or "0"


def _one_byte(col: Column, slot: Slot) -> str:
    return string.ascii_letters[(slot.n - 1) % len(string.ascii_letters)]  # "char"


def _bits(col: Column, slot: Slot) -> str:
    width = col.typmod if col.typmod > 0 else (1 if col.typname == "bit" else 0)
    if width == 0:  # bit varying without a limit
        return format(slot.n, "b")
    return format(slot.n % 2**width, "b").zfill(width)


def _network(col: Column, slot: Slot) -> str:
    a, b, c = slot.n >> 16 & 255, slot.n >> 8 & 255, slot.n & 255
    return f"10.{b}.{c}.0/24" if col.typname == "cidr" else f"10.{a}.{b}.{c}"


def _mac(col: Column, slot: Slot) -> str:
    tail = f"{slot.n >> 16 & 255:02x}:{slot.n >> 8 & 255:02x}:{slot.n & 255:02x}"
    return f"08:00:2b:01:02:{tail}" if col.typname == "macaddr8" else f"08:00:2b:{tail}"


def _array(col: Column, slot: Slot) -> str:
    """One element: arrays that differ, as a unique index on the column needs."""
    item = None if col.elem is None else value(col.elem, slot)
    if item is None:
        return "{}"
    return '{"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"}'


def _uuid(col: Column, slot: Slot) -> str:
    return f"00000000-0000-4000-8000-{slot.n:012d}"


def _json(col: Column, slot: Slot) -> str:
    return json.dumps({"id": slot.i, col.name: f"{col.name}-{slot.i}"})


def _bytea(col: Column, slot: Slot) -> str:
    digits = format(slot.n, "x")
    return "\\x" + digits.zfill(len(digits) + len(digits) % 2)


_BY_CATEGORY: dict[str, Callable[[Column, Slot], str | None]] = {
    "N": number_value,
    "S": _text,
    "B": lambda col, slot: "true" if slot.n % 2 else "false",
    "T": lambda col, slot: f"{slot.n} days",
    "I": _network,
    "A": _array,
    "V": _bits,
}
_BY_TYPE: dict[str, Callable[[Column, Slot], str | None]] = {
    "date": date_value,
    "timestamp": timestamp_value,
    "timestamptz": timestamp_value,
    "time": time_value,
    "timetz": time_value,
    "char": _one_byte,
    "point": lambda col, slot: f"({slot.n},{slot.n})",
    "uuid": lambda col, slot: _uuid(col, slot),
    "json": _json,
    "jsonb": _json,
    "bytea": _bytea,
    "xml": lambda col, slot: f"<v>{slot.n}</v>",
    "tsvector": lambda col, slot: f"word{slot.n}",
    "macaddr": _mac,
    "macaddr8": _mac,
    **{
        f"{sub}{kind}": range_value
        for sub in ("int4", "int8", "num", "date", "ts", "tstz")
        for kind in ("range", "multirange")
    },
    # arrays by category, read as space-separated numbers
    "int2vector": lambda col, slot: str(slot.n),
    "oidvector": lambda col, slot: str(slot.n),
}
