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
from pathlib import Path
from typing import IO

from alembic_preflight.findings import (
    Finding,
    Report,
    Severity,
    Status,
    by_importance,
    group_by_rule,
    irreversible_count,
)
from alembic_preflight.reporters import rules

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


def annotation(f: Finding) -> str:
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
    return command(KIND[f.severity], cut(text), props)


def errored_checks(report: Report) -> Iterator[Finding]:
    """A check that errored without a finding would be invisible in annotations."""
    for c in report.checks:
        if c.status is Status.ERROR and not c.findings:
            message = f"the {c.id} check could not run" + (f": {c.note}" if c.note else "")
            yield Finding(c.id, "check-error", Severity.ERROR, message)


def annotation_lines(report: Report) -> list[str]:
    """The most important findings first, at most PER_KIND of each kind; when some are left
    out the last one of that kind says how many."""
    findings = [*errored_checks(report), *by_importance(report.findings)]
    lines: list[str] = []
    for severity in Severity:
        of_kind = [f for f in findings if f.severity is severity]
        if len(of_kind) <= PER_KIND:
            lines.extend(annotation(f) for f in of_kind)
            continue
        lines.extend(annotation(f) for f in of_kind[: PER_KIND - 1])
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
            if part.strip():
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


def inline(text: str) -> str:
    """User text as one line of Markdown: HTML-escaped, Markdown punctuation escaped."""
    escaped = html.escape(_MARKDOWN.sub(r"\\\1", text), quote=False)
    return "<br>".join(escaped.replace("\r\n", "\n").replace("\r", "\n").split("\n"))


def code(text: str) -> str:
    return f"<code>{inline(text)}</code>"


def fenced(text: str, lang: str = "") -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{text}\n{fence}"


def pre_block(title: str, text: str) -> str:
    lines = text.replace("\r\n", "\n").rstrip("\n").split("\n")
    if len(lines) > DETAIL_LINES:
        lines = [*lines[:DETAIL_LINES], f"… {len(lines) - DETAIL_LINES} more lines"]
    body = html.escape("\n".join(lines), quote=False)
    return f"<details><summary>{inline(title)}</summary>\n\n<pre>\n{body}\n</pre>\n</details>"


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
    return f"## {outcome}\n\n" + " · ".join(parts) + why


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


def finding_block(f: Finding, report: Report) -> str:
    title = rules.describe(report, f.check, f.rule).short
    where = [f"<b>{f.severity.value}</b>", f"{code(f.rule)} ({inline(title)})"]
    if f.revision:
        where.append("revision " + code(f.revision))
    if f.file:
        loc = f.file + (f":{f.line}" if f.line else "")
        where.append(code(loc))
    text = " · ".join(where) + "<br>\n" + inline(f.message)
    if f.fix:
        text += "<br>\nFix: " + inline(f.fix)
    if f.detail:
        text += "\n\n" + pre_block("Detail", f.detail)
    return text


def summary(report: Report, project_name: str = "", report_json: Path | None = None) -> str:
    """The job summary, truncated with a note to stay under GitHub's 1 MiB limit."""
    parts = [headline(report, project_name), checks_table(report)]
    heads = heads_section(report)
    if heads:
        parts.append(heads)
    findings = report.findings
    blocks: list[str] = []
    status = {c.id: c.status for c in report.checks}
    groups = group_by_rule(findings)
    for group in groups:
        first = group[0]
        icon = STATUS_ICON.get(status.get(first.check, Status.FAILED), "")
        noun = "finding" if len(group) == 1 else "findings"
        blocks.append(
            f"#### {icon} {inline(first.check)}/{inline(first.rule)}: {len(group)} {noun}"
        )
        if first.rule == FOLD_RULE and len(group) > FOLD_OVER:
            blocks.append(inline(_irreversible_line(group)))
            continue
        blocks.extend(finding_block(f, report) for f in by_importance(group))
    if findings:
        # counts first, the worst first: a 300-revision history's 40 findings read as a
        # handful of rules before any detail (issue 8)
        parts.append("### Findings\n\n" + rule_counts(groups))
        irreversible = [f for g in groups if g[0].rule == FOLD_RULE for f in g]
        if irreversible:
            parts.append(inline(_irreversible_line(irreversible)))

    size = sum(len(p.encode()) + 2 for p in parts)
    shown = 0
    for block in blocks:
        size += len(block.encode()) + 2
        if size > SUMMARY_LIMIT:
            break
        parts.append(block)
        shown += 1
    if shown < len(blocks):
        left = sum(1 for b in blocks[shown:] if not b.startswith("#"))
        where = f" in {code(str(report_json))}" if report_json else " in the step's log"
        parts.append(
            f"> **Summary truncated** to stay under GitHub's 1 MiB limit: {left} more "
            f"finding{'s' if left != 1 else ''} are listed{where}."
        )
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
