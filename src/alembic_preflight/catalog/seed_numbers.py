"""Number-like values: numbers, dates, times and timestamps taken from a grid that the
column's type and CHECKs bound, and ranges of them."""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from decimal import Decimal

from alembic_preflight.catalog.seed_checks import as_decimal
from alembic_preflight.catalog.seed_columns import Column, Slot


@dataclass(frozen=True)
class Bound:
    at: Decimal
    open: bool = False  # the bound itself is out (a > 0)


@dataclass(frozen=True)
class Grid:
    """The values a number-like column takes: multiples of a step between two bounds
    (None: unbounded), but for the excluded. The first step is the type's unit; finer
    ones are taken while the range is too narrow to give every column its own values
    (numeric(2, 2) holds 0.01 to 0.99; CHECK (a BETWEEN 0.5 AND 0.7) a few tenths)."""

    steps: tuple[Decimal, ...]  # coarsest first
    low: Bound | None = None
    high: Bound | None = None
    excluded: frozenset[Decimal] = frozenset()

    def within(
        self, compare: Iterable[tuple[str, str]], parse: Callable[[str], Decimal | None]
    ) -> Grid:
        """The grid narrowed by a CHECK's comparisons to constants, read by `parse` into
        the grid's unit (a constant it cannot read says nothing)."""
        grid = self
        for op, text in compare:
            at = parse(text)
            if at is None:
                continue
            if op in (">", ">=") and _tighter(Bound(at, op == ">"), grid.low, 1):
                grid = replace(grid, low=Bound(at, op == ">"))
            elif op in ("<", "<=") and _tighter(Bound(at, op == "<"), grid.high, -1):
                grid = replace(grid, high=Bound(at, op == "<"))
            elif op == "<>":
                grid = replace(grid, excluded=grid.excluded | {at})
        return grid

    def nth(self, slot: Slot) -> Decimal | None:
        """The slot's value: `n` units up from zero when that is in range, else the `n`th
        from the smallest positive value in range (from the end nearest zero when there is
        none), wrapping round a finite range; None for an empty range."""
        step = self._step(slot.needed)
        kmin, kmax = self._ends(step)
        if kmin is not None and kmax is not None and kmax < kmin:
            return None
        nearest = kmax if kmax is not None and kmax < 1 else kmin
        start = next(
            k
            for k in (round(self.steps[0] / step), 1, nearest, kmax)
            if k is not None and (kmin is None or k >= kmin) and (kmax is None or k <= kmax)
        )
        up = None if kmax is None else kmax - start + 1  # values from start upwards

        def at(p: int) -> int:  # the p-th value looked at: up from start, then down
            return start + p if up is None or p < up else start - 1 - (p - up)

        j = slot.n - 1
        if kmax is not None and self._free(step, start, kmax) >= slot.rows:
            j %= self._free(step, start, kmax)  # wrap above start: small positive numbers
        elif kmin is not None and kmax is not None:
            if self._free(step, kmin, kmax) <= 0:
                return None
            j %= self._free(step, kmin, kmax)
        p = 0
        while at(p) * step in self.excluded or j > 0:
            j -= at(p) * step not in self.excluded
            p += 1
        return at(p) * step

    def _free(self, step: Decimal, lo: int, hi: int) -> int:
        """How many values from lo to hi steps are not excluded."""
        excluded = sum(1 for e in self.excluded if e % step == 0 and lo <= e / step <= hi)
        return hi - lo + 1 - excluded

    def _ends(self, step: Decimal) -> tuple[int | None, int | None]:
        kmin = kmax = None
        if self.low is not None:
            kmin = math.ceil(self.low.at / step)
            kmin += self.low.open and kmin * step == self.low.at
        if self.high is not None:
            kmax = math.floor(self.high.at / step)
            kmax -= self.high.open and kmax * step == self.high.at
        return kmin, kmax

    def _step(self, needed: int) -> Decimal:
        for step in self.steps:
            kmin, kmax = self._ends(step)
            if kmin is None or kmax is None or kmax - kmin + 1 >= needed:
                return step
        return self.steps[-1]


def _tighter(new: Bound, old: Bound | None, sign: int) -> bool:
    """Whether `new` narrows the range more than `old` (a low bound for sign 1)."""
    if old is None:
        return True
    return sign * new.at > sign * old.at or (new.at == old.at and new.open and not old.open)


def _steps(finest: Decimal) -> tuple[Decimal, ...]:
    """1, 0.1, 0.01 ... down to `finest` (a step coarser than 1 alone)."""
    steps = [max(Decimal(1), finest)]
    while steps[-1] > finest:
        steps.append(steps[-1] / 10)
    return tuple(steps)


_INTEGER_BITS = {"int2": 15, "int4": 31, "int8": 63}


def _number_grid(col: Column) -> Grid:
    if col.typname in _INTEGER_BITS:
        bound = Decimal(2) ** _INTEGER_BITS[col.typname]
        return Grid(_steps(Decimal(1)), Bound(-bound), Bound(bound - 1))
    if col.typname == "numeric" and col.typmod >= 4:
        # typmod - 4 = precision << 16 | scale, the scale an 11-bit signed number (PG 15)
        precision = ((col.typmod - 4) >> 16) & 0xFFFF
        scale = (((col.typmod - 4) & 0x7FF) ^ 1024) - 1024
        finest = Decimal(1).scaleb(-scale)
        high = Decimal(1).scaleb(precision - scale) - finest
        return Grid(_steps(finest), Bound(-high), Bound(high))
    if col.typname == "money":
        top = Decimal(2**63 - 1) / 100
        return Grid(_steps(Decimal("0.01")), Bound(-top), Bound(top))
    if col.typname in ("numeric", "float4", "float8"):
        return Grid(_steps(Decimal("0.000001")))  # fractions of any length
    return Grid(_steps(Decimal(1)), Bound(Decimal(1)), Bound(Decimal(2**32 - 1)))  # oid, reg*


def number_value(col: Column, slot: Slot) -> str | None:
    got = _number_grid(col).within(col.limits.compare, as_decimal).nth(slot)
    return None if got is None else _decimal_text(got)


def _decimal_text(d: Decimal) -> str:
    text = format(d, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


# Dates count days from here, times of day seconds from midnight, timestamps seconds from
# noon (the same day in every time zone). A CHECK's constant is read in the same unit;
# one with a time zone is read as its wall-clock time, as ours are (both in the session's
# zone: pg_get_constraintdef printed it there).
_EPOCH = datetime.datetime(2024, 1, 1, 12, 0)
_DAY = 86400
_DATE_GRID = Grid((Decimal(1),))
_TIMESTAMP_GRID = Grid((Decimal(_DAY), Decimal(3600), Decimal(60), Decimal(1)))
_TIME_GRID = Grid((Decimal(60), Decimal(1)), Bound(Decimal(0)), Bound(Decimal(_DAY - 1)))


def _days(text: str) -> Decimal | None:
    try:
        return Decimal((datetime.date.fromisoformat(text[:10]) - _EPOCH.date()).days)
    except ValueError:  # infinity, BC dates
        return None


def _seconds(text: str) -> Decimal | None:
    try:
        at = datetime.datetime.fromisoformat(text).replace(tzinfo=None)
    except ValueError:
        return None
    return _exact_seconds(at - _EPOCH)


def _seconds_of_day(text: str) -> Decimal | None:
    try:
        at = datetime.time.fromisoformat(text).replace(tzinfo=None)
    except ValueError:
        return None
    return _exact_seconds(datetime.datetime.combine(datetime.date.min, at) - datetime.datetime.min)


def _exact_seconds(d: datetime.timedelta) -> Decimal:
    return Decimal(d.days * _DAY + d.seconds) + Decimal(d.microseconds).scaleb(-6)


def date_value(col: Column, slot: Slot) -> str | None:
    days = _DATE_GRID.within(col.limits.compare, _days).nth(slot)
    if days is None:
        return None
    return (_EPOCH.date() + datetime.timedelta(days=int(days))).isoformat()


def timestamp_value(col: Column, slot: Slot) -> str | None:
    secs = _TIMESTAMP_GRID.within(col.limits.compare, _seconds).nth(slot)
    return None if secs is None else str(_EPOCH + datetime.timedelta(seconds=int(secs)))


def time_value(col: Column, slot: Slot) -> str | None:
    secs = _TIME_GRID.within(col.limits.compare, _seconds_of_day).nth(slot)
    if secs is None:
        return None
    text = str(datetime.datetime.min + datetime.timedelta(seconds=int(secs)))[11:]
    return text + "+00" if col.typname == "timetz" else text


def range_value(col: Column, slot: Slot) -> str:
    """[n, n + 1) in the range's unit: a day, an hour from noon; rows do not overlap, as
    an exclusion constraint (EXCLUDE USING gist (during WITH &&)) needs."""
    kind = col.typname.replace("multirange", "range")
    if kind == "daterange":
        day = _EPOCH.date() + datetime.timedelta(days=slot.n)
        low, high = day.isoformat(), (day + datetime.timedelta(days=1)).isoformat()
    elif kind in ("tsrange", "tstzrange"):
        at = _EPOCH + datetime.timedelta(days=slot.n)
        low, high = f'"{at}"', f'"{at + datetime.timedelta(hours=1)}"'
    else:
        low, high = str(slot.n), str(slot.n + 1)
    text = f"[{low},{high})"
    return "{" + text + "}" if "multirange" in col.typname else text
