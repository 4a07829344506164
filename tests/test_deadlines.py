"""The one thread that bounds every receive from the workers (worker/deadlines.py).
test_hostile_input's garbage-in-the-pipe test runs it against a real worker; these pin
what that test cannot see: no thread per receive, and a sooner deadline is not missed
while the thread sleeps until a later one."""

from __future__ import annotations

import threading
import time

from alembic_preflight.worker.deadlines import Deadlines


def test_receives_that_end_in_time_start_one_thread_and_overrun_nothing() -> None:
    deadlines = Deadlines()
    fired: list[int] = []
    before = threading.active_count()
    for i in range(500):
        with deadlines.within(30, lambda i=i: fired.append(i)):
            pass
    assert threading.active_count() <= before + 1
    assert fired == []


def test_a_sooner_deadline_wakes_the_thread_asleep_until_a_later_one() -> None:
    deadlines = Deadlines()
    fired = threading.Event()
    late = threading.Event()
    with deadlines.within(60, late.set):
        time.sleep(0.2)  # the thread has started, and sleeps until this one
        started = time.monotonic()
        with deadlines.within(0.2, fired.set):
            assert fired.wait(5)
        assert time.monotonic() - started < 3
    assert not late.is_set()


def test_an_overrun_that_raises_does_not_stop_the_later_ones() -> None:
    deadlines = Deadlines()
    fired = threading.Event()

    def broken() -> None:
        raise ProcessLookupError("already gone")

    with deadlines.within(0.05, broken):
        time.sleep(0.3)
    with deadlines.within(0.05, fired.set):
        assert fired.wait(5)


def test_receives_one_after_another_do_not_wake_the_thread_each_time() -> None:
    # each later deadline than the time the thread sleeps to: no wake-up for it, and the
    # thread still wakes for the one that overruns
    deadlines = Deadlines()
    for _ in range(200):
        with deadlines.within(30, lambda: None):
            pass
    assert deadlines.wakeups <= 2
    fired = threading.Event()
    with deadlines.within(0.2, fired.set):
        assert fired.wait(5)
