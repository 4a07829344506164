"""`merge-reports`: one report from the JSON reports of `--shard K/N` jobs.

A CI matrix runs the per-revision work in N jobs; each writes its JSON report. The merged
report has every finding once, each check's worst status and the longest job's time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from alembic_preflight.checks import rule_docs
from alembic_preflight.errors import EXIT_FAILED, EXIT_OK, ConfigError
from alembic_preflight.findings import CheckResult, Finding, Report, Status
from alembic_preflight.reporters import ReportOptions, emit
from alembic_preflight.reporters.json import read_report

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
    notes = sorted({c.note for c in results if c.note})
    return CheckResult(
        id=results[0].id,
        status=status,
        duration_s=max(c.duration_s for c in results),
        findings=tuple(findings),
        note="; ".join(notes) or None,
        cases=tuple(cases.items()),
    )


def merge_reports(paths: Sequence[Path], options: ReportOptions) -> int:
    report = replace(merge([read_report(p) for p in paths]), rules=rule_docs())
    emit(report, options)
    return EXIT_OK if report.passed else EXIT_FAILED
