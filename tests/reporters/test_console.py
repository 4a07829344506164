from __future__ import annotations

import io
from dataclasses import replace

from reporter_samples import (
    HOSTILE,
    make_hostile_report,
    make_large_report,
    make_passing_report,
    many_findings,
)
from rich.console import Console

from alembic_preflight.findings import CheckResult, Finding, Severity, Status
from alembic_preflight.reporters import console as console_reporter


def render(report, width: int = 100, **kw) -> str:
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None, legacy_windows=False, **kw)
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


def test_groups_worst_first_with_counts(report):
    text = render(report)
    error_group = text.index("error lint/not-null-without-server-default (1)")
    warning_group = text.index("warning lint/unnamed-constraint (2)")
    notice_group = text.index("notice lint/vague-message (1)")
    assert error_group < warning_group < notice_group
    assert "Findings: 4 errors, 2 warnings, 2 notices" in text


def test_detail_cut_to_fifteen_lines_keeping_the_error(report):
    text = render(report)
    detail = text.split("Traceback (most recent call last):", 1)[1].split("\n\n", 1)[0]
    assert len(detail.strip().splitlines()) == 14  # +1 for the Traceback line: 15
    assert "line 4, in run_migrations" in detail
    assert "line 5, in run_migrations" not in detail
    assert "… 6 lines cut (the JSON report has them all) …" in detail
    assert "line 18, in run_migrations" in detail
    assert 'UndefinedColumn: column "status" does not exist' in detail


def test_same_detail_printed_once_per_group():
    text = render(make_large_report())
    assert text.count("Traceback (most recent call last):") == 1
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
    assert "finding number 024" in text
    assert "finding number 025" not in text
    assert "… 15 more (all are in the JSON report)" in text
    # one line per finding, not a wall
    assert len(text.splitlines()) < 50


def test_finding_line_format(report):
    text = render(report)
    assert (
        "  db/migrations/versions/4d5e6f708192_add_status.py:21:5  4d5e6f708192  "
        "orders.status is added NOT NULL" in text
    )
    assert "      fix: add server_default" in text
    # a finding without a file points at alembic.ini
    assert "  db/alembic.ini  2 heads:" in text


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


def test_severity_shown_when_it_differs_from_the_group(report):
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
    assert "a.py:1  bad one" in text
    assert "b.py:1  warning: mild one" in text


def test_golden_large_history(golden):
    text = render(make_large_report())
    golden("console_large.txt", text)
    # 40 findings on a 300-revision history fit on about two screens
    assert len(text.splitlines()) < 120
    assert "12 revisions are irreversible by design" in text
    # the worst groups come before the twenty warnings
    assert text.index("stepwise/downgrade-failed (3)") < text.index("unnamed-constraint (14)")


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
    (notice_line,) = [ln for ln in text.splitlines() if "left without synthetic rows" in ln]
    assert notice_line.strip().startswith("abc123  table `x`")
    assert "alembic.ini" not in notice_line
    assert "  db/alembic.ini  boom" in text.splitlines()
