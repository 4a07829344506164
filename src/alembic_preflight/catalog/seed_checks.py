"""Simple CHECK constraints read as facts about columns, for the rows seed.py makes."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any, NamedTuple


class Fact(NamedTuple):
    """One thing a simple CHECK says about a column: `col op constant` (kind "value"),
    `length(col) op n` ("length"), `col op other column` ("column", args: the other),
    `col IN (...)` ("in", args: the values)."""

    kind: str
    col: str
    op: str
    args: tuple[str, ...]


# -- simple CHECKs, as pg_get_constraintdef prints them -------------------------------------
#   CHECK ((a > 0))   CHECK (((f >= 2) AND (f <= 9)))   CHECK ((length((d)::text) <= 5))
#   CHECK ((m >= '-5'::integer))   CHECK ((st > '2020-01-01 00:00:00'::timestamp without ...))
#   CHECK (((status)::text = ANY ((ARRAY['a'::character varying, ...])::text[])))
#   CHECK ((s < t))   CHECK (((p IS NULL) OR (p > 0)))   CHECK ((NOT (ff < 0)))
# Anything else says nothing here: the savepoint catches rows it refuses.
_OPERATORS = ("<=", ">=", "<>", "!=", "=", "<", ">")
_FLIPPED = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "=": "=", "<>": "<>"}
_NEGATED = {"<": ">=", ">=": "<", ">": "<=", "<=": ">", "=": "<>", "<>": "="}
_CAST = re.compile(r"::[\w .\"]+(?:\([0-9, ]+\))?(?:\[\])?$")
_STRING = re.compile(r"'((?:[^']|'')*)'")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_IDENT = re.compile(r'[a-z_][a-z0-9_$]*|"((?:[^"]|"")+)"')
_LENGTH = re.compile(r"(?:length|char_length|character_length|octet_length)\((.*)\)")
_IS_NULL = re.compile(r".* IS NULL")


def check_facts(definition: str, value: str | None = None) -> list[Fact]:
    """What a CHECK's definition says, as far as it is simple: its conjuncts' facts. In a
    domain's CHECK, VALUE is the column `value`."""
    body = definition.removeprefix("CHECK ").removesuffix(" NOT VALID")
    return [f for part in _split(_unwrap(body), " AND ") for f in _conjunct(part, value)]


def domain_facts(typ: Mapping[str, Any], name: str) -> list[Fact]:
    """The facts of a domain's CHECKs, VALUE read as the column."""
    return [f for d in typ.get("checks") or () for f in check_facts(d, value=name)]


def _conjunct(text: str, value: str | None) -> list[Fact]:
    text = _unwrap(text)
    # a value we make is never NULL: what follows IS NULL OR must hold
    options = [d for d in _split(text, " OR ") if not _IS_NULL.fullmatch(_unwrap(d))]
    if len(options) > 1:
        found = [check_facts(d, value) for d in options]
        return next((f for f in found if f and _plausible(f)), [])
    if len(options) == 1 and options[0] != text:
        return check_facts(options[0], value)
    negated = text.startswith("NOT ")
    facts = _comparison(_unwrap(text.removeprefix("NOT ")), value)
    if not negated:
        return facts
    if len(facts) != 1 or facts[0].kind == "in":
        return []  # NOT (a AND b) is an OR: too much for us
    return [facts[0]._replace(op=_NEGATED[facts[0].op])]


def _comparison(text: str, value: str | None) -> list[Fact]:
    found = _split_comparison(text)
    if found is None:
        return []
    left, op, right = found
    a = _operand(left, value)
    if right.startswith(("ANY ", "ALL ")) and a is not None and a[0] == "col":
        # IN (...) is `= ANY (ARRAY[...])`, NOT IN (...) `<> ALL (ARRAY[...])`
        items = [_operand(v, value) for v in _split(_array_items(right), ", ")]
        values = tuple(v[1] for v in items if v is not None and v[0] == "const")
        if not values or len(values) < len(items):
            return []
        if (op, right[:3]) == ("=", "ANY"):
            return [Fact("in", a[1], "=", values)]
        if (op, right[:3]) == ("<>", "ALL"):
            return [Fact("value", a[1], "<>", (v,)) for v in values]
        return []
    fact = _pair(a, op, _operand(right, value))
    return [] if fact is None else [fact]


def _pair(a: tuple[str, str] | None, op: str, b: tuple[str, str] | None) -> Fact | None:
    """The fact of `a op b`, for operands as _operand reads them."""
    if a is None or b is None:
        return None
    if a[0] == "const" and b[0] != "const":
        a, b, op = b, a, _FLIPPED[op]
    kinds = (a[0], b[0])
    if kinds == ("col", "const"):
        return Fact("in", a[1], "=", (b[1],)) if op == "=" else Fact("value", a[1], op, (b[1],))
    if kinds == ("len", "const"):
        return Fact("length", a[1], op, (b[1],))
    if kinds == ("col", "col"):
        return Fact("column", a[1], op, (b[1],))
    return None


def _operand(text: str, value: str | None) -> tuple[str, str] | None:
    """("col", name), ("len", name) for length(name), ("const", text), or None."""
    previous = None
    while text != previous:
        previous, text = text, _CAST.sub("", _unwrap(text.strip()))
    if m := _STRING.fullmatch(text):
        return ("const", m.group(1).replace("''", "'"))
    if _NUMBER.fullmatch(text.replace("- ", "-", 1)):  # (- 5.5) is how -5.5 prints
        return ("const", text.replace("- ", "-", 1))
    if m := _LENGTH.fullmatch(text):
        inner = _operand(m.group(1), value)
        return ("len", inner[1]) if inner is not None and inner[0] == "col" else None
    if value is not None and text == "VALUE":
        return ("col", value)
    if m := _IDENT.fullmatch(text):
        return ("col", m.group(1).replace('""', '"') if m.group(1) else text)
    return None


def _array_items(text: str) -> str:
    """The items of `ANY (ARRAY[...])`, casts and parentheses around it or not:
    ANY ((ARRAY['a'::character varying, 'b'::character varying])::text[])."""
    start = text.find("ARRAY[") + len("ARRAY[")
    end = next((i for i, _ in _scan(text) if i >= start and text[i] == "]"), None)
    return text[start:end] if start >= len("ARRAY[") and end is not None else ""


def _plausible(facts: list[Fact]) -> bool:
    """False for facts no number meets: of `x BETWEEN SYMMETRIC 5 AND 1`, printed as
    ((x >= 5) AND (x <= 1)) OR ((x >= 1) AND (x <= 5)), the first half."""
    for col in {f.col for f in facts}:
        lows = [as_decimal(f.args[0]) for f in facts if f.col == col and f.op in (">", ">=")]
        highs = [as_decimal(f.args[0]) for f in facts if f.col == col and f.op in ("<", "<=")]
        low = max((x for x in lows if x is not None), default=None)
        high = min((x for x in highs if x is not None), default=None)
        if low is not None and high is not None and low > high:
            return False
    return True


def _scan(text: str) -> Iterator[tuple[int, int]]:
    """(index, parenthesis depth) of each character outside string literals and quoted
    identifiers."""
    depth, quote = 0, ""
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""  # a doubled quote closes and reopens: the same to us
            continue
        if ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        else:
            yield i, depth


def _split(text: str, sep: str) -> list[str]:
    """`text` split at `sep` outside parentheses and quotes."""
    parts, last = [], 0
    for i, depth in _scan(text):
        if depth == 0 and i >= last and text.startswith(sep, i):
            parts.append(text[last:i])
            last = i + len(sep)
    return [*parts, text[last:]]


def _split_comparison(text: str) -> tuple[str, str, str] | None:
    for i, depth in _scan(text):
        if depth == 0 and text[i] in "<>=!" and text[i - 1 : i] == " ":
            op = next((o for o in _OPERATORS if text.startswith(o + " ", i)), None)
            if op is not None:
                return text[: i - 1], "<>" if op == "!=" else op, text[i + len(op) + 1 :]
    return None


def _unwrap(text: str) -> str:
    """`text` without parentheses around all of it."""
    while text.startswith("(") and text.endswith(")"):
        closed = next((i for i, depth in _scan(text) if depth == 0), None)
        if closed is not None and closed < len(text) - 1:
            return text  # (a) AND (b): the first closes before the end
        inner = text[1:-1]
        if any(depth < 0 for _, depth in _scan(inner)):
            return text
        text = inner
    return text


def as_decimal(text: str) -> Decimal | None:
    """A constant as a number; None for one that is not (a date, a word)."""
    return Decimal(text) if _NUMBER.fullmatch(text) else None
