"""The terminal report: a headline, a table of checks, the counts per rule, then the
findings as entries in sections, what breaks a deploy or a rollback first.

Built for long histories (issue 8, and a 288-revision history whose 719 findings once made
a 999-line console): one entry per defect however many checks saw it (grouping.py), at
most ENTRY_LIMIT entries per section with the rest counted, details cut to DETAIL_LINES
(a traceback to its deepest frames and the error), lines wrapped to the terminal, and
by-design irreversible revisions folded into one line. `--verbose` prints everything; the
JSON report always has it. All user text goes through `Text` (never markup) so a migration
message holding "[bold]" or "[/]" prints as written.
"""

from __future__ import annotations

import re
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
from alembic_preflight.reporters import grouping
from alembic_preflight.reporters.grouping import Entry, Section

DETAIL_LINES = 6  # detail lines shown per entry; --verbose and the JSON report have them all
ENTRY_LIMIT = 10  # entries listed per section before "… N more"
INDENT = 6  # an entry's message, fix and detail, under its head line
FOLD_RULE = "irreversible"  # by design, so a count says enough
FOLD_OVER = 3
FOLD_IDS = 20  # revision ids named in the folded line
MORE = "--verbose lists them, the JSON report has them all"

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
SECTION_STYLE = {
    grouping.FAILURES.key: "bold red",
    grouping.LINT_ERRORS.key: "bold red",
    grouping.WARNINGS.key: "bold yellow",
    grouping.NOTICES.key: "bold cyan",
}


def write(report: Report, console: Console, project_name: str = "", verbose: bool = False) -> None:
    console.print(headline(report, project_name), soft_wrap=True, highlight=False)
    console.print(checks_table(report))
    findings = report.findings
    try:
        if not findings:
            if not report.not_verified:
                console.print(Text("No findings.", style="green"), highlight=False)
            return
        _findings(report, findings, console, verbose)
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


def _findings(
    report: Report, findings: tuple[Finding, ...], console: Console, verbose: bool
) -> None:
    console.print(Text(counts_line(findings), style="bold"), highlight=False)
    for rule_findings in grouping.rule_order(group_by_rule(findings)):
        first = rule_findings[0]
        worst = _worst(rule_findings)
        line = Text("  ")
        line.append(f"{len(rule_findings):>4}  ")
        line.append(f"{worst.value:<8}", style=SEVERITY_STYLE[worst])
        line.append(f" {first.check}/{first.rule}")
        console.print(line, highlight=False)
    for section, entries in grouping.sections(grouping.entries(findings)):
        console.print()
        for line in section_lines(section, entries, report, console, verbose):
            console.print(line, soft_wrap=True, highlight=False)


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
    elif report.report_only and not report.passed:
        text.append(
            "\nreport only (--fail-on never): findings do not fail the job, unless a check "
            "verified nothing"
        )
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


def section_lines(
    section: Section,
    entries: list[Entry],
    report: Report,
    console: Console,
    verbose: bool = False,
) -> list[Text]:
    """The section's lines, each one line on the screen (wrapped here, to the console's
    width, so a wrapped line keeps its indent)."""
    lines = Text(section.title, style=SECTION_STYLE[section.key])
    lines.append(f" ({len(entries)})", style="bold")
    out = _wrap(console, lines, 0)
    folded = [e for e in entries if e.lead.rule == FOLD_RULE]
    if folded:
        # by design: the count always, so it reads the same for 1 and for 12 (issue 8);
        # past FOLD_OVER the count and the ids say enough
        revs = [e.lead.revision or "?" for e in folded]
        named = ", ".join(revs[:FOLD_IDS])
        more = f", … {len(revs) - FOLD_IDS} more" if len(revs) > FOLD_IDS else ""
        out += _wrap(console, Text(f"{irreversible_count(len(revs))}: {named}{more}"), 2, 2)
        if len(folded) > FOLD_OVER and not verbose:
            entries = [e for e in entries if e.lead.rule != FOLD_RULE]
    shown = entries if verbose else entries[:ENTRY_LIMIT]
    seen_details: set[str] = set()
    for e in shown:
        out += entry_lines(e, report, console, seen_details, verbose)
    rest = entries[len(shown) :]
    if rest:
        said = f"… {len(rest)} more {section.noun} ({grouping.hidden(rest)}): {MORE}"
        out += _wrap(console, Text(said, style="dim"), 2, 2)
    return out


def entry_lines(
    e: Entry,
    report: Report,
    console: Console,
    seen_details: set[str] | None = None,
    verbose: bool = False,
) -> list[Text]:
    """Where (the file and line, as an editor opens it), then the rule and the message,
    the fix, what else saw it and the detail."""
    f = e.lead
    where = _where(f, report)
    if f.revision and f.revision not in where:
        where = f"{where}  {f.revision}" if where else f.revision
    rule = Text(f"{f.check}/{f.rule}", style=SEVERITY_STYLE[f.severity])
    out = _wrap(console, Text(where, style="bold"), 2, INDENT - 2) if where else []
    rule.append(": ", style="")
    if f.baseline:  # known and accepted: a notice now, whatever it was
        rule.append("baseline: ", style="dim")
    rule.append(_message(f), style="")
    out += _wrap(console, rule, INDENT if where else 2, 0 if where else INDENT - 2)
    if f.fix:
        out += _wrap(console, _fix(f.fix), INDENT)
    if e.also and not verbose:
        out += _wrap(console, Text(f"also seen by: {grouping.also_seen(e)}", style="dim"), INDENT)
    detail = _relative_frames(f.detail, f.file)
    if not verbose:
        detail = _without_restated_error(_from_own_file(detail, f.file), f.message)
    out += _detail(console, detail, seen_details, verbose)
    if verbose:
        for g in e.also:
            said = Text(f"also seen by {g.check}/{g.rule}", style="dim")
            if g.file and (g.file, g.line) != (f.file, f.line):
                said.append(f" at {_where(g, report)}", style="dim")
            said.append(": " + _message(g))
            out += _wrap(console, said, INDENT)
            if g.fix and g.fix != f.fix:
                out += _wrap(console, _fix(g.fix), INDENT + 2)
            out += _detail(console, _relative_frames(g.detail, g.file), None, verbose, INDENT + 2)
    return out


def _message(f: Finding) -> str:
    return "\n".join(s.rstrip("\r") for s in f.message.strip("\n").split("\n"))


def _fix(fix: str) -> Text:
    text = Text("fix: ", style="green")
    text.append(" ".join(fix.split("\n")))
    return text


def _detail(
    console: Console,
    detail: str | None,
    seen: set[str] | None,
    verbose: bool,
    indent: int = INDENT,
) -> list[Text]:
    if not detail:
        return []
    if seen is not None:
        if detail in seen:  # ten revisions failing alike should not print ten tracebacks
            return _wrap(console, Text("(same detail as above)", style="dim"), indent)
        seen.add(detail)
    out: list[Text] = []
    for line in detail_lines(detail, None if verbose else DETAIL_LINES):
        out += _wrap(console, Text(line, style="dim"), indent, 2)
    return out


_FRAME = re.compile(r'File "([^"]+)"')


def _relative_frames(detail: str | None, file: str | None) -> str | None:
    """A traceback's frames named as the report names files, relative to the repository
    root, when a frame is the finding's own file: the root found there is cut from every
    frame under it ("/home/runner/work/shop/shop/" on a CI runner, twice a frame's
    width on an 80-column log)."""
    if not detail or not file or file.startswith("/"):
        return detail
    for path in _FRAME.findall(detail):
        if path.endswith("/" + file):
            root = path[: -len(file)]
            return detail.replace(f'File "{root}', 'File "')
    return detail


def _from_own_file(detail: str | None, file: str | None) -> str | None:
    """A traceback from the first frame in the finding's own file (a revision's): the
    frames above it are env.py calling Alembic, the same in every failure."""
    if not detail or not file or "Traceback (" not in detail:
        return detail
    lines = detail.split("\n")
    for i, s in enumerate(lines):
        if s.startswith('  File "') and (f'"{file}"' in s or f'/{file}"' in s):
            return "\n".join(lines[i:])
    return detail


def _without_restated_error(detail: str | None, message: str) -> str | None:
    """A traceback without its last lines (the exception) when the message already says
    them: on a long history, each failure would otherwise print its error twice."""
    if not detail or '  File "' not in detail:
        return detail
    lines = detail.rstrip("\n").split("\n")
    frames = [i for i, s in enumerate(lines) if s.startswith('  File "')]
    if not frames:
        return detail
    # the exception starts after the deepest frame and its source line
    start = (
        frames[-1] + 2
        if frames[-1] + 1 < len(lines) and lines[frames[-1] + 1].startswith("    ")
        else frames[-1] + 1
    )
    error = " ".join(s.strip() for s in lines[start:])
    said = error.partition(": ")[2][:60] or error[:60]
    if not said or said not in " ".join(message.split()):
        return detail
    return "\n".join(lines[:start])


def detail_lines(detail: str, limit: int | None = DETAIL_LINES) -> list[str]:
    """The detail cut to `limit` lines (None: all of it). A traceback keeps its tail: the
    deepest frames and the error say where and what, the outer ones are env.py calling
    Alembic, the same in every failure. Anything else keeps its head (a schema diff names
    the object first)."""
    raw = [s.rstrip() for s in detail.replace("\r\n", "\n").rstrip("\n").split("\n")]
    if limit is None or len(raw) <= limit:
        return raw
    if any(s.startswith(("Traceback (", '  File "')) for s in raw):
        kept = raw[-(limit - 1) :]
        return [f"… {len(raw) - len(kept)} lines cut (--verbose shows them)", *kept]
    kept = raw[: limit - 1]
    return [*kept, f"… {len(raw) - len(kept)} more lines (--verbose shows them)"]


def _wrap(console: Console, text: Text, indent: int, more: int = 0) -> list[Text]:
    """`text` as screen lines `indent` spaces in (`more` further for the lines it wraps
    onto), wrapped to the console's width."""
    out = []
    for part in text.split("\n"):
        for n, line in enumerate(part.wrap(console, max(console.width - indent - more, 20))):
            line.rstrip()
            out.append(Text(" " * (indent + (more if n else 0))) + line)
    return out


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
