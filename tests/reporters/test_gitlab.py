from __future__ import annotations

import json
from dataclasses import replace

from reporter_samples import make_report

from alembic_preflight.findings import CheckResult, Finding, Severity, Status
from alembic_preflight.reporters import gitlab

SEVERITIES = {"info", "minor", "major", "critical", "blocker"}


def test_golden(report, golden):
    golden("gl-code-quality.json", gitlab.render(report))


def test_shape(report):
    issues = json.loads(gitlab.render(report))
    assert len(issues) == len(report.findings)
    for issue in issues:
        assert {"description", "check_name", "fingerprint", "severity", "location"} <= set(issue)
        assert issue["severity"] in SEVERITIES
        assert isinstance(issue["location"]["path"], str) and issue["location"]["path"]
        assert isinstance(issue["location"]["lines"]["begin"], int)
    heads = next(i for i in issues if i["check_name"] == "graph/multiple-heads")
    assert heads["location"] == {"path": "db/alembic.ini", "lines": {"begin": 1}}
    assert heads["severity"] == "major"


def _dupes(lines):
    return tuple(
        Finding("lint", "unnamed-constraint", Severity.WARNING, "no name", "r1", "a.py", line)
        for line in lines
    )


def _report(findings):
    return replace(make_report(), checks=(CheckResult("lint", Status.FAILED, 0, findings),))


def test_fingerprints_unique_even_for_identical_findings():
    issues = gitlab.issues(_report(_dupes([3, 9, 12])))
    fps = [i["fingerprint"] for i in issues]
    assert len(set(fps)) == 3


def test_fingerprints_stable_across_runs_and_line_moves(report):
    assert gitlab.issues(report) == gitlab.issues(make_report())
    # code added above the finding moves it; the fingerprint follows the finding
    before = gitlab.issues(_report(_dupes([3])))[0]["fingerprint"]
    after = gitlab.issues(_report(_dupes([40])))[0]["fingerprint"]
    assert before == after


def test_fingerprint_changes_with_what_the_finding_is_about():
    base = _dupes([3])[0]
    fps = {
        gitlab.issues(_report((f,)))[0]["fingerprint"]
        for f in (
            base,
            replace(base, message="other"),
            replace(base, revision="r2"),
            replace(base, file="b.py"),
            replace(base, rule="x"),
        )
    }
    assert len(fps) == 5
