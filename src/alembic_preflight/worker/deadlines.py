"""One thread that ends what overruns its deadline, for every receive from the workers.

Why (issue 21): a receive from a worker is bounded (client.recv_within), and a thread of
its own per receive (threading.Timer) cost ~0.2 ms of the verifier's CPU each, started
and cancelled: a walk sends ~8 messages a revision, ~1,600 at 200 revisions. Here a
receive only writes its deadline down; the one thread sleeps until the earliest and is
woken only when a receive needs it sooner. Once nothing is due it sleeps on to the time it
had set (a receive's deadline is seconds to minutes away, each later than the one before):
waking it for every receive only to go back to sleep cost ~70 us of the verifier's CPU a
message, two thread switches, ~60 ms of a 100-revision walk's ~870 messages.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress


class Deadlines:
    """`within(seconds, on_overrun)` around a wait: `on_overrun` runs (in this object's
    thread) when the wait has not ended in time. Started on first use, never stopped (a
    daemon thread, asleep until the earliest deadline it has been told of)."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._due: dict[int, tuple[float, Callable[[], None]]] = {}
        self._ids = itertools.count()
        self._wakes_at: float | None = None  # when the thread wakes by itself; None: never
        self._thread: threading.Thread | None = None
        self.wakeups = 0  # how often a receive woke the thread (tests)

    @contextmanager
    def within(self, seconds: float, on_overrun: Callable[[], None]) -> Iterator[None]:
        deadline = time.monotonic() + seconds
        key = next(self._ids)
        with self._lock:
            self._due[key] = (deadline, on_overrun)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._watch, name="alembic-preflight-deadlines", daemon=True
                )
                self._thread.start()
                self._wakes_at = deadline
            elif self._wakes_at is None or deadline < self._wakes_at:
                self._wakes_at = deadline  # (the thread sets it again when it wakes)
                self.wakeups += 1
                self._lock.notify()
        try:
            yield
        finally:
            with self._lock:
                self._due.pop(key, None)

    def _watch(self) -> None:
        while True:
            overrun: list[Callable[[], None]] = []
            with self._lock:
                now = time.monotonic()
                for key, (deadline, on_overrun) in list(self._due.items()):
                    if deadline <= now:
                        del self._due[key]
                        overrun.append(on_overrun)
                if not overrun:
                    due = min((d for d, _ in self._due.values()), default=None)
                    if due is None and self._wakes_at is not None and self._wakes_at > now:
                        due = self._wakes_at  # nothing due: asleep to the time already set
                    self._wakes_at = due
                    self._lock.wait(None if due is None else due - now)
                    continue
            for call in overrun:
                # (a process already gone): the next deadlines still hold
                with suppress(Exception):
                    call()
