"""JUnit XML (`--junit FILE`) for GitLab test reports and Jenkins.

One testsuite; one testcase per check, plus one per revision for checks that recorded
per-revision outcomes (`CheckResult.cases`). A finding with a revision is reported on that
revision's testcase when there is one, so a failure is counted once.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from alembic_preflight.findings import CheckResult, Finding, Report, Status

SUITE = "alembic-preflight"
# XML 1.0 forbids most control characters; migration output (ANSI colours, NULs) has them
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


@dataclass
class Case:
    name: str
    classname: str
    time: float
    status: Status
    note: str | None = None
    findings: list[Finding] = field(default_factory=list)


def cases_for(check: CheckResult, report: Report) -> list[Case]:
    classname = f"{SUITE}.{check.id}"
    main = Case(check.id, classname, check.duration_s, check.status, check.note)
    per_rev = {rev: Case(f"{check.id}[{rev}]", classname, 0.0, st) for rev, st in check.cases}
    for f in sorted(check.findings, key=Finding.sort_key):
        target = per_rev.get(f.revision or "", main)
        target.findings.append(f)
    return [main, *per_rev.values()]


def _failing(case: Case, report: Report) -> list[Finding]:
    return [f for f in case.findings if f.severity.rank <= report.fail_on.rank]


def _outcome(case: Case, report: Report, counted_elsewhere: bool = False) -> str:
    """passed | failure | error | skipped for one testcase."""
    if case.status is Status.ERROR:
        return "error"
    if case.status is Status.SKIPPED:
        return "skipped"
    if _failing(case, report):
        return "failure"
    # a failed check whose failure is already counted on a revision is not counted twice
    if case.status is Status.FAILED and not counted_elsewhere:
        return "failure"
    return "passed"


def _describe(findings: list[Finding]) -> str:
    parts = []
    for f in findings:
        where = f.file + (f":{f.line}" if f.line else "") if f.file else ""
        head = f"[{f.severity.value}] {f.rule}: {f.message}"
        lines = [head]
        if where or f.revision:
            lines.append("  at " + " ".join(s for s in (where, f.revision) if s))
        if f.fix:
            lines.append(f"  fix: {f.fix}")
        if f.detail:
            lines.append(f.detail)
        parts.append("\n".join(lines))
    return clean("\n\n".join(parts))


def _child(parent: ET.Element, tag: str, message: str, text: str) -> None:
    # message is an attribute shown in one line by most viewers; the full text is the body
    first_line = message.strip().split("\n", 1)[0]
    sub = ET.SubElement(parent, tag, message=clean(first_line), type=tag)
    sub.text = text


def build(report: Report) -> ET.Element:
    root = ET.Element("testsuites", name=SUITE)
    suite = ET.SubElement(root, "testsuite", name=SUITE)
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for check in report.checks:
        cases = cases_for(check, report)
        by_revision = any(_outcome(c, report) in ("failure", "error") for c in cases[1:])
        for i, case in enumerate(cases):
            outcome = _outcome(case, report, counted_elsewhere=i == 0 and by_revision)
            el = ET.SubElement(
                suite,
                "testcase",
                name=clean(case.name),
                classname=case.classname,
                time=f"{case.time:.3f}",
            )
            counts["tests"] += 1
            failing = _failing(case, report)
            if outcome == "failure":
                counts["failures"] += 1
                text = _describe(failing) or clean(case.note or "")
                message = failing[0].message if failing else case.note or "failed"
                _child(el, "failure", message, text)
            elif outcome == "error":
                counts["errors"] += 1
                message = case.note or (case.findings[0].message if case.findings else "error")
                _child(el, "error", message, _describe(case.findings) or clean(case.note or ""))
            elif outcome == "skipped":
                counts["skipped"] += 1
                ET.SubElement(el, "skipped", message=clean(case.note or "skipped"))
            rest = [f for f in case.findings if f not in failing] if outcome != "error" else []
            if rest:  # warnings below --fail-on: visible, not failing
                ET.SubElement(el, "system-out").text = _describe(rest)
    time = f"{report.duration_s:.3f}"
    for el in (root, suite):
        for k, v in counts.items():
            if el is root and k == "skipped":
                continue  # not in the testsuites schema Jenkins and GitLab read
            el.set(k, str(v))
        el.set("time", time)
    return root


def render(report: Report) -> str:
    root = build(report)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
