"""The neutral record every check produces and every reporter reads."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    NOTICE = "notice"

    @property
    def rank(self) -> int:
        """Lower is worse: used to sort the most important first."""
        return {"error": 0, "warning": 1, "notice": 2}[self.value]


class Status(str, enum.Enum):
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Finding:
    """One thing a check has to say, pinned to a revision file and line when it can be."""

    check: str
    rule: str
    severity: Severity
    message: str
    revision: str | None = None
    file: str | None = None  # relative to the repository root, posix separators
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based
    detail: str | None = None  # long text: a schema diff, a traceback tail
    fix: str | None = None  # one line saying how to fix it
    # the whole traceback, every frame: the JSON report only (`detail` keeps the user's)
    traceback: str | None = None
    # known and accepted: in the project's baseline, so a notice that does not fail the run
    baseline: bool = False

    def sort_key(self) -> tuple[str, int, str, int, str]:
        return (self.file or "~", self.line or 0, self.check, self.severity.rank, self.message)


@dataclass(frozen=True)
class RuleText:
    """What a rule means: each check documents its own rules (its RULES table)."""

    short: str  # one line, no trailing period: SARIF shortDescription, summary headings
    help: str  # a few sentences: why it matters and how to fix it


@dataclass(frozen=True)
class LockedStatement:
    """A statement of a revision's upgrade that locks a table holding rows against reads
    or writes (the locks check): what the JSON report and the job summary list."""

    revision: str
    file: str | None
    line: int | None
    sql: str
    table: str
    mode: str  # PostgreSQL's lock mode, e.g. AccessExclusiveLock
    blocks: str  # "reads and writes" | "writes"
    rewrite: bool
    scan: bool
    index: str  # the index it builds, if any
    seconds: float  # measured on the traced run's few rows
    sample_rows: int | None = None  # the rows of the larger sample it was timed on
    sample_seconds: float | None = None
    per_million_s: float | None = None  # projected seconds per million rows
    production_rows: int | None = None  # the table's size, when given (table-rows)
    projected_s: float | None = None  # the lock held at production size, until commit


def duration(seconds: float) -> str:
    """80 ms, 12 s, 3 min, 2.1 h: the precision a lock budget needs (no exponents: the
    baseline's fingerprints take timings out of messages)."""
    if seconds < 0.001:
        return "under 1 ms"
    if seconds < 0.1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def lock_mode(mode: str) -> str:
    """AccessExclusiveLock -> ACCESS EXCLUSIVE, as PostgreSQL's documentation says it."""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", mode.removesuffix("Lock")).upper()


@dataclass(frozen=True)
class CheckResult:
    id: str
    status: Status
    duration_s: float
    findings: tuple[Finding, ...] = ()
    note: str | None = None  # why it was skipped, or a one-line summary
    # per-revision outcomes for checks that work per revision (JUnit testcases)
    cases: tuple[tuple[str, Status], ...] = ()
    statements: tuple[LockedStatement, ...] = ()  # the locks check's risky statements


@dataclass(frozen=True)
class ProjectInfo:
    config: str  # alembic.ini, relative to the repository root
    script_location: str
    revisions: int
    heads: tuple[str, ...]
    bases: tuple[str, ...]
    directory: str = "."  # the project directory, relative to the repository root
    # revision -> its parents, for graphs in reports
    parents: dict[str, tuple[str, ...]] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # revision -> file


@dataclass(frozen=True)
class DatabaseInfo:
    backend: str
    server_version: str


@dataclass(frozen=True)
class Report:
    tool_version: str
    project: ProjectInfo
    database: DatabaseInfo | None
    checks: tuple[CheckResult, ...]
    duration_s: float
    fail_on: Severity = Severity.ERROR
    # why nothing could be verified (no PostgreSQL, an internal error): said once, up top
    not_verified: str | None = None
    # "check/rule" -> what it means, from the checks' own RULES tables (checks/__init__.py)
    rules: Mapping[str, RuleText] = field(default_factory=dict, compare=False)
    # --fail-on never: the checks are judged as with `error`, the exit code is 0
    report_only: bool = False
    # the baseline file used, and its entries no longer found ("fixed: remove them")
    baseline: str | None = None
    fixed: tuple[str, ...] = ()

    @property
    def accepted(self) -> int:
        """Findings the baseline accepts (shown as notices marked baseline)."""
        return sum(1 for f in self.findings if f.baseline)

    @property
    def findings(self) -> tuple[Finding, ...]:
        return sort_findings(f for c in self.checks for f in c.findings)

    @property
    def passed(self) -> bool:
        if self.not_verified:
            return False
        if any(c.status in (Status.FAILED, Status.ERROR) for c in self.checks):
            return False
        return not any(f.severity.rank <= self.fail_on.rank for f in self.findings)

    @property
    def failed_checks(self) -> tuple[str, ...]:
        worst = self.fail_on.rank
        return tuple(
            c.id
            for c in self.checks
            if c.status in (Status.FAILED, Status.ERROR)
            or any(f.severity.rank <= worst for f in c.findings)
        )


def sort_findings(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    return tuple(sorted(findings, key=Finding.sort_key))


def by_importance(findings: Iterable[Finding]) -> list[Finding]:
    """Worst first, then in file order: what annotations and summaries show first."""
    return sorted(findings, key=lambda f: (f.severity.rank, *f.sort_key()))


def group_by_rule(findings: Iterable[Finding]) -> list[list[Finding]]:
    """Findings per (check, rule): the worst group first, then the largest, then by name,
    so a long history's summary starts with what fails the run (issue 8)."""
    groups: dict[tuple[str, str], list[Finding]] = {}
    for f in sorted(findings, key=lambda f: (f.check, f.rule, *f.sort_key())):
        groups.setdefault((f.check, f.rule), []).append(f)
    return sorted(
        groups.values(),
        key=lambda g: (min(f.severity.rank for f in g), -len(g), g[0].check, g[0].rule),
    )


def irreversible_count(n: int) -> str:
    """The one line summaries give by-design irreversible revisions."""
    return f"{n} revision{'s are' if n != 1 else ' is'} irreversible by design"


def first_line(text: str) -> str:
    """The first line of an error message, as a finding's message quotes it. A repr's
    memory address (SQLAlchemy's CompileError shows one) is dropped: the same failure
    must read the same on every run, or fingerprints break across runs."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return re.sub(r" at 0x[0-9a-f]+>", ">", line)
