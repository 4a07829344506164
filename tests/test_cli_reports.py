"""Reports through the real CLI: GitHub mode, report files, hostile text from migrations."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema

from tests.conftest import run_cli, sarif_schema

SARIF_SCHEMA = sarif_schema()


def github_env(tmp_path: Path, workspace: Path) -> dict[str, str]:
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        "GITHUB_OUTPUT": str(tmp_path / "output.txt"),
        "RUNNER_TEMP": str(tmp_path / "runner-temp"),
    }


def test_several_heads_in_github_mode(project: Any, tmp_path: Path) -> None:
    proj: Path = project("several_heads")
    workspace = proj.parent
    env = github_env(tmp_path, workspace)
    r = run_cli(
        "verify",
        proj.name,
        "--checks",
        "graph,upgrade",
        "--database",
        "embedded",
        cwd=workspace,
        env=env,
        report=False,
    )
    assert r.code == 1, r.stderr
    annotations = [line for line in r.stdout.splitlines() if line.startswith("::error ")]
    assert len(annotations) == 1
    # paths relative to the workspace root, also with the project in a subfolder
    assert annotations[0].startswith(
        "::error file=several_heads/migrations/versions/2b3c4d5e6f70_add_email_to_users.py,"
        "line=15,title=graph%3A multiple-heads::"
    )
    assert 'alembic merge heads -m "merge 2b3c4d5e6f70 and 3c4d5e6f7081"' in annotations[0]
    summary = (tmp_path / "summary.md").read_text()
    assert "```mermaid" in summary and "r1 --> r0" in summary
    assert 'alembic merge heads -m "merge 2b3c4d5e6f70 and 3c4d5e6f7081"' in summary
    outputs = dict(
        line.split("=", 1) for line in (tmp_path / "output.txt").read_text().splitlines()
    )
    assert outputs["passed"] == "false"
    assert outputs["failed-checks"] == "graph"
    assert outputs["heads"] == "2b3c4d5e6f70,3c4d5e6f7081"
    report = json.loads(Path(outputs["report"]).read_text())
    assert report["passed"] is False
    assert report["project"]["heads"] == ["2b3c4d5e6f70", "3c4d5e6f7081"]


HOSTILE = '''"""::error file=x::injected %0A
second line"""
from alembic import op

revision = "4d5e6f708192"
down_revision = "3c4d5e6f7081"
branch_labels = None
depends_on = None


def upgrade() -> None:
    raise RuntimeError("::error file=x::boom %0A\\nline2\\r\\n::warning::more")


def downgrade() -> None:
    pass
'''


def test_hostile_text_is_escaped_and_fenced(project: Any, tmp_path: Path) -> None:
    proj: Path = project("sync_good")
    (proj / "migrations" / "versions" / "4d5e6f708192_hostile.py").write_text(HOSTILE)
    r = run_cli(
        "verify",
        ".",
        "--checks",
        "upgrade",
        "--database",
        "embedded",
        cwd=proj,
        env=github_env(tmp_path, proj),
        report=False,
    )
    assert r.code == 1
    lines = r.stdout.splitlines()
    # the only workflow commands outside the fence are ours, escaped
    fence = next(i for i, line in enumerate(lines) if line.startswith("::stop-commands::"))
    token = lines[fence].split("::")[2]
    assert f"::{token}::" in lines[fence:]
    before = lines[:fence]
    (annotation,) = [line for line in before if line.startswith("::error ")]
    assert "file=migrations/versions/4d5e6f708192_hostile.py,line=12," in annotation
    message = annotation.split("::", 2)[2]
    assert message.endswith("RuntimeError: ::error file=x::boom %250A")
    # the rest of the error is echoed only inside the stop-commands fence
    fenced = "\n".join(lines[fence:])
    assert "line2" in fenced and "::warning::more" in fenced
    assert "line2" not in "\n".join(before)
    assert not any(line.startswith(("::warning", "::error file=x")) for line in lines)


def test_report_files_from_the_cli(project: Any, tmp_path: Path) -> None:
    proj: Path = project("enum_left_behind")
    out = tmp_path / "reports"
    r = run_cli(
        "verify",
        ".",
        "--checks",
        "graph,upgrade,roundtrip",
        "--database",
        "embedded",
        "--junit",
        out / "junit.xml",
        "--sarif",
        out / "preflight.sarif",
        "--gitlab-codequality",
        out / "codequality.json",
        cwd=proj,
    )
    assert r.code == 1
    suites = ET.parse(out / "junit.xml").getroot()
    cases = suites.findall(".//testcase")
    assert {c.get("name") for c in cases} >= {"graph", "upgrade", "roundtrip"}
    assert suites.findall(".//failure")
    sarif = json.loads((out / "preflight.sarif").read_text())
    jsonschema.validate(sarif, json.loads(SARIF_SCHEMA.read_text()))
    rules = {res["ruleId"] for res in sarif["runs"][0]["results"]}
    assert "roundtrip/reupgrade-failed" in rules
    quality = json.loads((out / "codequality.json").read_text())
    assert len({q["fingerprint"] for q in quality}) == len(quality) == len(r.findings())
    assert all(q["severity"] in {"info", "minor", "major", "critical", "blocker"} for q in quality)


def test_shards_cover_every_revision_and_merge_into_one_report(
    project: Any, tmp_path: Path
) -> None:
    proj: Path = project("enum_left_behind")
    reports = []
    for k in (1, 2):
        r = run_cli(
            "verify",
            ".",
            "--checks",
            "graph,stepwise",
            "--database",
            "embedded",
            "--shard",
            f"{k}/2",
            cwd=proj,
        )
        assert r.report is not None, r.stderr
        path = tmp_path / f"shard{k}.json"
        path.write_text(json.dumps(r.report))
        reports.append(r.report)
    walked = [
        {case["revision"] for case in c["cases"]}
        for rep in reports
        for c in rep["checks"]
        if c["id"] == "stepwise"
    ]
    assert walked[0] | walked[1] == {"1a2b3c4d5e6f", "2b3c4d5e6f70", "3c4d5e6f7081"}
    assert not walked[0] & walked[1]
    merged_path = tmp_path / "merged.json"
    r = run_cli(
        "merge-reports",
        tmp_path / "shard1.json",
        tmp_path / "shard2.json",
        "--report-json",
        merged_path,
        cwd=proj,
        report=False,
    )
    assert r.code == 1, r.stdout + r.stderr
    merged = json.loads(merged_path.read_text())
    leaves = [f for f in merged["findings"] if f["rule"] == "downgrade-leaves-behind"]
    assert [f["revision"] for f in leaves] == ["3c4d5e6f7081"]
    # graph ran in both shards: its (absent) findings are not doubled, its check is listed once
    assert [c["id"] for c in merged["checks"]] == ["graph", "stepwise"]
    r = run_cli("merge-reports", tmp_path / "nope.json", cwd=proj, report=False)
    assert r.code == 2 and "nope.json" in r.stderr


def test_fail_on_never_reports_everything_and_exits_0(project: Any, tmp_path: Path) -> None:
    """Report-only: annotations, summary, outputs and report files as for a failing run;
    `passed` still says whether the checks passed. Only the exit code is 0."""
    proj: Path = project("several_heads")
    workspace = proj.parent
    r = run_cli(
        "verify",
        proj.name,
        "--checks",
        "graph",
        "--fail-on",
        "never",
        "--sarif",
        tmp_path / "preflight.sarif",
        cwd=workspace,
        env=github_env(tmp_path, workspace),
        report=False,
    )
    assert r.code == 0, r.stderr
    assert any(line.startswith("::error file=") for line in r.stdout.splitlines())
    summary = (tmp_path / "summary.md").read_text()
    assert "alembic-preflight failed" in summary
    assert "Report only (fail-on: never): findings do not fail the job." in summary
    outputs = dict(
        line.split("=", 1) for line in (tmp_path / "output.txt").read_text().splitlines()
    )
    assert outputs["passed"] == "false"
    assert outputs["failed-checks"] == "graph"
    written = json.loads(Path(outputs["report"]).read_text())
    assert written["passed"] is False and written["fail_on"] == "never"
    sarif = json.loads((tmp_path / "preflight.sarif").read_text())
    assert {res["level"] for res in sarif["runs"][0]["results"]} == {"error"}
    # the log says why a failed run exits 0
    assert "fail-on never: exit 0 although graph failed" in r.stderr


def test_fail_on_never_from_the_settings_file(project: Any) -> None:
    proj: Path = project("several_heads")
    (proj / ".alembic-preflight.yml").write_text("checks: [graph]\nfail-on: never\n")
    r = run_cli("verify", ".", cwd=proj)
    assert r.code == 0, r.stderr
    assert r.report is not None and r.report["passed"] is False
    # a flag overrides the file
    assert run_cli("verify", ".", "--fail-on", "error", cwd=proj).code == 1


def test_fail_on_never_does_not_hide_that_nothing_was_verified(
    project: Any, tmp_path: Path
) -> None:
    """env.py that cannot be imported verified nothing: exit 1 as without `never`; no
    PostgreSQL at all: exit 3."""
    broken = project("env_import_error")
    r = run_cli(
        "verify", ".", "--database", "embedded", "--checks", "upgrade", "--fail-on", "never",
        cwd=broken,
    )  # fmt: skip
    assert r.code == 1, r.stderr
    assert r.findings("env-failed")
    assert "nothing" in r.stderr  # and says why `never` did not apply
    good = project("sync_good")
    r = run_cli(
        "verify", ".", "--database", "embedded", "--pg-bin", str(tmp_path),
        "--checks", "upgrade", "--fail-on", "never",
        cwd=good,
    )  # fmt: skip
    assert r.code == 3, r.stderr


def test_fail_on_names_its_values(project: Any) -> None:
    proj: Path = project("sync_good")
    r = run_cli("verify", ".", "--checks", "graph", "--fail-on", "sometimes", cwd=proj)
    assert r.code == 2
    assert "error, warning or never" in r.stderr
    (proj / ".alembic-preflight.yml").write_text("fail-on: sometimes\n")
    r = run_cli("verify", ".", "--checks", "graph", cwd=proj)
    assert r.code == 2
    assert "error, warning or never" in r.stderr and ".alembic-preflight.yml" in r.stderr
