"""One defect, one entry, and what matters first: the findings as a reader meets them.

A downgrade that forgets to drop an enum type is seen three times: stepwise names the
revision (`downgrade-leaves-behind`), roundtrip finds the base not empty (`base-not-empty`,
no revision) and its second upgrade failing on that revision (`reupgrade-failed`). A
reader needs one entry, led by the finding that says it best, with the others listed as
what else saw it. The console, the annotations and the job summary show entries; the file
reports (JSON, SARIF, JUnit, GitLab) keep every finding, since tools read them one by one.

Entries go into sections, in this order: failures that break a deploy or a rollback,
then lint errors, then warnings, then notices; inside each, the worst first. Before
this, a long history's console opened with naming-convention errors on revisions
deployed years ago, sorted by file, and the downgrades that could never run came a
hundred lines later.

Pure functions of the findings: no settings, no database, nothing printed.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from alembic_preflight.findings import Finding, Severity

# Checks that judge a revision by running it: what they say about one revision is one
# story (it failed, so its re-upgrade failed too). Lint reads the source, graph the
# revision ids: a finding of theirs about the same revision is usually another matter.
LINT = "lint"
STATIC = frozenset({LINT, "graph"})
# A check whose findings without a revision restate, for the whole history, what the
# per-revision checks pin to a revision ("downgrade to base leaves type `x`").
WHOLE_HISTORY = frozenset({"roundtrip"})
# A check whose findings are a story of their own whatever else names the object: compat
# judges the release running during the deploy against the new schema, not whether a
# migration runs or is undone (a rename stepwise finds left behind is another defect).
OWN_STORY = frozenset({"compat"})

# The lead of an entry: of the findings about one thing, the one that says where. The
# upgrade check's failure is the deploy itself; stepwise names the revision and the line;
# roundtrip and drift see the whole history at once.
LEAD_ORDER = {"upgrade": 0, "stepwise": 1, "drift": 2, "roundtrip": 3, "graph": 4, LINT: 5}

# What a finding costs, lower is worse: nothing could be verified; a deploy breaks (or
# does something other than it says); a rollback breaks; a rollback leaves things behind.
# A rule not named here (a team's convention, a notice) comes after these. Lint's rules
# about whether a migration can run or be undone are ranked with what they break, so
# they lead the lint errors (tests/reporters/test_grouping.py keeps this in step with
# checks/lint/rules.py WHOLE_HISTORY).
NOTHING_VERIFIED, BREAKS_DEPLOY, BREAKS_ROLLBACK, LEAVES_BEHIND, OTHER = range(5)
IMPACT: dict[str, int] = {
    **dict.fromkeys(
        (
            "internal-error",
            "check-error",
            "env-failed",
            "env-did-not-migrate",
            "bootstrap-failed",
            "no-revisions",
            "syntax-error",
            "unreadable",
            "cycle",
            "missing-parent",
            "duplicate-revision",
        ),
        NOTHING_VERIFIED,
    ),
    **dict.fromkeys(
        (
            "migration-failed",
            "upgrade-failed",
            "upgrade-not-committed",
            "fails-with-rows",
            "fails-with-synthetic-rows",
            "data-failed",
            "step-timeout",
            "model-drift",
            "multiple-heads",
            "merge-conflict-heads",
            "multiple-bases",
            "duplicate-branch-label",
            "not-null-without-server-default",
            "concurrently-in-transaction",
            # compat: the running release fails while the deploy runs
            "column-dropped-in-use",
            "table-dropped-in-use",
            "column-renamed-in-use",
            "type-changed-in-use",
            "not-null-unknown-to-running-code",
            "enum-value-removed-in-use",
        ),
        BREAKS_DEPLOY,
    ),
    **dict.fromkeys(
        (
            "downgrade-failed",
            "reupgrade-failed",
            "irreversible",
            "unnamed-drop-constraint",
        ),
        BREAKS_ROLLBACK,
    ),
    **dict.fromkeys(
        ("downgrade-leaves-behind", "base-not-empty", "roundtrip-differs", "empty-downgrade"),
        LEAVES_BEHIND,
    ),
}


@dataclass(frozen=True)
class Section:
    key: str
    title: str  # "Failures that break a deploy or a rollback"
    noun: str  # what "N more …" counts: "failures", "lint errors"


FAILURES = Section("failures", "Failures that break a deploy or a rollback", "failures")
LINT_ERRORS = Section("lint-errors", "Lint errors", "lint errors")
WARNINGS = Section("warnings", "Warnings", "warnings")
NOTICES = Section("notices", "Notices", "notices")
SECTIONS = (FAILURES, LINT_ERRORS, WARNINGS, NOTICES)


@dataclass(frozen=True)
class Entry:
    """One defect: the finding that says it best, and what other checks saw of it."""

    lead: Finding
    also: tuple[Finding, ...] = ()

    @property
    def findings(self) -> tuple[Finding, ...]:
        return (self.lead, *self.also)

    @property
    def severity(self) -> Severity:
        return min((f.severity for f in self.findings), key=lambda s: s.rank)

    @property
    def section(self) -> Section:
        if self.severity is Severity.ERROR:
            return LINT_ERRORS if self.lead.check == LINT else FAILURES
        return WARNINGS if self.severity is Severity.WARNING else NOTICES

    @property
    def impact(self) -> int:
        return min(impact(f) for f in self.findings)


def impact(f: Finding) -> int:
    if f.check == "upgrade" and f.severity is Severity.ERROR:
        return min(IMPACT.get(f.rule, BREAKS_DEPLOY), BREAKS_DEPLOY)
    return IMPACT.get(f.rule, OTHER)


# "leaves type `order_status` (enum)", "index `ix_a` on `orders`": the object is the name
# in backticks, the table after "on" is where it lives (catalog/describe.py phrase)
_NAMED = re.compile(r"(?<!\bon )`([^`\n]+)`")
# PostgreSQL's own words, in a failure's message: type "order_status" already exists
_PG_NAMED = re.compile(
    r"\b(?:type|relation|table|sequence|function|index|constraint|extension|schema|"
    r'trigger|view|operator|domain|collation|procedure|role) "([^"\n]+)"'
)
# describe's one-line messages name a few objects and count the rest
_MORE = re.compile(r"; and \d+ more\b")
# failures.py cause(): "the cause is lint unnamed-drop-constraint at line 22: …"
_LINT_CAUSE = re.compile(r"\bthe cause is lint ([\w-]+) at line (\d+)\b")


def objects(f: Finding) -> frozenset[str]:
    """The schema objects a finding's message names, as comparable keys."""
    found = _NAMED.findall(f.message) + _PG_NAMED.findall(f.message)
    return frozenset(_key(name) for name in found)


def _key(name: str) -> str:
    # `label_93(integer)` and function "label_93"; public.x and x
    return name.split("(")[0].rsplit(".", 1)[-1].strip().lower()


def _way(f: Finding) -> str | None:
    """Which way a failure goes wrong: "up" (the deploy) or "down" (the rollback); rows
    the upgrade refused and a downgrade that fails at the same revision are two stories."""
    cost = impact(f)
    if cost == BREAKS_DEPLOY:
        return "up"
    if cost in (BREAKS_ROLLBACK, LEAVES_BEHIND):
        return "down"
    return None


def _lint_causes(f: Finding) -> set[tuple[str, int]]:
    return {(rule, int(line)) for rule, line in _LINT_CAUSE.findall(f.fix or "")}


def _lead_key(f: Finding) -> tuple[int, int, int, tuple[str, int, str, int, str]]:
    return (f.severity.rank, LEAD_ORDER.get(f.check, 3), f.file is None, f.sort_key())


def entries(findings: Iterable[Finding]) -> list[Entry]:
    """The findings as entries, in report order (`ordered`)."""
    build = _Entries()
    findings = sorted(findings, key=_lead_key)
    # first what the running checks say about each revision, so the lead is theirs
    whole = []
    for f in findings:
        if f.check in STATIC:
            continue
        if f.revision is None and f.check in WHOLE_HISTORY and f.severity is not Severity.NOTICE:
            whole.append(f)
        elif f.revision is None or f.check in OWN_STORY:
            build.start(f)
        else:
            build.add_at_revision(f)
    # then lint and graph: a lint finding a failure names as its cause joins that failure
    for f in findings:
        if f.check in STATIC:
            build.add_static(f)
    # last the whole-history restatements, beside every entry naming the same object
    for f in whole:
        build.add_whole_history(f)
    pairs = zip(build.leads, build.also, strict=True)
    return ordered(Entry(lead, tuple(also)) for lead, also in pairs)


class _Entries:
    """Entries as they are built: leads, and per lead what else saw it."""

    def __init__(self) -> None:
        self.leads: list[Finding] = []
        self.also: list[list[Finding]] = []
        self.at: dict[str, list[int]] = {}  # revision -> entries a running check saw there
        self.causes: dict[tuple[str, str, int], int] = {}  # (revision, lint rule, line)

    def names(self, i: int) -> frozenset[str]:
        return frozenset().union(*(objects(f) for f in (self.leads[i], *self.also[i])))

    def start(self, f: Finding) -> None:
        self.leads.append(f)
        self.also.append([])
        self._index(f, len(self.leads) - 1)

    def join(self, f: Finding, i: int) -> None:
        self.also[i].append(f)
        self._index(f, i)

    def _index(self, f: Finding, i: int) -> None:
        if f.revision is None:
            return
        if f.check not in STATIC and i not in self.at.get(f.revision, []):
            self.at.setdefault(f.revision, []).append(i)
        for rule, line in _lint_causes(f):
            self.causes.setdefault((f.revision, rule, line), i)

    def add_at_revision(self, f: Finding) -> None:
        """Another check's finding at the same revision, on the same way (up, or back
        down), is the same failure seen twice; one naming the same object is too. A notice
        (rows not seeded, a variable inferred) is about the run, never joined."""
        assert f.revision is not None
        named = objects(f)
        other_check: int | None = None
        for i in self.at.get(f.revision, []) if f.severity is not Severity.NOTICE else []:
            lead = self.leads[i]
            if lead.severity is Severity.NOTICE:
                continue
            if named & self.names(i):
                self.join(f, i)
                return
            checks = {g.check for g in (lead, *self.also[i])}
            same_way = _way(f) is not None and _way(f) == _way(lead)
            if same_way and f.check not in checks and other_check is None:
                other_check = i
        if other_check is None:
            self.start(f)
        else:
            self.join(f, other_check)

    def add_static(self, f: Finding) -> None:
        i = None
        if f.check == LINT and f.revision is not None and f.line is not None:
            i = self.causes.get((f.revision, f.rule, f.line))
        if i is None:
            self.start(f)
        else:
            self.join(f, i)

    def add_whole_history(self, f: Finding) -> None:
        named = objects(f)
        matched = [
            i
            for i, lead in enumerate(self.leads)
            if lead.check not in STATIC and named & self.names(i)
        ]
        covered = frozenset().union(*(self.names(i) for i in matched))
        for i in matched:
            self.also[i].append(f)
        # it stays an entry of its own when it names an object no entry does, or counts
        # objects it does not name: then it says more than they do
        if not matched or not named <= covered or _MORE.search(f.message):
            self.start(f)


def entry_key(e: Entry, rule_sizes: Counter[tuple[str, str]]) -> tuple[object, ...]:
    """Worst first: the section, what it breaks, how much of it was seen; then the rarer
    rule (a rule that fires on every revision is a convention the history never followed,
    one that fires three times points at three mistakes), then the file's order."""
    lead = e.lead
    return (
        SECTIONS.index(e.section),
        e.impact,
        -len(e.findings),
        rule_sizes[(lead.check, lead.rule)],
        lead.check,
        lead.rule,
        lead.sort_key(),
    )


def ordered(items: Iterable[Entry]) -> list[Entry]:
    listed = list(items)
    sizes = Counter((e.lead.check, e.lead.rule) for e in listed)
    return sorted(listed, key=lambda e: entry_key(e, sizes))


def sections(items: Iterable[Entry]) -> list[tuple[Section, list[Entry]]]:
    """The entries per section, in section order; empty sections left out."""
    grouped: dict[str, list[Entry]] = {}
    for e in items:
        grouped.setdefault(e.section.key, []).append(e)
    return [(s, grouped[s.key]) for s in SECTIONS if s.key in grouped]


def rule_order(groups: Iterable[list[Finding]]) -> list[list[Finding]]:
    """Findings per rule (findings.group_by_rule) in the sections' order, so the counts a
    report opens with lead with what breaks too, not with the largest rule."""
    return sorted(
        groups,
        key=lambda g: (
            SECTIONS.index(Entry(min(g, key=_lead_key)).section),
            min(impact(f) for f in g),
            min(f.severity.rank for f in g),
            -len(g),
            g[0].check,
            g[0].rule,
        ),
    )


def also_seen(e: Entry) -> str:
    """ "roundtrip/base-not-empty, lint/unnamed-drop-constraint (line 22)": what else saw it."""
    parts = []
    for f in e.also:
        where = ""
        if f.line is not None and (f.file != e.lead.file or f.line != e.lead.line):
            where = f" (line {f.line})" if f.file == e.lead.file else f" ({f.file}:{f.line})"
        parts.append(f"{f.check}/{f.rule}{where}")
    return ", ".join(parts)


def hidden(items: Iterable[Entry]) -> str:
    """What entries left out are, per rule, the largest first: "290 lint/file-name-template,
    150 lint/constraint-prefix"."""
    counts = Counter(f"{e.lead.check}/{e.lead.rule}" for e in items)
    return ", ".join(f"{n} {rule}" for rule, n in sorted(counts.items(), key=lambda x: -x[1]))
