from __future__ import annotations

import json

import pytest
from reporter_samples import make_hostile_report, make_passing_report

from alembic_preflight.errors import ConfigError
from alembic_preflight.reporters import json as json_reporter

FINDING_KEYS = {"check", "rule", "severity", "message", "revision", "file", "line", "detail"}


def test_golden(report, golden):
    golden("report.json", json_reporter.render(report))


def test_contract_keys(report):
    data = json.loads(json_reporter.render(report))
    assert data["schema"] == 1
    assert data["tool"] == {"name": "alembic-preflight", "version": "0.1.0"}
    assert data["passed"] is False
    assert {"config", "script_location", "revisions", "heads", "bases"} <= set(data["project"])
    assert data["project"]["heads"] == ["c3f1a2b4d5e6", "d9e8f7a6b5c4"]
    assert data["database"] == {"backend": "postgresql", "server_version": "16.4"}
    for check in data["checks"]:
        assert {"id", "status", "duration_s", "findings"} <= set(check)
    assert data["checks"][0]["id"] == "graph"
    assert len(data["findings"]) == 8
    for f in data["findings"]:
        assert set(f) >= FINDING_KEYS


def test_database_null_and_passed(report):
    from dataclasses import replace

    data = json.loads(json_reporter.render(replace(make_passing_report(), database=None)))
    assert data["database"] is None
    assert data["passed"] is True


def test_round_trip(tmp_path, report):
    for r in (report, make_hostile_report(), make_passing_report()):
        path = tmp_path / "r.json"
        path.write_text(json_reporter.render(r), encoding="utf-8")
        back = json_reporter.read_report(path)
        assert back == r


@pytest.mark.parametrize(
    "text, why",
    [
        ("{", "not a JSON report"),
        ("[]", "not an alembic-preflight"),
        ('{"tool": {"name": "alembic-preflight"}, "schema": 9}', "schema 9"),
        ('{"tool": {"name": "alembic-preflight"}, "schema": 1}', "malformed"),
    ],
)
def test_read_report_errors(tmp_path, text, why):
    path = tmp_path / "r.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=why):
        json_reporter.read_report(path)


def test_read_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        json_reporter.read_report(tmp_path / "nope.json")
