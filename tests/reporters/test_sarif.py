from __future__ import annotations

import json
from dataclasses import replace

import jsonschema
import pytest
from reporter_samples import make_hostile_report, make_passing_report, make_report, many_findings

from alembic_preflight.findings import CheckResult, Status
from alembic_preflight.reporters import sarif
from tests.conftest import sarif_schema

SCHEMA = sarif_schema()


@pytest.fixture(scope="module")
def validator():
    if not SCHEMA.exists():  # the schema is shared by the team, not vendored
        pytest.skip(f"{SCHEMA} not present")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def test_golden(report, golden):
    golden("report.sarif", sarif.render(report))


@pytest.mark.parametrize(
    "make", [make_report, make_passing_report, make_hostile_report, lambda: many_findings(40)]
)
def test_validates_against_the_schema(validator, make):
    validator.validate(json.loads(sarif.render(make())))


def test_schema_catches_a_broken_document(validator):
    doc = json.loads(sarif.render(make_report()))
    doc["runs"][0]["results"][0]["level"] = "fatal"
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(doc)


def test_driver_and_rules(report):
    run = sarif.to_dict(report)["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "alembic-preflight"
    assert driver["version"] == "0.1.0"
    assert driver["informationUri"].startswith("https://")
    ids = [r["id"] for r in driver["rules"]]
    assert ids == sorted(set(ids))
    assert "stepwise/downgrade-failed" in ids
    by_id = {r["id"]: r for r in driver["rules"]}
    assert by_id["graph/multiple-heads"]["shortDescription"]["text"].startswith("The revision")
    for res in run["results"]:
        assert driver["rules"][res["ruleIndex"]]["id"] == res["ruleId"]


def test_results(report):
    results = sarif.to_dict(report)["runs"][0]["results"]
    assert len(results) == len(report.findings)
    first = next(r for r in results if r["ruleId"] == "lint/not-null-without-server-default")
    loc = first["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {
        "uri": "db/migrations/versions/4d5e6f708192_add_status.py",
        "uriBaseId": "%SRCROOT%",
    }
    assert loc["region"] == {"startLine": 21, "startColumn": 5}
    assert first["level"] == "error"
    heads = next(r for r in results if r["ruleId"] == "graph/multiple-heads")
    loc = heads["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"] == "db/alembic.ini"
    assert loc["region"] == {"startLine": 1}
    levels = {r["level"] for r in results}
    assert levels == {"error", "warning", "note"}


def test_fingerprints_unique_and_stable(report):
    def fps(r):
        return [
            res["partialFingerprints"]["alembicPreflight/v1"]
            for res in sarif.to_dict(r)["runs"][0]["results"]
        ]

    assert len(set(fps(report))) == len(fps(report))
    assert fps(report) == fps(make_report())


def test_errored_check_is_a_tool_notification(report):
    r = replace(report, checks=(*report.checks, CheckResult("x", Status.ERROR, 0, note="boom")))
    inv = sarif.to_dict(r)["runs"][0]["invocations"][0]
    assert inv["executionSuccessful"] is False
    assert "boom" in inv["toolExecutionNotifications"][0]["message"]["text"]
