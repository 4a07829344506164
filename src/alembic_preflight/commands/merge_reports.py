"""`merge-reports`: one report from the JSON reports of `--shard K/N` jobs.

A CI matrix runs the per-revision work in N jobs; each writes its JSON report. The merged
report has every finding once, each check's worst status and the longest job's time. It is
judged by `--fail-on` as `verify` judges (the same exit codes), by default by the strictest
`--fail-on` the jobs ran with."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from alembic_preflight.checks import rule_docs
from alembic_preflight.commands.verify import exit_code
from alembic_preflight.errors import ConfigError
from alembic_preflight.findings import CheckResult, Finding, Report, Severity, Status
from alembic_preflight.reporters import ReportOptions, emit
from alembic_preflight.reporters.json import read_report
from alembic_preflight.settings import FailOn

# worst first: a check failed in any shard failed
STATUS_ORDER = (Status.ERROR, Status.FAILED, Status.PASSED, Status.SKIPPED)


def merge(reports: Sequence[Report]) -> Report:
    if not reports:
        raise ConfigError("merge-reports needs at least one report")
    first = reports[0]
    for r in reports[1:]:
        if r.project.heads != first.project.heads or r.project.config != first.project.config:
            raise ConfigError(
                "the reports are not of the same project and history "
                f"({first.project.config} at {', '.join(first.project.heads)} vs "
                f"{r.project.config} at {', '.join(r.project.heads)})"
            )
    order: list[str] = []
    by_id: dict[str, list[CheckResult]] = {}
    for r in reports:
        for c in r.checks:
            if c.id not in by_id:
                order.append(c.id)
            by_id.setdefault(c.id, []).append(c)
    checks = tuple(_merge_check(by_id[i]) for i in order)
    return replace(
        first,
        checks=checks,
        duration_s=max(r.duration_s for r in reports),
        # one job that could not verify leaves the whole unverified
        not_verified=next((r.not_verified for r in reports if r.not_verified), None),
    )


def _merge_check(results: list[CheckResult]) -> CheckResult:
    status = min((c.status for c in results), key=STATUS_ORDER.index)
    seen: set[Finding] = set()
    findings: list[Finding] = []
    for c in results:
        for f in c.findings:
            if f not in seen:  # static checks run in every shard: keep one copy
                seen.add(f)
                findings.append(f)
    cases = dict(case for c in results for case in c.cases)
    statements = tuple(dict.fromkeys(s for c in results for s in c.statements))
    notes = sorted({c.note for c in results if c.note})
    return CheckResult(
        id=results[0].id,
        status=status,
        duration_s=max(c.duration_s for c in results),
        findings=tuple(findings),
        note="; ".join(notes) or None,
        cases=tuple(cases.items()),
        statements=statements,
    )


# strictest first: what a job's report says it was judged by (`fail_on`, `report_only`)
STRICTNESS = (FailOn.WARNING, FailOn.ERROR, FailOn.NEVER)


def recorded_fail_on(report: Report) -> FailOn:
    if report.report_only:
        return FailOn.NEVER
    return FailOn.WARNING if report.fail_on is Severity.WARNING else FailOn.ERROR


def strictest(reports: Sequence[Report]) -> FailOn:
    """The strictest `--fail-on` the jobs ran with: one job's `warning` is not undone by
    another's `error`, nor is a blocking job made report-only by a report-only one."""
    return min((recorded_fail_on(r) for r in reports), key=STRICTNESS.index, default=FailOn.ERROR)


def judged(report: Report, fail_on: FailOn) -> Report:
    """The report judged by `fail_on` as `verify` would have: a check that ran to the end
    failed when a finding reaches the threshold (as run_checks.run_check says), whatever
    threshold its job used; a check that stopped on an error or was skipped stays so."""
    threshold = fail_on.threshold

    def status(c: CheckResult) -> Status:
        if c.status not in (Status.PASSED, Status.FAILED):
            return c.status
        reached = any(f.severity.rank <= threshold.rank for f in c.findings)
        return Status.FAILED if reached else Status.PASSED

    return replace(
        report,
        checks=tuple(replace(c, status=status(c)) for c in report.checks),
        fail_on=threshold,
        report_only=fail_on is FailOn.NEVER,
    )


def merge_reports(
    paths: Sequence[Path], options: ReportOptions, fail_on: FailOn | None = None
) -> int:
    """Merge, judge by `fail_on` (default: the strictest the jobs ran with), report, and
    exit as `verify` does: 0 passed, 1 a check failed, 3 not verified."""
    reports = [read_report(p) for p in paths]
    chosen = fail_on or strictest(reports)
    report = replace(judged(merge(reports), chosen), rules=rule_docs())
    emit(report, options)
    return exit_code(report, chosen)
