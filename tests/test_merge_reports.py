"""`merge-reports --fail-on`: the merged report judged as `verify` judges a run, with the
same exit codes; by default by the strictest --fail-on the reports were made with. Through
the real CLI, on reports the real CLI wrote."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli


@pytest.fixture
def warned(project: Any, tmp_path: Path) -> dict[str, Path]:
    """Reports of a project whose only findings are warnings (irreversible by design), made
    with --fail-on error (passed) and --fail-on warning (failed)."""
    proj: Path = project("irreversible_by_design")
    made = {}
    for fail_on, code in (("error", 0), ("warning", 1), ("never", 0)):
        r = run_cli("verify", ".", "--checks", "graph,lint", "--fail-on", fail_on, cwd=proj)
        assert r.code == code, r.stdout + r.stderr
        assert {f["severity"] for f in r.findings()} == {"warning"}
        made[fail_on] = tmp_path / f"{fail_on}.json"
        made[fail_on].write_text(json.dumps(r.report))
    return made


def merge(*args: str | Path, cwd: Path) -> tuple[int, str, dict[str, Any]]:
    out = cwd / "merged.json"
    r = run_cli("merge-reports", *args, "--report-json", out, cwd=cwd, report=False)
    assert "Traceback" not in r.stderr, r.stderr
    return r.code, r.stderr, json.loads(out.read_text()) if out.exists() else {}


def test_default_is_the_strictest_fail_on_of_the_reports(
    warned: dict[str, Path], tmp_path: Path
) -> None:
    code, _, merged = merge(warned["error"], cwd=tmp_path)
    assert code == 0 and merged["passed"] and merged["fail_on"] == "error"
    # one job ran with warning: its failure is not undone by the other's error
    code, _, merged = merge(warned["error"], warned["warning"], cwd=tmp_path)
    assert code == 1 and not merged["passed"] and merged["fail_on"] == "warning"
    assert [c["status"] for c in merged["checks"] if c["id"] == "lint"] == ["failed"]
    # report-only jobs merge report-only
    code, _, merged = merge(warned["never"], cwd=tmp_path)
    assert code == 0 and merged["fail_on"] == "never"


def test_fail_on_rejudges_the_merged_report(warned: dict[str, Path], tmp_path: Path) -> None:
    # stricter than the job: the warnings now fail lint
    code, _, merged = merge(warned["error"], "--fail-on", "warning", cwd=tmp_path)
    assert code == 1 and merged["fail_on"] == "warning" and "lint" in merged["failed_checks"]
    # laxer than the job: the check that failed on warnings passes on errors
    code, _, merged = merge(warned["warning"], "--fail-on", "error", cwd=tmp_path)
    assert code == 0 and merged["passed"] and merged["failed_checks"] == []
    assert [c["status"] for c in merged["checks"] if c["id"] == "lint"] == ["passed"]
    # report only on warnings: judged as with error, so nothing failed
    code, _, merged = merge(warned["warning"], "--fail-on", "never", cwd=tmp_path)
    assert code == 0 and merged["passed"] and merged["fail_on"] == "never"


def test_fail_on_never_reports_a_failure_and_exits_0(project: Any, tmp_path: Path) -> None:
    proj: Path = project("unnamed_drop_constraint")
    r = run_cli("verify", ".", "--checks", "graph,lint", cwd=proj)
    assert r.code == 1 and r.findings("unnamed-drop-constraint"), r.stdout + r.stderr
    shard = tmp_path / "shard.json"
    shard.write_text(json.dumps(r.report))
    code, stderr, merged = merge(shard, "--fail-on", "never", cwd=tmp_path)
    assert code == 0 and "fail-on never: exit 0 although lint failed" in stderr
    assert not merged["passed"] and merged["failed_checks"] == ["lint"]
    assert merge(shard, cwd=tmp_path)[0] == 1


def test_fail_on_never_does_not_pass_a_report_of_nothing_verified(
    project: Any, tmp_path: Path
) -> None:
    """As verify: --fail-on never turns 1 into 0 only when every check verified something;
    env.py failing is a finding no setting accepts."""
    proj: Path = project("env_import_error")
    r = run_cli("verify", ".", "--checks", "graph,upgrade", "--database", "embedded", cwd=proj)
    assert r.code == 1 and r.findings("env-failed"), r.stdout + r.stderr
    shard = tmp_path / "shard.json"
    shard.write_text(json.dumps(r.report))
    code, stderr, _ = merge(shard, "--fail-on", "never", cwd=tmp_path)
    assert code == 1 and "fail-on never does not apply: upgrade verified nothing" in stderr
    code, _, _ = merge(shard, cwd=tmp_path)
    assert code == 1


def test_a_shard_that_could_not_verify_leaves_the_merge_unverified(
    warned: dict[str, Path], tmp_path: Path
) -> None:
    data = json.loads(warned["error"].read_text())
    data["not_verified"] = "not verified: no PostgreSQL"
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(data))
    code, _, merged = merge(warned["error"], broken, "--fail-on", "never", cwd=tmp_path)
    assert code == 3 and merged["not_verified"] == "not verified: no PostgreSQL"


def test_a_bad_fail_on_is_a_usage_error(warned: dict[str, Path], tmp_path: Path) -> None:
    code, stderr, merged = merge(warned["error"], "--fail-on", "notice", cwd=tmp_path)
    assert code == 2 and "--fail-on must be error, warning or never (got 'notice')" in stderr
    assert merged == {}
