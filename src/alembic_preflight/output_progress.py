"""How far a long check is, said on stderr while it runs (a 300-revision walk took 21 s
without a word). Checks count through `CheckContext.progress` (checks/base.py);
`on_stderr()` picks how the counts are shown:

- on a terminal, `Bars`: rich progress bars, the check's total and one per lane, with the
  time taken and an ETA; transient, so they are gone before the report is written;
- anywhere else (a CI log, a file, `TERM=dumb`, rich's `TTY_INTERACTIVE=0`), `Lines`: a
  plain line as each tenth of a check's total is reached, and on the next count once
  10 s have passed since the last line:
  `alembic-preflight: stepwise: 140/288 revisions, 12 s`. Not in a check's first 3 s:
  a short history's log would get ten lines a check for a run of a second or two, and
  its result line follows soon enough.

Never on stdout, which carries the report. Lanes count from threads of their own: every
method holds one lock, and nothing is shown once `close()` has run (a lane still ending
after Ctrl-C)."""

from __future__ import annotations

import itertools
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from alembic_preflight import output

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

INTERVAL_S = 10.0  # a plain line at least this long after the last one ...
TENTHS = 10  # ... or as the count reaches the next tenth of the total ...
QUIET_S = 3.0  # ... once the check has run this long


@dataclass
class _Count:
    """One check's counts, lane by lane: (done, total)."""

    unit: str
    started: float
    order: int  # checks are shown in the order they began
    lanes: dict[int, tuple[int, int]] = field(default_factory=dict)
    said_at: float = 0.0  # Lines: when the last line was said, and its count
    said_done: int = 0

    @property
    def done(self) -> int:
        return sum(d for d, _ in self.lanes.values())

    @property
    def total(self) -> int:
        return sum(t for _, t in self.lanes.values())


class Display:
    """The counts of the checks running now; a subclass shows them."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: dict[str, _Count] = {}
        self._order = itertools.count()
        self._closed = False

    def advance(
        self, check: str, lane: int, done: int, total: int, unit: str = "revisions"
    ) -> None:
        """`done` of `total` on this lane. A count never goes back: a lower `done` than
        the lane's last (the walk booking what the fast walk already counted) is ignored."""
        self.advance_lanes(check, {lane: (done, total)}, unit)

    def advance_lanes(
        self, check: str, counts: Mapping[int, tuple[int, int]], unit: str = "revisions"
    ) -> None:
        """As `advance`, for several lanes at once: shown once, after all of them."""
        with self._lock:
            if self._closed:
                return
            count = self._counts.get(check)
            if count is None:
                now = self._clock()
                count = _Count(unit, now, next(self._order), said_at=now)
                self._counts[check] = count
            changed = False
            for lane, (done, total) in counts.items():
                before = count.lanes.get(lane)
                done = min(max(done, before[0] if before else 0), total)
                if before != (done, total):
                    count.lanes[lane] = (done, total)
                    changed = True
            if changed:
                self._show(check, count)

    def end(self, check: str) -> None:
        """The check is over (commands/run_checks.py): its counts are no longer shown."""
        with self._lock:
            count = self._counts.pop(check, None)
            if count is not None:
                self._ended(check)

    def close(self) -> None:
        """The run is over, or interrupted: nothing is shown from now on."""
        with self._lock:
            self._closed = True
            for check in list(self._counts):
                del self._counts[check]
                self._ended(check)

    def __enter__(self) -> Display:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _show(self, check: str, count: _Count) -> None:
        raise NotImplementedError

    def _ended(self, check: str) -> None:
        pass


class Lines(Display):
    """For a CI log: a line at each tenth of a check's total, or once 10 s have passed;
    nothing in a check's first seconds."""

    def _show(self, check: str, count: _Count) -> None:
        done, total = count.done, count.total
        now = self._clock()
        if not total or done <= count.said_done or now - count.started < QUIET_S:
            return
        tenth = done * TENTHS // total
        if tenth > count.said_done * TENTHS // total or now - count.said_at >= INTERVAL_S:
            count.said_at, count.said_done = now, done
            output.info(f"{check}: {done}/{total} {count.unit}, {now - count.started:.0f} s")


class Bars(Display):
    """For a terminal: a bar per check, and per lane when it has more than one. Shown
    while any check counts, then erased (transient); lines said meanwhile (a check's
    result) are printed above them."""

    def __init__(self, console: Console, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(clock)
        self.console = console
        self._progress: Progress | None = None
        self._tasks: dict[tuple[str, int | None], TaskID] = {}

    def _show(self, check: str, count: _Count) -> None:
        progress = self._started()
        rows: list[tuple[int | None, str, int, int]] = [(None, check, count.done, count.total)]
        if len(count.lanes) > 1:
            rows += [(lane, f"  lane {lane}", d, t) for lane, (d, t) in sorted(count.lanes.items())]
        for lane, label, done, total in rows:
            task = self._tasks.get((check, lane))
            if task is None:
                order = (count.order, -1 if lane is None else lane)
                task = progress.add_task(label, total=total, unit=count.unit, order=order)
                self._tasks[(check, lane)] = task
            progress.update(task, completed=done, total=total)

    def _started(self) -> Progress:
        if self._progress is None:
            self._progress = _bars(self.console)
            self._progress.start()
            output.divert(self._print)
        return self._progress

    def _print(self, line: str) -> None:
        self.console.print(
            line.rstrip("\n"), markup=False, highlight=False, emoji=False, soft_wrap=True
        )

    def _ended(self, check: str) -> None:
        progress = self._progress
        if progress is None:
            return
        for key in [k for k in self._tasks if k[0] == check]:
            progress.remove_task(self._tasks.pop(key))
        if not self._tasks:
            # stopped (the bars erased, the cursor shown) before anything else is said
            self._progress = None
            try:
                progress.stop()
            finally:
                output.divert(None)


def _bars(console: Console) -> Progress:
    """rich's Progress with the tasks in a stable order: each check's total, then its
    lanes, checks in the order they began (lanes are added as they report). Imported
    here, on a terminal: rich.progress costs ~13 ms of the verifier's start (measured),
    and a CI log never shows bars."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    class Ordered(Progress):
        def get_renderables(self) -> Iterable[Any]:
            tasks = sorted(self.tasks, key=lambda t: t.fields["order"])
            yield self.make_tasks_table(tasks)

    return Ordered(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[unit]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        # what else is said goes above the bars through output.divert, not by rich
        # swapping sys.stdout (the report) and sys.stderr in every thread
        redirect_stdout=False,
        redirect_stderr=False,
        refresh_per_second=4,
    )


def on_stderr() -> Display:
    """Bars when stderr is an interactive terminal, lines otherwise. A real TTY is asked
    for, not rich's guess: FORCE_COLOR (set in many CI setups for coloured logs) makes
    rich take any stream for a terminal, and bars redrawn into a log are garbage."""
    try:
        tty = sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced, or closed
        tty = False
    if not tty:
        return Lines()
    from rich.console import Console

    console = Console(stderr=True, highlight=False)
    # is_interactive: a terminal that is not TERM=dumb, unless TTY_INTERACTIVE says
    if console.is_interactive:
        return Bars(console)
    return Lines()
