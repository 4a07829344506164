from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace

from reporter_samples import HEAD_B, make_hostile_report, make_passing_report

from alembic_preflight.findings import CheckResult, Finding, Severity, Status
from alembic_preflight.reporters import junit


def parse(report):
    return ET.fromstring(junit.render(report).encode("utf-8"))


def test_golden(report, golden):
    golden("junit.xml", junit.render(report))


def test_counts(report):
    root = parse(report)
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    cases = suite.findall("testcase")
    # six checks + six stepwise revisions
    assert len(cases) == 12
    assert suite.get("tests") == "12"
    assert suite.get("failures") == str(len(suite.findall("testcase/failure"))) == "4"
    assert suite.get("errors") == "0"
    assert suite.get("skipped") == "1"
    assert root.get("tests") == "12" and root.get("failures") == "4"
    assert float(suite.get("time")) == 13.27


def test_revision_failure_on_its_own_case(report):
    suite = parse(report).find("testsuite")
    by_name = {c.get("name"): c for c in suite.findall("testcase")}
    failure = by_name[f"stepwise[{HEAD_B}]"].find("failure")
    assert failure is not None
    assert 'column "status" does not exist' in failure.get("message")
    assert "Traceback" in failure.text
    # the check's own case does not count the same failure again
    assert by_name["stepwise"].find("failure") is None
    assert by_name["drift"].find("skipped").get("message") == "env.py sets no target_metadata"
    # warnings below --fail-on are visible but do not fail
    assert "unnamed-constraint" in by_name["lint"].find("system-out").text


def test_errors_and_failed_revision_without_finding(report):
    checks = (
        CheckResult("upgrade", Status.ERROR, 1.0, note="env.py: ImportError"),
        CheckResult(
            "stepwise", Status.FAILED, 1.0, cases=(("a", Status.PASSED), ("b", Status.FAILED))
        ),
        CheckResult("lint", Status.FAILED, 1.0),
    )
    suite = parse(replace(report, checks=checks)).find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("5", "2", "1")
    by_name = {c.get("name"): c for c in suite.findall("testcase")}
    assert by_name["upgrade"].find("error").get("message") == "env.py: ImportError"
    assert by_name["stepwise[b]"].find("failure") is not None
    assert by_name["stepwise"].find("failure") is None
    assert by_name["lint"].find("failure") is not None


def test_passing_report_has_no_failures():
    suite = parse(make_passing_report()).find("testsuite")
    assert suite.get("failures") == "0"
    assert not suite.findall("testcase/failure")


def test_control_characters_and_markup_survive(report):
    evil = Finding(
        "lint",
        "r",
        Severity.ERROR,
        "bad \x1b[31mred\x1b[0m <tag> & \x00",
        detail="]]> </failure>",
    )
    r = replace(report, checks=(CheckResult("lint", Status.FAILED, 0, findings=(evil,)),))
    failure = parse(r).find("testsuite/testcase/failure")
    assert "<tag> &" in failure.get("message")
    assert "]]> </failure>" in failure.text
    parse(make_hostile_report())  # parses


def test_warnings_fail_when_fail_on_is_warning(report):
    r = replace(report, fail_on=Severity.WARNING)
    by_name = {c.get("name"): c for c in parse(r).find("testsuite").findall("testcase")}
    assert "unnamed-constraint" in by_name["lint"].find("failure").text
