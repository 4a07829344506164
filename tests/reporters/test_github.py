from __future__ import annotations

import io
import re
from dataclasses import replace
from pathlib import Path

import pytest
from reporter_samples import (
    HEAD_A,
    HEAD_B,
    HOSTILE,
    MERGE_FIX,
    ORDERS,
    make_defects_report,
    make_hostile_report,
    make_passing_report,
    make_report,
    many_findings,
)
from rich.console import Console

from alembic_preflight.findings import CheckResult, Finding, Report, Severity, Status
from alembic_preflight.reporters import ReportOptions, emit, github

COMMAND = re.compile(r"^::([\w-]+)(?: ([^:]*))?::(.*)$")


def unescape(s: str) -> str:
    return (
        s.replace("%0D", "\r").replace("%0A", "\n").replace("%3A", ":").replace("%2C", ",")
    ).replace("%25", "%")


def runner(log: str) -> list[tuple[str, dict[str, str], str]]:
    """What the Actions runner would act on: commands outside stop-commands regions,
    parsed as the runner does (leading whitespace ignored, first '::' ends properties)."""
    commands = []
    stopped_until = None
    for line in log.split("\n"):
        line = line.lstrip()
        if stopped_until is not None:
            if line == f"::{stopped_until}::":
                stopped_until = None
            continue
        m = COMMAND.match(line)
        if not m:
            continue
        name, props, data = m.groups()
        if name == "stop-commands":
            stopped_until = data
            continue
        fields = dict(p.split("=", 1) for p in props.split(",")) if props else {}
        commands.append((name, {k: unescape(v) for k, v in fields.items()}, unescape(data)))
    return commands


def run_emit(report, tmp_path, **kw) -> str:
    out = io.StringIO()
    options = ReportOptions(
        format="github",
        console=Console(file=out, width=100),
        github_step_summary=tmp_path / "summary.md",
        github_output=tmp_path / "output.txt",
        **kw,
    )
    emit(report, options)
    return out.getvalue()


def test_escaping_matches_actions_core():
    assert github.escape_data("a%b\rc\nd:e,f") == "a%25b%0Dc%0Ad:e,f"
    assert github.escape_property("a%b\rc\nd:e,f") == "a%25b%0Dc%0Ad%3Ae%2Cf"
    # % first: an already-escaped sequence in user text stays literal
    assert github.escape_data("%0A") == "%250A"


def test_golden_commands(report, golden):
    out = io.StringIO()
    github.begin(report, out, ("s3cret",), "TOKEN")
    github.end(out, "TOKEN")
    golden("github_commands.txt", out.getvalue())


def test_golden_summary_and_outputs(report, golden):
    golden("github_summary.md", github.summary(report, "shop", Path("reports/preflight.json")))
    golden("github_output.txt", github.outputs(report, None))


def test_hostile_text_cannot_inject_commands(tmp_path):
    log = run_emit(make_hostile_report(), tmp_path, secrets=("hunter2",))
    commands = runner(log)
    names = [c[0] for c in commands]
    assert names[0] == "add-mask"
    assert set(names) <= {"add-mask", "error", "warning", "notice"}
    assert ("add-mask", {}, "hunter2") in commands
    # the hostile message arrives whole, as one annotation on the right file
    hostile = [c for c in commands if c[2].startswith(HOSTILE)]
    assert len(hostile) == 1
    name, props, _ = hostile[0]
    assert name == "error"
    assert props == {
        "file": "db/migrations/versions/a,b:c.py",
        "line": "3",
        "title": "upgrade: migration-failed",
    }
    # nothing a migration printed became a command
    assert not any(c[2] in ("from SQL", "pwned", "x") for c in commands)
    assert not any(c[1].get("file") in ("x", "y") for c in commands)
    # every annotation is one physical line
    for line in log.split("\n"):
        assert "\r" not in line or not line.startswith("::")
    # the details were printed, fenced by stop-commands
    token = re.search(r"^::stop-commands::(\w+)$", log, re.M).group(1)
    start, end = log.index(f"::stop-commands::{token}"), log.index(f"::{token}::")
    assert start < log.index("::error file=y::from SQL") < end
    assert start < log.rindex("[bold]x[/]") < end


def test_token_is_random(report):
    assert github.new_token() != github.new_token()
    assert re.fullmatch(r"[0-9a-f]{32}", github.new_token())


def test_masks_come_before_anything_else(tmp_path):
    log = run_emit(make_report(), tmp_path, secrets=("pw12", "multi\nline\nab", "pw1"))
    lines = log.split("\n")
    assert lines[:3] == ["::add-mask::pw12", "::add-mask::multi", "::add-mask::line"]
    # shorter than output.MIN_MASKED: the runner would mask those letters in every line
    assert "::add-mask::ab" not in lines and "::add-mask::pw1" not in lines


@pytest.mark.parametrize("severity", list(Severity))
def test_ten_per_kind_with_a_count_of_the_rest(severity):
    r = many_findings(25, severity)
    lines = github.annotation_lines(r)
    kind = github.KIND[severity]
    assert len(lines) == 10
    assert all(line.startswith(f"::{kind} ") for line in lines)
    # the most important (file order here) first
    assert "finding number 000" in lines[0]
    assert "finding number 008" in lines[8]
    assert "16 more " + kind + "s not shown" in lines[9]
    assert "job summary" in lines[9]


def test_exactly_ten_needs_no_count():
    lines = github.annotation_lines(many_findings(10))
    assert len(lines) == 10
    assert "more" not in lines[-1]


def test_worst_first_across_kinds():
    r = make_report()
    kinds = [line.split(" ")[0].split("::")[1] for line in github.annotation_lines(r)]
    assert kinds == sorted(kinds, key=["error", "warning", "notice"].index)


def test_long_messages_cut(report):
    long = Finding("lint", "r", Severity.ERROR, "x" * 10_000, file="a.py", line=1)
    line = github.annotation(long)
    data = line.split("::", 2)[2]
    assert len(data) == github.MESSAGE_LIMIT
    assert data.endswith("…")


def test_errored_check_without_findings_is_annotated(report):
    r = replace(report, checks=(CheckResult("drift", Status.ERROR, 1.0, note="env.py: boom"),))
    (line,) = github.annotation_lines(r)
    assert line == "::error title=drift%3A check-error::the drift check could not run: env.py: boom"


def test_summary_shows_mermaid_graph_and_merge_command(report):
    text = github.summary(report, "shop")
    graph = text.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert graph.startswith("graph BT")
    for rev in (HEAD_A, HEAD_B, ORDERS):
        assert rev in graph
    # the common ancestor is where the walk stops: its own parents are not drawn
    assert "2b3c4d5e6f70" not in graph
    assert "class r0,r2 head" in graph
    assert f"```sh\n{MERGE_FIX}\n```" in text


def test_graph_walks_only_a_few_generations():
    parents = {"base": ()}
    prev = "base"
    for branch in ("a", "b"):
        prev = "base"
        for i in range(12):
            parents[f"{branch}{i}"] = (prev,)
            prev = f"{branch}{i}"
    nodes, cut_below = github.graph_nodes(("a11", "b11"), parents)
    assert "a11" in nodes and "a6" in nodes and "a5" not in nodes
    assert cut_below == {"a6", "b6"}


def test_no_graph_for_one_head():
    text = github.summary(make_passing_report())
    assert "mermaid" not in text
    assert "✅ alembic-preflight passed" in text


def test_summary_escapes_user_text():
    text = github.summary(make_hostile_report())
    assert "[bold]" not in text and "\\[bold\\]" in text
    r = make_report()
    evil = Finding(
        "lint",
        "r",
        Severity.ERROR,
        "<script>alert(1)</script> ![x](http://e/x.png)",
        detail="</pre><img src=x>",
    )
    r = replace(r, checks=(*r.checks, CheckResult("evil", Status.FAILED, 0, findings=(evil,))))
    text = github.summary(r)
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "![x]" not in text
    assert "</pre><img" not in text and "&lt;/pre&gt;&lt;img src=x&gt;" in text


def test_summary_truncated_under_one_mib():
    big = "y" * 50_000
    findings = tuple(
        Finding("lint", "r", Severity.ERROR, f"m{i}", detail=big, file=f"f{i}.py", line=1)
        for i in range(60)
    )
    r = replace(make_report(), checks=(CheckResult("lint", Status.FAILED, 1, findings=findings),))
    text = github.summary(r, report_json=None)
    assert len(text.encode()) <= 1024 * 1024
    assert len(text.encode()) > 900 * 1024  # it used the room it had
    shown = text.count("<b>error</b>")
    assert 0 < shown < 60
    assert f"{60 - shown} more findings are listed" in text
    assert "Summary truncated" in text


def test_outputs(tmp_path, report):
    path = tmp_path / "out"
    path.write_text("earlier=1\n")
    github.append(path, github.outputs(report, tmp_path / "r.json"))
    text = path.read_text()
    assert text.startswith("earlier=1\n")
    assert "passed=false\n" in text
    assert "failed-checks=graph,lint,roundtrip,stepwise\n" in text
    assert f"heads={HEAD_A},{HEAD_B}\n" in text
    assert f"report={tmp_path / 'r.json'}\n" in text


def test_output_with_newline_uses_heredoc():
    line = github.output_line("report", "a\nb")
    m = re.fullmatch(r"report<<(ghadelimiter_\w+)\na\nb\n\1\n", line)
    assert m


def test_emit_github_writes_summary_and_outputs(tmp_path, report):
    log = run_emit(report, tmp_path, report_json=tmp_path / "r.json", project_name="shop")
    assert "mermaid" in (tmp_path / "summary.md").read_text()
    assert "passed=false" in (tmp_path / "output.txt").read_text()
    assert (tmp_path / "r.json").exists()
    assert "stepwise" in log


def test_console_format_prints_no_commands(tmp_path, report):
    out = io.StringIO()
    emit(report, ReportOptions(format="console", console=out))
    assert runner(out.getvalue()) == []
    assert "stop-commands" not in out.getvalue()


# -- a report that leads with what matters ---------------------------------------------------

BLOB = "https://github.com/acme/shop/blob/0123abcd"


def rendered(markdown: str) -> str:
    """The job summary as GitHub shows it: CommonMark with tables, raw HTML allowed."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown)


def test_annotations_one_per_defect_failures_first():
    lines = github.annotation_lines(make_defects_report())
    errors = [ln for ln in lines if ln.startswith("::error ")]
    # the downgrades that break a rollback lead, not the thirty naming errors on old files
    assert "title=stepwise%3A downgrade-leaves-behind" in errors[0]
    assert "Also seen by: roundtrip/reupgrade-failed (line 25), roundtrip/base-not-empty" in (
        errors[0].replace("%0A", "\n")
    )
    assert "title=stepwise%3A downgrade-failed" in errors[1]
    assert "Also seen by: lint/unnamed-drop-constraint" in errors[1].replace("%0A", "\n")
    assert "file-name-template" in errors[2]
    assert not any("base-not-empty::" in ln or "unnamed-drop-constraint::" in ln for ln in lines)


def test_summary_five_defects_not_nine_errors():
    # the issue: one missing enum drop shown in three sections, 9 errors for 5 defects
    text = github.summary(make_defects_report(conventions=0))
    assert text.count("<b>error</b>") == 2
    assert "#### " not in text  # no section per rule
    assert "### ❌ Failures that break a deploy or a rollback (2)" in text
    assert "Also seen by:\n- <code>roundtrip/reupgrade-failed</code> (line 25): upgrade of" in text


def test_summary_first_problem_before_the_checks_table():
    text = github.summary(make_defects_report(), blob_url=BLOB)
    first = text.index("First to fix")
    assert first < text.index("| Check |")
    assert text.index("downgrade of 0035beef0035 leaves type") < text.index("| Check |")
    assert "file name 0000beef0000" not in text[: text.index("| Check |")]


def test_summary_links_to_the_file_and_line_at_the_commit():
    html = rendered(github.summary(make_defects_report(), blob_url=BLOB))
    path = "db/migrations/versions/0035beef0035_step_35.py"
    assert f'<a href="{BLOB}/{path}#L34"><code>{path}:34</code></a>' in html
    # a path outside the repository is no link; without the commit, the path as text
    odd = Finding("lint", "r", Severity.ERROR, "m", file="/etc/x.py", line=3)
    assert github.location(odd, BLOB) == "<code>/etc/x.py:3</code>"
    plain = rendered(github.summary(make_defects_report()))
    assert "<a href" not in plain and f"<code>{path}:34</code>" in plain


def test_blob_url_from_the_actions_environment(monkeypatch):
    from alembic_preflight.cli import report_options
    from alembic_preflight.settings import Settings

    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/shop")
    monkeypatch.setenv("GITHUB_SHA", "0123abcd")
    options = report_options(Settings(), "github", Path("r.json"))
    assert options.blob_url == BLOB
    assert report_options(Settings(), "console").blob_url is None
    monkeypatch.delenv("GITHUB_SHA")
    assert report_options(Settings(), "github", Path("r.json")).blob_url is None


def test_summary_shows_no_escaped_backticks():
    html = rendered(github.summary(make_defects_report(), blob_url=BLOB))
    assert "\\`" not in html and "\\_" not in html
    assert "leaves type <code>order_status</code> (enum)" in html
    assert "<summary>20 more lint errors (20 lint/file-name-template)</summary>" in html


def test_summary_sections_show_ten_and_fold_the_rest():
    text = github.summary(make_defects_report())
    lint = text.split("### ❌ Lint errors (30)", 1)[1].split("\n### ", 1)[0]
    visible, folded = lint.split("<details><summary>20 more lint errors", 1)
    assert visible.count("<b>error</b>") == 10
    assert folded.count("<b>error</b>") == 20
    assert text.index("### ❌ Lint errors") < text.index("### ⚠️ Warnings")
    assert text.index("### ⚠️ Warnings") < text.index("### ℹ️ Notices")


def test_baseline_findings_are_not_annotated_and_the_summary_says_what_it_did(report):
    # issue 17: findings accepted on old revisions are no annotation on a pull request
    accepted = tuple(
        replace(
            c,
            findings=tuple(replace(f, severity=Severity.NOTICE, baseline=True) for f in c.findings),
        )
        for c in report.checks
    )
    known = replace(
        report,
        checks=accepted,
        baseline=".alembic-preflight-baseline.json",
        fixed=("lint/vague-message (abc123): the revision message is 'wip'",),
    )
    assert not any("::notice" in ln and "title=" in ln for ln in github.annotation_lines(known))
    text = github.summary(known)
    n = len(known.findings)
    assert f"{n} known findings accepted by the baseline (.alembic-preflight-baseline.json)" in text
    assert "Fixed: no longer found, remove from the baseline" in text
    assert "lint/vague-message (abc123)" in text


def test_summary_tables_what_a_deploy_would_block(report: Report) -> None:
    from alembic_preflight.findings import LockedStatement

    def locked(rev: str, projected: float | None, rows: int | None) -> LockedStatement:
        return LockedStatement(
            revision=rev,
            file="migrations/versions/l04_amount.py",
            line=16,
            sql="ALTER TABLE orders ALTER COLUMN amount TYPE BIGINT",
            table="orders|x",
            mode="AccessExclusiveLock",
            blocks="reads and writes",
            rewrite=True,
            scan=False,
            index="",
            seconds=0.002,
            sample_rows=20_001,
            sample_seconds=0.1,
            per_million_s=5.0,
            production_rows=rows,
            projected_s=projected,
        )

    locks = CheckResult(
        "locks",
        Status.PASSED,
        1.0,
        statements=(locked("l04", None, None), locked("l05", 250.0, 50_000_000)),
    )
    text = github.summary(replace(report, checks=(*report.checks, locks)))
    table = text[text.index("### What a deploy would block") :].splitlines()
    assert table[2].startswith("| Revision | Where | Table | Lock | Blocks |")
    # the longest projected block first; a pipe in a name cannot break the table
    assert table[4].startswith(
        "| l05 | <code>migrations/versions/l04\\_amount.py:16</code> | orders\\|x |"
    )
    assert (
        "| ACCESS EXCLUSIVE | reads and writes | rewrite | 4 min at 50,000,000 rows | 5.0 s |"
        in (table[4])
    )
    assert table[5].startswith("| l04 |") and table[5].endswith("| rewrite |  | 5.0 s |")
