"""What every check is: an id, whether it needs a database, and `run(ctx)` yielding findings."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from alembic_preflight.findings import CheckResult, Finding, LockedStatement, RuleText, Status

if TYPE_CHECKING:
    from alembic_preflight.baseline import Matcher
    from alembic_preflight.project import Project
    from alembic_preflight.settings import Settings
    from alembic_preflight.workbench import Workbench
    from alembic_preflight.worker.protocol import Traced


@dataclass(frozen=True)
class LaneBusy:
    """Lane 0 is in use until `free` is set, for about `cost` revisions walked."""

    free: threading.Event
    cost: float


class ProgressSink(Protocol):
    """Where a long check says how far it is, never printing itself: `done` of `total`
    (revisions, or steps) on one of its lanes. Called from the lanes' threads; a count
    never goes back (a lower `done` is ignored). output_progress.py shows it on stderr."""

    def advance(
        self, check: str, lane: int, done: int, total: int, unit: str = "revisions"
    ) -> None: ...

    def advance_lanes(
        self, check: str, counts: Mapping[int, tuple[int, int]], unit: str = "revisions"
    ) -> None:
        """`done` and `total` of several lanes at once: revisions one lane hands another
        (stepwise's takeover) never show as a total that shrank or grew meanwhile."""
        ...

    def end(self, check: str) -> None:  # the check is over (commands/run_checks.py)
        ...


class NoProgress:
    """Counts nobody shows (a CheckContext made outside `verify`)."""

    def advance(
        self, check: str, lane: int, done: int, total: int, unit: str = "revisions"
    ) -> None:
        pass

    def advance_lanes(
        self, check: str, counts: Mapping[int, tuple[int, int]], unit: str = "revisions"
    ) -> None:
        pass

    def end(self, check: str) -> None:
        pass


@dataclass
class RunCount:
    """Revision functions counted into `ctx.progress` as a worker starts each (Workbench.run's
    `on_running`): how far upgrade and roundtrip are, which run the history in a request
    or three. Counted on lane 0, where those checks run."""

    progress: ProgressSink
    check: str
    total: int
    unit: str = "revisions"
    done: int = 0

    def __post_init__(self) -> None:
        self.progress.advance(self.check, 0, 0, self.total, self.unit)

    def __call__(self, _running: object) -> None:
        self.done += 1
        self.progress.advance(self.check, 0, self.done, self.total, self.unit)


class CheckSkipped(Exception):
    """Raised by a check that has nothing to do; the message says why (a notice)."""


@dataclass
class WalkTraces:
    """Each revision's first upgrade as the stepwise walk traced it, for the locks check
    (commands/run_checks.py): from its parent, with our rows in the tables; or, for the
    revisions in `without_rows`, on emptied tables after it failed with them."""

    traces: dict[str, Traced] = field(default_factory=dict)
    without_rows: set[str] = field(default_factory=set)


@dataclass
class CheckContext:
    settings: Settings
    project: Project
    bench: Workbench | None = None  # None for checks that need no database
    earlier: dict[str, CheckResult] = field(default_factory=dict)
    # --changed-since: the revisions a pull request touches; None = all of them
    focus: frozenset[str] | None = None
    # per-revision outcomes a check may record (JUnit testcases)
    cases: list[tuple[str, Status]] = field(default_factory=list)
    # statements a check found locking tables with rows (locks): the result carries them
    statements: list[LockedStatement] = field(default_factory=list)
    note: str | None = None  # a one-line summary a check may leave for its result
    # the workbench lanes (database + worker) this check may use
    lanes: tuple[int, ...] = (0,)
    # stepwise beside the other checks (commands/verify.py): lane 0 is theirs until then
    lane0_busy: LaneBusy | None = None
    # findings the project accepts (its baseline file): applied to every check's result
    baseline: Matcher | None = None
    # how far a long check is, shown on stderr while it runs (output_progress.py)
    progress: ProgressSink = field(default_factory=NoProgress)
    # the stepwise walk's traces for the locks check, when both run unsharded; else None
    traced: WalkTraces | None = None

    def in_focus(self, revision: str | None) -> bool:
        return self.focus is None or revision in self.focus

    def rel(self, path: object) -> str:
        return self.project.rel(path)


class Check(Protocol):
    ID: str
    NEEDS_DB: bool

    @property
    def RULES(self) -> Mapping[str, RuleText]:  # every rule it reports, and how to fix it
        ...

    def run(self, ctx: CheckContext) -> Iterable[Finding]: ...


# rules any check may end with (commands/verify.py)
COMMON_RULES: dict[str, RuleText] = {
    "internal-error": RuleText(
        "The check stopped on an internal error",
        "The verifier itself failed while running this check: nothing it would have found "
        "is known. Please report it with the finding's detail (the traceback).",
    ),
}


def in_threads(
    jobs: Sequence[Callable[[], None]],
    *,
    alongside: Callable[[], None] | None = None,
    interrupted: Callable[[], None] | None = None,
) -> None:
    """Each job in a thread of its own (the lanes' workers do the work, so threads
    suffice), `alongside` in this one meanwhile; the first error of a job is raised here
    once all have ended. On Ctrl-C (or an error alongside), `interrupted` is called and the
    error raised at once: the workbench closes under the threads, which then end."""
    errors: list[BaseException] = []

    def guarded(job: Callable[[], None]) -> None:
        try:
            job()
        except BaseException as e:  # re-raised in this thread, which reports it
            errors.append(e)

    threads = [threading.Thread(target=guarded, args=(job,), daemon=True) for job in jobs]
    for t in threads:
        t.start()
    try:
        if alongside is not None:
            alongside()
        for t in threads:
            t.join()
    except BaseException:
        if interrupted is not None:
            interrupted()
        raise
    if errors:
        raise errors[0]
