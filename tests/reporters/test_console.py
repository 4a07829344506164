from __future__ import annotations

import io
from dataclasses import replace

from reporter_samples import (
    HOSTILE,
    make_defects_report,
    make_hostile_report,
    make_large_report,
    make_passing_report,
    many_findings,
)
from rich.console import Console

from alembic_preflight.findings import CheckResult, Finding, Severity, Status
from alembic_preflight.reporters import console as console_reporter


def render(report, width: int = 100, verbose: bool = False, **kw) -> str:
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None, legacy_windows=False, **kw)
    if verbose:
        console_reporter.write(report, console, project_name="shop", verbose=True)
    else:
        console_reporter.write(report, console, project_name="shop")
    return out.getvalue()


def test_golden_failing(report, golden):
    golden("console_failing.txt", render(report))


def test_golden_passing(golden):
    golden("console_passing.txt", render(make_passing_report()))


def test_headline_names_the_outcome_and_database(report):
    first = render(report).splitlines()[0]
    assert "FAILED" in first
    assert "PostgreSQL 16.4" in first
    assert "shop (db/alembic.ini)" in first
    assert "PASSED" in render(make_passing_report()).splitlines()[0]


def test_sections_worst_first_with_counts(report):
    text = render(report)
    failures = text.index("Failures that break a deploy or a rollback (3)")
    lint_errors = text.index("Lint errors (1)")
    warnings = text.index("Warnings (2)")
    notices = text.index("Notices (2)")
    assert failures < lint_errors < warnings < notices
    assert "Findings: 4 errors, 2 warnings, 2 notices" in text
    # the counts lead with what breaks too
    counts = text.split("Findings: ", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    assert [c.split()[-1] for c in counts[:2]] == [
        "graph/multiple-heads",
        "stepwise/downgrade-failed",
    ]


def test_detail_cut_to_six_lines_keeping_the_deepest_frames_and_the_error(report):
    text = render(report)
    detail = text.split("fix: drop the index before the column in downgrade()\n", 1)[1]
    detail = detail.split("\n  db/", 1)[0].splitlines()
    # the error line goes: the message says it already
    assert detail == [
        "      … 14 lines cut (--verbose shows them)",
        '        File "env.py", line 14, in run_migrations',
        '        File "env.py", line 15, in run_migrations',
        '        File "env.py", line 16, in run_migrations',
        '        File "env.py", line 17, in run_migrations',
        '        File "env.py", line 18, in run_migrations',
    ]


def test_a_diff_keeps_its_head():
    lines = console_reporter.detail_lines("\n".join(f"+ line {i}" for i in range(10)))
    assert lines == [*(f"+ line {i}" for i in range(5)), "… 5 more lines (--verbose shows them)"]


def test_same_detail_printed_once_per_section():
    text = render(make_large_report())
    assert text.count("UndefinedColumn") == 1
    assert text.count("(same detail as above)") == 2


def test_irreversible_folded_over_three():
    r = many_findings(12, Severity.NOTICE, rule="irreversible")
    text = render(r)
    assert "12 revisions are irreversible by design: r000, r001" in text
    assert "finding number" not in text
    # three or fewer are listed one by one
    assert "finding number 002" in render(many_findings(3, Severity.NOTICE, rule="irreversible"))


def test_scales_to_forty_findings():
    r = many_findings(40)
    text = render(r)
    assert "finding number 009" in text
    assert "finding number 010" not in text
    assert "… 30 more lint errors (30 lint/unnamed-constraint): --verbose lists them" in text
    # two lines per finding, not a wall
    assert len(text.splitlines()) < 50


def test_entry_format(report):
    lines = render(report).splitlines()
    i = lines.index("  db/migrations/versions/4d5e6f708192_add_status.py:21:5")
    assert lines[i + 1 : i + 3] == [
        "      lint/not-null-without-server-default: orders.status is added NOT NULL without a "
        "server_default",
        "      fix: add server_default=sa.text(\"'new'\") or backfill before NOT NULL",
    ]
    # a finding without a file points at alembic.ini
    i = lines.index("  db/alembic.ini")
    assert lines[i + 1] == "      graph/multiple-heads: 2 heads: c3f1a2b4d5e6, d9e8f7a6b5c4"
    # the revision is named when the file name does not say it
    (lint,) = [f for f in report.findings if f.rule == "not-null-without-server-default"]
    moved = replace(lint, file="db/migrations/versions/add_status.py")
    text = render(replace(report, checks=(CheckResult("lint", Status.FAILED, 0.1, (moved,)),)))
    assert "  db/migrations/versions/add_status.py:21:5  4d5e6f708192\n" in text


def test_user_text_is_not_rich_markup():
    text = render(make_hostile_report())
    assert "[bold]x[/]" in text
    assert HOSTILE.splitlines()[0] in text


def test_no_colour_when_not_a_tty(report):
    out = io.StringIO()
    console_reporter.write(report, Console(file=out, width=100))
    assert "\x1b[" not in out.getvalue()


def test_colour_on_a_terminal_unless_no_color(report, monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = io.StringIO()
    console_reporter.write(report, Console(file=out, force_terminal=True, color_system="standard"))
    assert "\x1b[" in out.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    out = io.StringIO()
    console_reporter.write(report, Console(file=out, force_terminal=True, color_system="standard"))
    assert "\x1b[3" not in out.getvalue()  # no colour (bold may stay)


def test_a_regraded_finding_goes_to_its_severity_section(report):
    mixed = replace(
        report,
        checks=(
            CheckResult(
                "lint",
                Status.FAILED,
                0.1,
                findings=(
                    Finding("lint", "r", Severity.ERROR, "bad one", file="a.py", line=1),
                    Finding("lint", "r", Severity.WARNING, "mild one", file="b.py", line=1),
                ),
            ),
        ),
    )
    text = render(mixed)
    assert "Lint errors (1)\n  a.py:1\n      lint/r: bad one" in text
    assert "Warnings (1)\n  b.py:1\n      lint/r: mild one" in text


def test_golden_large_history(golden):
    text = render(make_large_report())
    golden("console_large.txt", text)
    # 40 findings on a 300-revision history fit on about two screens
    assert len(text.splitlines()) < 120
    assert "12 revisions are irreversible by design" in text
    # the failures come before the twenty warnings
    assert text.index("stepwise/downgrade-failed:") < text.index("lint/unnamed-constraint:")


def test_a_notice_without_a_file_prints_no_location(report):
    # issue 16: a notice about the run printed alembic.ini as its location
    notice = Finding(
        check="stepwise",
        rule="seed-skipped",
        severity=Severity.NOTICE,
        message="table `x` was left without synthetic rows: no value",
        revision="abc123",
    )
    error = replace(
        notice, rule="internal-error", severity=Severity.ERROR, revision=None, message="boom"
    )
    extra = CheckResult("stepwise", Status.FAILED, 1.0, findings=(notice, error))
    text = render(replace(report, checks=(*report.checks, extra)))
    lines = text.splitlines()
    (i,) = [i for i, ln in enumerate(lines) if "left without synthetic rows" in ln]
    assert lines[i - 1 : i + 1] == [
        "  abc123",
        "      stepwise/seed-skipped: table `x` was left without synthetic rows: no value",
    ]
    i = lines.index("      stepwise/internal-error: boom")
    assert lines[i - 1] == "  db/alembic.ini"


# -- a report that leads with what matters ---------------------------------------------------


def test_deploy_and_rollback_failures_come_before_lint_errors():
    text = render(make_defects_report())
    failures = text.index("Failures that break a deploy or a rollback")
    lint_errors = text.index("Lint errors")
    warnings = text.index("\nWarnings")
    notices = text.index("\nNotices")
    assert failures < lint_errors < warnings < notices
    # the naming errors on old revisions no longer open the report
    assert text.index("downgrade of 0033beef0033 fails") < text.index("file name 0000beef0000")


def test_one_defect_one_entry_with_what_else_saw_it():
    text = render(make_defects_report())
    assert text.count("leaves type `order_status` (enum)") == 1
    assert "also seen by: roundtrip/reupgrade-failed (line 25), roundtrip/base-not-empty" in text
    assert "also seen by: lint/unnamed-drop-constraint" in text
    assert "drop_constraint(None, ...) can never run" not in text  # said by the failure


def test_at_most_ten_entries_per_section_and_the_rest_counted():
    text = render(make_defects_report())
    shown = [n for n in range(30) if f"file name {n:04d}beef{n:04d}_step_{n}.py" in text]
    assert len(shown) == 10
    assert "… 20 more lint errors (20 lint/file-name-template): --verbose lists them" in text


def test_verbose_prints_everything():
    text = render(make_defects_report(), width=300, verbose=True)
    shown = [n for n in range(30) if f"file name {n:04d}beef{n:04d}_step_{n}.py" in text]
    assert len(shown) == 30
    assert "more lint errors" not in text
    # each observation in full, and every traceback line
    assert 'DuplicateObject: type "order_status" already exists' in text
    assert "drop_constraint(None, ...) can never run" in text
    assert "line 72, in run_migrations_online" in text


def test_a_traceback_keeps_the_revisions_frames_without_restating_the_error():
    text = render(make_defects_report(), width=300)
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if "downgrade of 0033beef0033 fails" in ln)
    block = []
    for ln in lines[start + 1 :]:
        if not ln.startswith("      "):
            break
        block.append(ln.strip())
    detail = block[next(i for i, ln in enumerate(block) if ln.startswith('File "')) :]
    # from the finding's own file, named relative to the repository root; env.py's frames
    # and the error line (the message says it) go
    assert detail == [
        'File "db/migrations/versions/0033beef0033_step_33.py", line 22, in downgrade',
        'op.drop_constraint(None, "orders", type_="check")',
    ]
    assert "step_0()" not in text and "sqlalchemy.exc.CompileError" not in text
    # --verbose keeps all of it
    full = render(make_defects_report(), width=300, verbose=True)
    assert "sqlalchemy.exc.CompileError" in full and "step_0()" in full


def test_lines_are_wrapped_to_the_terminal():
    text = render(make_defects_report(), width=80)
    findings = text[text.index("Findings: ") :]
    assert max(len(ln) for ln in findings.splitlines()) <= 80
    # a wrapped message keeps its indent
    lines = text.splitlines()
    i = next(i for i, ln in enumerate(lines) if "downgrade of 0033beef0033 fails" in ln)
    assert lines[i].startswith("      ") and lines[i + 1].startswith("      ")


def test_a_long_history_fits_in_a_ci_log():
    text = render(make_defects_report(conventions=300), width=80)
    # rows as an 80-column terminal shows them: a 300-character line is four
    rows = sum(max(1, -(-len(line) // 80)) for line in text.splitlines())
    assert rows < 110
