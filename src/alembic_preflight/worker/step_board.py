"""Where a worker's walk is, in a page of memory it shares with the verifier.

Why: the per-revision walk (worker/fastwalk.py) says before each step which revision and
step it starts, ~7 messages a revision, so that the verifier can bound each step by
--step-timeout and place a hang or a death. Sent through the pipe, each message woke a
thread of the verifier and cost both processes a few syscalls, at a time the machine's
cores are all busy: ~5% of a 100-revision `--checks stepwise` run (measured by leaving
them out; the board gives back ~3%). Written here instead, nobody wakes; the verifier
reads the board only when it needs to know: when a step's time is up, and when the
worker answers, hangs or dies.

Only a worker forked from the verifier, or from such a worker, shares a board (an
anonymous shared mapping is inherited by fork); a spawned one has none and sends its
messages as before. Light on purpose: the verifier imports it before it forks its first
worker.
"""

from __future__ import annotations

import mmap
import struct
import time
import weakref
from dataclasses import dataclass
from typing import Any

# the steps fastwalk.py says it starts (protocol.Progress.step), by number
STEPS = ("seed", "upgrade", "downgrade", "upgrade again", "done")
# an entry's number when what it stands for went as a message (a revision id too long,
# a step not in STEPS): the message says it; the board says only that it came last
SENT = 255
_MAX_REVISION = 240  # bytes of a revision id, UTF-8 (Alembic's are 12 hex digits)

# seq (odd while a write is under way), then one entry per kind: its own seq, when it
# was written (time.monotonic: one clock for every process of the machine), a number
# (the step's, or 1 for an upgrade function and 0 for a downgrade), the revision's length
_SEQ = struct.Struct("=Q")
_ENTRY = struct.Struct("=QdBH")
_RUNNING_AT = _SEQ.size
_STEP_AT = _RUNNING_AT + _ENTRY.size + _MAX_REVISION
_SIZE = _STEP_AT + _ENTRY.size + _MAX_REVISION
_TRIES = 1000


@dataclass(frozen=True)
class Entry:
    """What the worker last wrote of one kind: `seq` orders it among all writes."""

    seq: int
    at: float  # time.monotonic() when it was written
    revision: str
    number: int  # STEPS' index for a step; 1 upgrade, 0 downgrade for a function; SENT
    running: bool  # a revision function (else a step)

    @property
    def sent(self) -> bool:
        return self.number == SENT


@dataclass(frozen=True)
class Reading:
    """The board as read at one moment."""

    seq: int  # of the last write; 0: nothing written yet
    running: Entry | None  # the revision function the worker last started
    step: Entry | None  # the walk's step the worker last started

    def latest(self, since: int) -> Entry | None:
        """The later of the two entries, if written after the write `since`."""
        found = [e for e in (self.running, self.step) if e is not None and e.seq > since]
        return max(found, key=lambda e: e.seq, default=None)


class StepBoard:
    """One worker's board. The worker writes (`running`, `step`); the verifier reads."""

    def __init__(self) -> None:
        self._buf = mmap.mmap(-1, _SIZE)  # MAP_SHARED: a fork's writes are ours to read
        self._seq = 0

    def running(self, revision: str, upgrade: bool) -> bool:
        """Revision `revision`'s upgrade (or downgrade) function starts. False when it
        cannot be written (a revision id too long): send the message instead."""
        return self._write(_RUNNING_AT, revision, 1 if upgrade else 0)

    def step(self, revision: str, step: str) -> bool:
        """The walk starts `step` of `revision`; False as for `running`, and for a step
        not in STEPS."""
        return self._write(_STEP_AT, revision, STEPS.index(step) if step in STEPS else SENT)

    def _write(self, at: int, revision: str, number: int) -> bool:
        raw = revision.encode()
        if len(raw) > _MAX_REVISION:  # the message says it; here, that it came last
            raw, number = b"", SENT
        # a seqlock: a reader that sees an odd or a changed seq reads again
        seq = self._seq + 1
        _SEQ.pack_into(self._buf, 0, seq)
        _ENTRY.pack_into(self._buf, at, seq + 1, time.monotonic(), number, len(raw))
        self._buf[at + _ENTRY.size : at + _ENTRY.size + len(raw)] = raw
        self._seq = seq + 1
        _SEQ.pack_into(self._buf, 0, self._seq)
        return number != SENT

    def read(self) -> Reading:
        """What the worker wrote last, read whole (never half of a write), unless the
        worker stopped half way through one (killed): then as it is."""
        for _ in range(_TRIES):
            (before,) = _SEQ.unpack_from(self._buf, 0)
            if before % 2 == 0:
                running, step = self._entry(_RUNNING_AT), self._entry(_STEP_AT)
                (after,) = _SEQ.unpack_from(self._buf, 0)
                if after == before:
                    return Reading(before, running, step)
            time.sleep(0)  # the worker is writing, on another core: a microsecond
        (seq,) = _SEQ.unpack_from(self._buf, 0)
        return Reading(seq, self._entry(_RUNNING_AT), self._entry(_STEP_AT))

    def _entry(self, at: int) -> Entry | None:
        seq, written, number, length = _ENTRY.unpack_from(self._buf, at)
        if seq == 0:
            return None
        start = at + _ENTRY.size
        raw = self._buf[start : start + min(length, _MAX_REVISION)]
        return Entry(seq, written, raw.decode(errors="replace"), number, at == _RUNNING_AT)


# The verifier's end of each forked worker's pipe, and that worker's board.
_BOARDS: weakref.WeakKeyDictionary[Any, StepBoard] = weakref.WeakKeyDictionary()


def share(conn: Any, board: StepBoard) -> None:
    _BOARDS[conn] = board


def board_of(conn: Any) -> StepBoard | None:
    """The board of the worker at the other end of `conn` (None: it sends messages)."""
    return _BOARDS.get(conn)
