"""The terminal report: a headline, a table of checks, then findings grouped by rule.

Built for long histories (issue 8): a 300-revision project with 40 findings must still be
readable in a CI log, so findings are grouped by rule with counts first, the worst group
first, one line each, details cut short, and by-design irreversible revisions folded into
one line. All user text goes through `Text` (never markup) so a migration message holding
"[bold]" or "[/]" prints as written.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from alembic_preflight.findings import (
    Finding,
    Report,
    Severity,
    Status,
    group_by_rule,
    irreversible_count,
)

DETAIL_LINES = 15  # detail lines shown per finding; the JSON report has them all
GROUP_LIMIT = 25  # findings listed per rule before "… N more"
FOLD_RULE = "irreversible"  # by design, so a count says enough
FOLD_OVER = 3
FOLD_IDS = 20  # revision ids named in the folded line

STATUS_STYLE = {
    Status.PASSED: "green",
    Status.FAILED: "bold red",
    Status.ERROR: "bold red",
    Status.SKIPPED: "dim",
}
SEVERITY_STYLE = {
    Severity.ERROR: "bold red",
    Severity.WARNING: "yellow",
    Severity.NOTICE: "cyan",
}


def write(report: Report, console: Console, project_name: str = "") -> None:
    console.print(headline(report, project_name), soft_wrap=True, highlight=False)
    console.print(checks_table(report))
    findings = report.findings
    try:
        if not findings:
            if not report.not_verified:
                console.print(Text("No findings.", style="green"), highlight=False)
            return
        _findings(report, findings, console)
    finally:
        for text in fixed_lines(report):
            console.print(text, soft_wrap=True, highlight=False)


def fixed_lines(report: Report, limit: int = 10) -> list[Text]:
    """Baseline entries no longer found, once, at the end."""
    if not report.fixed:
        return []
    lines = [Text("\nfixed: no longer found, remove from the baseline", style="bold green")]
    lines += [Text(f"  {entry}") for entry in report.fixed[:limit]]
    if len(report.fixed) > limit:
        lines.append(Text(f"  … {len(report.fixed) - limit} more (all are in the JSON report)"))
    return lines


def _findings(report: Report, findings: tuple[Finding, ...], console: Console) -> None:
    groups = group_by_rule(findings)
    console.print(Text(counts_line(findings), style="bold"), highlight=False)
    for rule_findings in groups:
        first = rule_findings[0]
        worst = _worst(rule_findings)
        line = Text("  ")
        line.append(f"{len(rule_findings):>4}  ")
        line.append(f"{worst.value:<8}", style=SEVERITY_STYLE[worst])
        line.append(f" {first.check}/{first.rule}")
        console.print(line, highlight=False)
    for rule_findings in groups:
        console.print()
        for text in group_lines(rule_findings, report):
            console.print(text, soft_wrap=True, highlight=False)


def headline(report: Report, project_name: str = "") -> Text:
    text = Text()
    text.append(f"alembic-preflight {report.tool_version}: ", style="bold")
    if report.not_verified:
        text.append("NOT VERIFIED", style="bold red")
    elif report.passed:
        text.append("PASSED", style="bold green")
    else:
        text.append("FAILED", style="bold red")
    p = report.project
    parts = [f"{project_name} ({p.config})" if project_name else p.config]
    parts.append(_plural(p.revisions, "revision"))
    heads = ", ".join(p.heads) or "none"
    parts.append(f"{'heads' if len(p.heads) != 1 else 'head'} {heads}")
    if report.database is not None:
        parts.append(f"{_backend_name(report.database.backend)} {report.database.server_version}")
    parts.append(_seconds(report.duration_s))
    text.append("  " + " · ".join(parts))
    if report.not_verified:
        text.append(f"\n{report.not_verified}", style="bold red")
    if report.baseline is not None:
        text.append(f"\n{baseline_line(report)}")
    return text


def baseline_line(report: Report) -> str:
    """What the baseline did: accepted (known) findings, and entries no longer found."""
    accepted = report.accepted
    said = (
        f"{accepted} known finding{'s' if accepted != 1 else ''} accepted by the baseline "
        f"({report.baseline})"
    )
    if report.fixed:
        said += (
            f"; {len(report.fixed)} baseline entr{'ies' if len(report.fixed) != 1 else 'y'} "
            "no longer found (fixed: remove from the baseline, or write it again)"
        )
    return said


def checks_table(report: Report) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("Check")
    table.add_column("Status")
    table.add_column("Time", justify="right")
    table.add_column("Findings", justify="right")
    table.add_column("Note", overflow="fold")
    for c in report.checks:
        table.add_row(
            Text(c.id),
            Text(c.status.value, style=STATUS_STYLE[c.status]),
            Text(_seconds(c.duration_s)),
            Text(str(len(c.findings)) if c.findings else "-"),
            Text(c.note or ""),
        )
    return table


def counts_line(findings: Iterable[Finding]) -> str:
    counts = {s: 0 for s in Severity}
    for f in findings:
        counts[f.severity] += 1
    parts = [_plural(n, s.value) for s, n in counts.items() if n]
    return "Findings: " + ", ".join(parts)


def group_lines(findings: list[Finding], report: Report) -> list[Text]:
    first = findings[0]
    worst = _worst(findings)
    head = Text()
    head.append(worst.value, style=SEVERITY_STYLE[worst])
    head.append(f" {first.check}/{first.rule}", style="bold")
    head.append(f" ({len(findings)})")
    lines = [head]
    if first.rule == FOLD_RULE:
        # the count always, so a summary reads the same for 1 and for 12 (issue 8)
        revs = [f.revision or "?" for f in findings]
        named = ", ".join(revs[:FOLD_IDS])
        more = f", … {len(revs) - FOLD_IDS} more" if len(revs) > FOLD_IDS else ""
        lines.append(Text(f"  {irreversible_count(len(revs))}: {named}{more}"))
        if len(findings) > FOLD_OVER:
            return lines
    shown_details: set[str] = set()
    for f in findings[:GROUP_LIMIT]:
        repeated = f.detail is not None and f.detail in shown_details
        if f.detail is not None:
            shown_details.add(f.detail)
        lines.extend(finding_lines(f, report, worst, repeated_detail=repeated))
    if len(findings) > GROUP_LIMIT:
        rest = len(findings) - GROUP_LIMIT
        lines.append(Text(f"  … {rest} more (all are in the JSON report)", style="dim"))
    return lines


def finding_lines(
    f: Finding, report: Report, group_severity: Severity, repeated_detail: bool = False
) -> list[Text]:
    message, _, rest = f.message.partition("\n")
    line = Text("  ")
    where = _where(f, report)
    if where:
        line.append(where, style="bold")
        line.append("  ")
    if f.revision:
        line.append(f.revision, style="magenta")
        line.append("  ")
    if f.baseline:
        line.append("baseline: ", style="dim")
    elif f.severity is not group_severity:  # a rule whose severity was overridden for some
        line.append(f"{f.severity.value}: ", style=SEVERITY_STYLE[f.severity])
    line.append(message.rstrip("\r"))
    lines = [line]
    if f.fix:
        fix = Text("      fix: ", style="green")
        fix.append(" ".join(f.fix.split("\n")))
        lines.append(fix)
    if repeated_detail:  # ten revisions failing alike should not print ten tracebacks
        lines.append(Text("      (same detail as above)", style="dim"))
        rest = rest.strip("\n")
        if rest:
            lines.extend(detail_lines(rest))
        return lines
    detail = "\n".join(s for s in (rest.strip("\n"), f.detail) if s)
    if detail:
        lines.extend(detail_lines(detail))
    return lines


def detail_lines(detail: str, limit: int = DETAIL_LINES) -> list[Text]:
    """The detail indented, cut to about `limit` lines: the head says where, the tail holds
    the error itself (the last line of a traceback), so the middle goes."""
    raw = [s.rstrip() for s in detail.replace("\r\n", "\n").rstrip("\n").split("\n")]
    if len(raw) > limit:
        head = limit // 3
        tail = limit - head - 1
        cut = len(raw) - head - tail
        raw = [*raw[:head], f"… {cut} lines cut (the JSON report has them all) …", *raw[-tail:]]
    return [Text("      " + s, style="dim") for s in raw]


def _where(f: Finding, report: Report) -> str:
    if f.file is None:
        # a notice about the run (rows not seeded, a variable inferred) is about no file;
        # a problem without one is the configuration's to answer for
        return "" if f.severity is Severity.NOTICE else report.project.config
    if f.line is None:
        return f.file
    return f"{f.file}:{f.line}" + (f":{f.column}" if f.column else "")


def _worst(findings: Iterable[Finding]) -> Severity:
    return min((f.severity for f in findings), key=lambda s: s.rank)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _seconds(s: float) -> str:
    if s < 10:
        return f"{s:.2f}s"
    if s < 60:
        return f"{s:.1f}s"
    return f"{int(s // 60)}m{int(s % 60):02d}s"


def _backend_name(backend: str) -> str:
    return "PostgreSQL" if backend.lower() in ("postgresql", "postgres") else backend
