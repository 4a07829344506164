"""A lane that has walked its slice takes over the end of a slower lane's.

Why (issue 21): the plan cuts the history into slices of about equal cost (plan.py), but
the cost is a guess. How long the other checks keep lane 0 busy, which revisions fail
and are walked per request, which tables hold rows: none is known in advance, and a lane
that ended early sat idle while the other walked on (1.9 s of 5 on the defect history,
0.35 s of 4 at 200 generated revisions).

The lane that is done goes on from where its database is: it upgrades to a cut in the
other lane's remaining revisions, in one run, and walks from there to that slice's end;
the other lane's slice now ends at the cut. The cut leaves both about as much to do, the
upgrade counted at REPLAY_COST of walking. A revision a run has started (the fast walk's
batch included) is never taken. Each revision is walked once, by one lane, and its
findings are the same whichever lane walks it."""

from __future__ import annotations

import threading
from collections.abc import Callable

from alembic_preflight.checks.stepwise import words
from alembic_preflight.checks.stepwise.plan import REPLAY_COST
from alembic_preflight.checks.stepwise.walk import Walk

# Taking over costs an upgrade run and a walk's start (~0.1 s): not for fewer revisions.
MIN_TAKEN = 8


class Lanes:
    """Every walk of a stepwise run, the ones lanes took over included."""

    def __init__(self, walks: list[Walk]) -> None:
        self.walks = list(walks)
        self._lock = threading.Lock()
        self._stopping = False

    def runner(self, first: Walk) -> Callable[[], None]:
        """A lane's thread: its walk, then whatever it takes over, until nothing is left."""

        def run() -> None:
            walk: Walk | None = first
            while walk is not None:
                walk.walk()
                walk = self._take_over(walk)

        return run

    def stop(self) -> None:  # Ctrl-C: each walk stops at its next revision
        with self._lock:
            self._stopping = True
            for w in self.walks:
                w.stop.set()

    def in_order(self) -> list[Walk]:
        return sorted(self.walks, key=lambda w: w.start)

    def _take_over(self, done: Walk) -> Walk | None:
        if not done.ended or done.stopped or done.applied != list(done.plan.order[: done.end]):
            return None
        with self._lock:
            if self._stopping:
                return None
            for other in sorted(self.walks, key=_left, reverse=True):
                if other.lane == done.lane or other.ended or other.stopped:
                    continue
                with other.lock:
                    first, end = max(other.reserved, other.start), other.end
                    # the lane that is done goes on from where its database is when that is
                    # before `first`, else from the base (a later slice's lane taking over
                    # an earlier one, whose lane other checks kept busy longer than planned)
                    at = len(done.applied) if len(done.applied) <= first else 0
                    # both lanes then take about as long: `other` walks [first, cut), the
                    # lane that is done upgrades [at, cut) and walks [cut, end)
                    cut = round((end + first - REPLAY_COST * at) / (2 - REPLAY_COST))
                    cut = max(cut, first)
                    if end - cut < MIN_TAKEN:
                        continue
                    other.end = cut
                    taken = Walk.after(done, cut, end, from_base=at == 0)
                    # both lanes' counts at once, before `other` counts again: the check's
                    # total never shows without the revisions that changed hands
                    counts = {other.lane: other.tally(), taken.lane: taken.tally()}
                    done.ctx.progress.advance_lanes(words.ID, counts)
                self.walks.append(taken)
                return taken
        return None


def _left(w: Walk) -> int:
    return w.end - max(w.reserved, w.start)
