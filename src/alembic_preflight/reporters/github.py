"""GitHub Actions: annotations, the job summary and step outputs (issue 3).

Workflow commands are parsed from any log line (leading spaces trimmed), so text echoed
from migrations or SQL could smuggle in `::error::` or `::add-mask::`. Annotations are
escaped the way @actions/core escapes them; everything else that carries user text is
printed between `::stop-commands::<token>` and `::<token>::`.
https://docs.github.com/actions/reference/workflow-commands-for-github-actions
"""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO
from urllib.parse import quote

from alembic_preflight.findings import (
    Finding,
    LockedStatement,
    Report,
    Severity,
    Status,
    group_by_rule,
    irreversible_count,
)
from alembic_preflight.output import MIN_MASKED
from alembic_preflight.reporters import grouping, rules
from alembic_preflight.reporters.console import baseline_line
from alembic_preflight.reporters.grouping import Entry, Section
from alembic_preflight.reporters.locks_table import locks_section

# GitHub shows at most 10 annotations of each kind per step (50 per job) and cuts the
# message at 4096 characters.
# https://docs.github.com/rest/checks/runs#update-a-check-run (annotations limits)
PER_KIND = 10
MESSAGE_LIMIT = 4096
# $GITHUB_STEP_SUMMARY is refused above 1 MiB per step; keep room for the truncation note.
SUMMARY_LIMIT = 1024 * 1024 - 4096
DETAIL_LINES = 200
GENERATIONS = 5  # revisions shown below each head in the graph
GRAPH_NODES = 60
FOLD_RULE = "irreversible"  # by design: a count and the ids say enough past FOLD_OVER
FOLD_OVER = 3
FOLD_IDS = 20
ENTRY_LIMIT = 10  # entries shown per section; the rest fold into a <details> below them

KIND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTICE: "notice"}
STATUS_ICON = {
    Status.PASSED: "✅",
    Status.FAILED: "❌",
    Status.ERROR: "💥",
    Status.SKIPPED: "⏭️",
}


# -- workflow commands -------------------------------------------------------------------


def escape_data(s: str) -> str:
    # same order as @actions/core command.ts: % first so later escapes are not re-escaped
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(s: str) -> str:
    return escape_data(s).replace(":", "%3A").replace(",", "%2C")


def command(name: str, message: str, properties: dict[str, str] | None = None) -> str:
    props = ",".join(f"{k}={escape_property(v)}" for k, v in (properties or {}).items() if v)
    return f"::{name}{' ' + props if props else ''}::{escape_data(message)}"


def cut(text: str, limit: int = MESSAGE_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def annotation(f: Finding, also: str = "", severity: Severity | None = None) -> str:
    """One annotation; `also` names the other checks that saw the same defect."""
    props: dict[str, str] = {}
    if f.file:
        props["file"] = f.file
        if f.line:
            props["line"] = str(f.line)
            if f.column:
                props["col"] = str(f.column)
    props["title"] = f"{f.check}: {f.rule}"
    text = f.message
    if f.revision and f.revision not in text:
        text += f" (revision {f.revision})"
    if f.fix:
        text += f"\nFix: {f.fix}"
    if also:
        text += f"\nAlso seen by: {also}"
    return command(KIND[severity or f.severity], cut(text), props)


def errored_checks(report: Report) -> Iterator[Finding]:
    """A check that errored without a finding would be invisible in annotations."""
    for c in report.checks:
        if c.status is Status.ERROR and not c.findings:
            message = f"the {c.id} check could not run" + (f": {c.note}" if c.note else "")
            yield Finding(c.id, "check-error", Severity.ERROR, message)


def annotation_lines(report: Report) -> list[str]:
    """One annotation per defect (grouping.py), in the sections' order, at most PER_KIND of
    each kind; when some are left out the last one of that kind says how many."""
    # accepted by the baseline: known on old revisions, not this change's to annotate
    new = [f for f in report.findings if not f.baseline]
    entries = [*(Entry(f) for f in errored_checks(report)), *grouping.entries(new)]

    def line(e: Entry) -> str:
        return annotation(e.lead, grouping.also_seen(e), e.severity)

    lines: list[str] = []
    for severity in Severity:
        of_kind = [e for e in entries if e.severity is severity]
        if len(of_kind) <= PER_KIND:
            lines.extend(line(e) for e in of_kind)
            continue
        lines.extend(line(e) for e in of_kind[: PER_KIND - 1])
        rest = len(of_kind) - (PER_KIND - 1)
        noun = KIND[severity] + ("s" if rest != 1 else "")
        lines.append(
            command(
                KIND[severity],
                f"{rest} more {noun} not shown as annotations "
                "(GitHub shows 10 per kind): see the job summary for all of them.",
                {"title": "alembic-preflight"},
            )
        )
    return lines


def new_token(avoid: str = "") -> str:
    while True:
        token = uuid.uuid4().hex
        if token not in avoid:
            return token


def begin(report: Report, stream: IO[str], secrets: Iterable[str], token: str) -> None:
    """Masks first (so nothing after can leak them), then annotations, then stop commands
    for whatever the console report prints next."""
    for secret in secrets:
        for part in secret.splitlines():  # the runner masks line by line
            if len(part.strip()) >= MIN_MASKED:  # (shorter: those letters in every line)
                stream.write(command("add-mask", part) + "\n")
    for line in annotation_lines(report):
        stream.write(line + "\n")
    stream.write(f"::stop-commands::{token}\n")
    stream.flush()


def end(stream: IO[str], token: str) -> None:
    stream.write(f"::{token}::\n")
    stream.flush()


# -- job summary -------------------------------------------------------------------------

_MARKDOWN = re.compile(r"([\\`*_\[\]|~!])")
# messages put names in backticks ("leaves type `order_status`"): shown as code, which is
# what they mean, rather than as escaped backticks
_TICKED = re.compile(r"`([^`\n]+)`")


def inline(text: str) -> str:
    """User text as one line of Markdown: HTML-escaped, Markdown punctuation escaped, names
    in backticks as code. Only for Markdown's inline context: inside an HTML block (a line
    that starts with <details>, say) Markdown is not read and the escapes would show."""
    parts: list[str] = []
    pos = 0
    for m in _TICKED.finditer(text):
        parts.append(_escaped(text[pos : m.start()]))
        parts.append(code(m.group(1)))
        pos = m.end()
    parts.append(_escaped(text[pos:]))
    return "".join(parts)


def _escaped(text: str) -> str:
    escaped = html.escape(_MARKDOWN.sub(r"\\\1", text), quote=False)
    return "<br>".join(escaped.replace("\r\n", "\n").replace("\r", "\n").split("\n"))


def code(text: str) -> str:
    return f"<code>{_escaped(text)}</code>"


def fenced(text: str, lang: str = "") -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{text}\n{fence}"


def pre_block(title: str, text: str) -> str:
    lines = text.replace("\r\n", "\n").rstrip("\n").split("\n")
    if len(lines) > DETAIL_LINES:
        lines = [*lines[:DETAIL_LINES], f"… {len(lines) - DETAIL_LINES} more lines"]
    body = html.escape("\n".join(lines), quote=False)
    return f"<details><summary>{_html(title)}</summary>\n\n<pre>\n{body}\n</pre>\n</details>"


def _html(text: str) -> str:
    """Text inside an HTML block (<summary>): Markdown is not read there, so HTML escapes
    only (a Markdown escape would show its backslash)."""
    return html.escape(" ".join(text.split()), quote=False)


def _seconds(s: float) -> str:
    return (
        f"{s:.2f}s" if s < 10 else f"{s:.1f}s" if s < 60 else f"{int(s // 60)}m{int(s % 60):02d}s"
    )


def headline(report: Report, project_name: str) -> str:
    outcome = (
        "❌ alembic-preflight: not verified"
        if report.not_verified
        else "✅ alembic-preflight passed"
        if report.passed
        else "❌ alembic-preflight failed"
    )
    p = report.project
    parts = [f"<b>{inline(project_name)}</b>"] if project_name else []
    parts.append(code(p.config))
    parts.append(f"{p.revisions} revision{'s' if p.revisions != 1 else ''}")
    if report.database is not None:
        backend = report.database.backend
        name = "PostgreSQL" if backend.lower() in ("postgresql", "postgres") else backend
        parts.append(inline(f"{name} {report.database.server_version}"))
    parts.append(_seconds(report.duration_s))
    why = f"\n\n{inline(report.not_verified)}" if report.not_verified else ""
    if report.report_only and not report.passed and not report.not_verified:
        why += "\n\n" + inline("Report only (fail-on: never): findings do not fail the job.")
    if report.baseline is not None:
        why += "\n\n" + inline(baseline_line(report))
    return f"## {outcome}\n\n" + " · ".join(parts) + why


def fixed_block(report: Report) -> str:
    """Baseline entries no longer found, folded: one list, at the end."""
    items = "\n".join(f"- {inline(e)}" for e in report.fixed)
    title = "Fixed: no longer found, remove from the baseline"
    return f"<details><summary>{title}</summary>\n\n{items}\n\n</details>"


def checks_table(report: Report) -> str:
    rows = ["| Check | Status | Time | Findings | Note |", "| --- | --- | ---: | ---: | --- |"]
    for c in report.checks:
        rows.append(
            f"| {inline(c.id)} | {STATUS_ICON[c.status]} {c.status.value} "
            f"| {_seconds(c.duration_s)} | {len(c.findings) or ''} | {inline(c.note or '')} |"
        )
    return "\n".join(rows)


def heads_section(report: Report) -> str:
    p = report.project
    if len(p.heads) < 2:
        return ""
    parts = [f"### {len(p.heads)} heads\n\n" + ", ".join(code(h) for h in p.heads)]
    if p.parents:
        parts.append(fenced(mermaid(p.heads, p.parents, p.files), "mermaid"))
    merge = next((f.fix for f in report.findings if f.rule == "multiple-heads" and f.fix), None)
    if merge:
        parts.append("Merge them:\n\n" + fenced(merge, "sh"))
    return "\n\n".join(parts)


def compat_section(report: Report, blob_url: str | None = None, limit: int = 10) -> str:
    """ "Deploy compatibility": the compat check's verdict on the release running during
    the deploy (its note links the two releases), and its findings in one line each."""
    result = next((c for c in report.checks if c.id == "compat"), None)
    if result is None or result.status is Status.SKIPPED:
        return ""
    lines = [f"### Deploy compatibility\n\n{inline(result.note or '')}"]
    items = [
        f"- {location(f, blob_url)} {inline(f.rule)}: {inline(cut(f.message, 300))}"
        for f in result.findings[:limit]
    ]
    if len(result.findings) > limit:
        items.append(f"- and {len(result.findings) - limit} more (see below)")
    return "\n\n".join([*lines, "\n".join(items)] if items else lines)


def _ancestors(rev: str, parents: dict[str, tuple[str, ...]]) -> set[str]:
    seen: set[str] = set()
    todo = [rev]
    while todo:
        r = todo.pop()
        for parent in parents.get(r, ()):
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return seen


def graph_nodes(
    heads: tuple[str, ...], parents: dict[str, tuple[str, ...]]
) -> tuple[list[str], set[str]]:
    """Revisions a few generations below each head, stopping at the common ancestors.

    Returns the nodes (heads first, in walk order) and the nodes whose parents were cut."""
    common = set.intersection(*(_ancestors(h, parents) for h in heads))
    nodes: list[str] = []
    cut_below: set[str] = set()
    for head in heads:
        frontier = [head]
        for depth in range(GENERATIONS + 1):
            following: list[str] = []
            for rev in frontier:
                if rev in nodes:
                    continue
                if len(nodes) >= GRAPH_NODES:
                    break
                nodes.append(rev)
                if rev in common:  # the branch point: what lies below is shared
                    if parents.get(rev):
                        cut_below.add(rev)
                    continue
                if depth == GENERATIONS:
                    if parents.get(rev):
                        cut_below.add(rev)
                    continue
                following.extend(parents.get(rev, ()))
            frontier = following
    return nodes, cut_below


_LABEL_UNSAFE = re.compile(r"[^\w.\- ]")


def _label(text: str) -> str:
    # mermaid labels accept markup and entity codes; a plain alphabet keeps them inert
    return _LABEL_UNSAFE.sub("_", text)[:60]


def mermaid(
    heads: tuple[str, ...], parents: dict[str, tuple[str, ...]], files: dict[str, str]
) -> str:
    nodes, cut_below = graph_nodes(heads, parents)
    ids = {rev: f"r{i}" for i, rev in enumerate(nodes)}
    lines = ["graph BT"]
    for rev in nodes:
        stem = Path(files[rev]).stem if rev in files else ""
        stem = stem[len(rev) :].lstrip("_") if stem.startswith(rev) else stem
        label = _label(rev) + (f"<br/>{_label(stem)}" if stem else "")
        lines.append(f'  {ids[rev]}["{label}"]')
    for rev in nodes:
        for parent in parents.get(rev, ()):
            if parent in ids:
                lines.append(f"  {ids[parent]} --> {ids[rev]}")
    for i, rev in enumerate(sorted(cut_below, key=nodes.index)):
        lines.append(f'  more{i}["…"] -.-> {ids[rev]}')
    lines.append("  classDef head fill:#ffe0e0,stroke:#c00")
    lines.append(f"  class {','.join(ids[h] for h in heads if h in ids)} head")
    return "\n".join(lines)


def location(f: Finding, blob_url: str | None = None) -> str:
    """The file and line as code; a link to them at the commit when the run knows it
    ($GITHUB_SERVER_URL/$GITHUB_REPOSITORY/blob/$GITHUB_SHA) and the path is the
    repository's (findings' paths are relative to its root, as annotations need)."""
    if not f.file:
        return ""
    shown = code(f.file + (f":{f.line}" if f.line else ""))
    path = PurePosixPath(f.file)
    if not blob_url or path.is_absolute() or ".." in path.parts or re.match(r"[A-Za-z]:", f.file):
        return shown
    url = f"{blob_url}/{quote(f.file)}" + (f"#L{f.line}" if f.line else "")
    return f'<a href="{html.escape(url)}">{shown}</a>'


def entry_block(e: Entry, report: Report, blob_url: str | None = None) -> str:
    """One defect: the lead finding, what else saw it, and the details."""
    f = e.lead
    title = rules.describe(report, f.check, f.rule).short
    where = [f"<b>{e.severity.value}</b>", f"{code(f'{f.check}/{f.rule}')} ({inline(title)})"]
    if f.revision:
        where.append("revision " + code(f.revision))
    if f.file:
        where.append(location(f, blob_url))
    text = " · ".join(where) + "<br>\n" + inline(f.message)
    if f.fix:
        text += "<br>\nFix: " + inline(f.fix)
    if e.also:
        seen = []
        for g in e.also:
            at = ""
            if g.file and (g.file, g.line) != (f.file, f.line):
                at = f" (line {g.line})" if g.file == f.file else f" ({location(g, blob_url)})"
            seen.append(f"- {code(f'{g.check}/{g.rule}')}{at}: {inline(g.message)}")
        text += "\n\nAlso seen by:\n" + "\n".join(seen)
    details: list[Finding] = []
    for g in e.findings:  # two checks printing the same diff: shown once
        if g.detail and all(g.detail != d.detail for d in details):
            details.append(g)
    if len(details) == 1:
        text += "\n\n" + pre_block("Detail", details[0].detail or "")
    elif details:
        blocks = [f"{code(f'{g.check}/{g.rule}')}\n\n{_pre(g.detail or '')}" for g in details]
        text += "\n\n<details><summary>Details</summary>\n\n" + "\n\n".join(blocks)
        text += "\n</details>"
    return text


def _pre(text: str) -> str:
    lines = text.replace("\r\n", "\n").rstrip("\n").split("\n")
    if len(lines) > DETAIL_LINES:
        lines = [*lines[:DETAIL_LINES], f"… {len(lines) - DETAIL_LINES} more lines"]
    return "<pre>\n" + html.escape("\n".join(lines), quote=False) + "\n</pre>"


def first_problem(e: Entry, report: Report, blob_url: str | None = None) -> str:
    """Above the checks table, so the first thing to fix shows without scrolling."""
    f = e.lead
    where = f" at {location(f, blob_url)}" if f.file else ""
    text = f"**First to fix:** {code(f'{f.check}/{f.rule}')}{where}<br>\n{inline(f.message)}"
    if f.fix:
        text += "<br>\nFix: " + inline(f.fix)
    if e.also:
        text += "<br>\nAlso seen by: " + inline(grouping.also_seen(e))
    return text


SECTION_ICON = {
    grouping.FAILURES.key: "❌",
    grouping.LINT_ERRORS.key: "❌",
    grouping.WARNINGS.key: "⚠️",
    grouping.NOTICES.key: "ℹ️",
}


def section_blocks(
    section: Section, entries: list[Entry], report: Report, blob_url: str | None
) -> list[tuple[int, str]]:
    """(findings in it, Markdown) per block: a heading, then ENTRY_LIMIT entries, then
    the rest folded in a <details> (still here: annotations send readers to the summary
    for every finding)."""
    blocks = [(0, f"### {SECTION_ICON[section.key]} {section.title} ({len(entries)})")]
    folded = [e for e in entries if e.lead.rule == FOLD_RULE]
    if len(folded) > FOLD_OVER:
        blocks.append((len(folded), inline(_irreversible_line([e.lead for e in folded]))))
        entries = [e for e in entries if e.lead.rule != FOLD_RULE]
    for i, e in enumerate(entries):
        if i == ENTRY_LIMIT:
            rest = entries[ENTRY_LIMIT:]
            said = f"{len(rest)} more {section.noun} ({grouping.hidden(rest)})"
            blocks.append((0, f"<details><summary>{_html(said)}</summary>"))
        blocks.append((len(e.findings), entry_block(e, report, blob_url)))
    if len(entries) > ENTRY_LIMIT:
        blocks.append((0, "</details>"))
    return blocks


def summary(
    report: Report,
    project_name: str = "",
    report_json: Path | None = None,
    blob_url: str | None = None,
    limit: int = SUMMARY_LIMIT,
    limit_name: str = "1 MiB",
) -> str:
    """The job summary, truncated with a note to stay under GitHub's 1 MiB limit: the
    outcome, the first thing to fix, the checks, the counts per rule, then one entry per
    defect in grouping's sections, what breaks a deploy or a rollback first. `limit`
    (bytes) and `limit_name`: another bound, such as a pull-request comment's."""
    findings = report.findings
    entries = grouping.entries(findings)
    parts = [headline(report, project_name)]
    if entries and not report.passed:
        parts.append(first_problem(entries[0], report, blob_url))
    parts.append(checks_table(report))
    heads = heads_section(report)
    if heads:
        parts.append(heads)
    compat = compat_section(report, blob_url)
    if compat:
        parts.append(compat)
    blocking = [s for c in report.checks for s in c.statements]
    if blocking:

        def placed(s: LockedStatement) -> str:
            return location(Finding("locks", "", Severity.NOTICE, "", file=s.file, line=s.line))

        parts.append(locks_section(blocking, placed, inline))
    if findings:
        # counts first, in the sections' order: a long history's findings read as a
        # handful of rules before any detail (issue 8)
        groups = grouping.rule_order(group_by_rule(findings))
        parts.append("### Findings\n\n" + rule_counts(groups))
        irreversible = [f for g in groups if g[0].rule == FOLD_RULE for f in g]
        if irreversible:
            parts.append(inline(_irreversible_line(irreversible)))
    blocks = [
        block
        for section, items in grouping.sections(entries)
        for block in section_blocks(section, items, report, blob_url)
    ]
    size = sum(len(p.encode()) + 2 for p in parts)
    shown = 0
    for _, block in blocks:
        size += len(block.encode()) + 2
        if size > limit:
            break
        parts.append(block)
        shown += 1
    if shown < len(blocks):
        if any(b.startswith("<details><summary>") for _, b in blocks[:shown]) and not any(
            b == "</details>" for _, b in blocks[:shown]
        ):
            parts.append("</details>")
        left = sum(n for n, _ in blocks[shown:])
        where = f" in {code(str(report_json))}" if report_json else " in the step's log"
        parts.append(
            f"> **Summary truncated** to stay under GitHub's {limit_name} limit: {left} more "
            f"finding{'s' if left != 1 else ''} are listed{where}."
        )
    if report.fixed:
        parts.append(fixed_block(report))
    return "\n\n".join(parts) + "\n"


# -- step outputs ------------------------------------------------------------------------


def rule_counts(groups: list[list[Finding]]) -> str:
    rows = ["| Count | Severity | Rule |", "|---:|---|---|"]
    for group in groups:
        worst = min((f.severity for f in group), key=lambda sev: sev.rank)
        rows.append(
            f"| {len(group)} | {worst.value} | {inline(group[0].check)}/{inline(group[0].rule)} |"
        )
    return "\n".join(rows)


def _irreversible_line(findings: list[Finding]) -> str:
    revs = sorted({f.revision or "?" for f in findings})
    named = ", ".join(revs[:FOLD_IDS]) + (
        f", … {len(revs) - FOLD_IDS} more" if len(revs) > FOLD_IDS else ""
    )
    return f"{irreversible_count(len(revs))}: {named}"


def output_line(name: str, value: str) -> str:
    if "\n" not in value and "\r" not in value:
        return f"{name}={value}\n"
    delimiter = new_token(value)
    return f"{name}<<ghadelimiter_{delimiter}\n{value}\nghadelimiter_{delimiter}\n"


def outputs(report: Report, report_json: Path | None = None) -> str:
    lines = [
        output_line("passed", "true" if report.passed else "false"),
        output_line("failed-checks", ",".join(report.failed_checks)),
        output_line("heads", ",".join(report.project.heads)),
    ]
    if report_json is not None:
        lines.append(output_line("report", str(report_json)))
    return "".join(lines)


def append(path: Path, text: str) -> None:
    # GitHub hands each step its own files and reads them after the step: append, as
    # @actions/core does, so earlier writers in the same step keep their content
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8", errors="replace", newline="\n") as f:
        f.write(text)
