"""The container action's entrypoint: inputs as the runner passes them → the CLI's argv."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from alembic_preflight.action import ActionError, cli_args, get_input
from tests.conftest import git


def test_inputs_with_dashes_become_flags(tmp_path: Path) -> None:
    (tmp_path / "backend").mkdir()
    env = {
        "INPUT_WORKING-DIRECTORY": "backend",
        "INPUT_CONFIG": "deploy/alembic.ini",
        "INPUT_POSTGRES-IMAGE": "postgis/postgis:16-3.4-alpine",
        "INPUT_URL-ENV": "APP_DATABASE_URL, OTHER_URL",
        "INPUT_FAIL-ON": "warning",
        "INPUT_CHECKS": "",
        "INPUT_BASELINE": "ci/accepted.json",
        "INPUT_TABLE-STATS": "ci/table-stats.csv",
    }
    project, args = cli_args(env, tmp_path)
    assert project == Path("backend")
    assert args[:2] == ["verify", "backend"]
    pairs = list(zip(args[2::2], args[3::2], strict=False))
    assert ("--config", "backend/deploy/alembic.ini") in pairs
    assert ("--baseline", "backend/ci/accepted.json") in pairs
    assert ("--table-stats", "backend/ci/table-stats.csv") in pairs
    assert ("--postgres-image", "postgis/postgis:16-3.4-alpine") in pairs
    assert ("--url-env", "APP_DATABASE_URL") in pairs and ("--url-env", "OTHER_URL") in pairs
    assert ("--fail-on", "warning") in pairs
    assert "--checks" not in args  # empty inputs are not passed
    assert ("--format", "github") in pairs


def test_composite_style_underscores_are_read_too() -> None:
    assert get_input({"INPUT_WORKING_DIRECTORY": "x"}, "working-directory") == "x"


def test_working_directory_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ActionError, match="no such directory"):
        cli_args({"INPUT_WORKING-DIRECTORY": "nope"}, tmp_path)


def test_pull_request_defaults_base_ref_when_the_checkout_has_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    origin = tmp_path / "origin"
    origin.mkdir()
    git(origin, "init", "-q", "-b", "main")
    (origin / "f").write_text("x")
    git(origin, "add", ".")
    git(origin, "commit", "-qm", "base")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    env = {"GITHUB_BASE_REF": "main"}
    _, args = cli_args(env, clone)
    assert args[args.index("--base-ref") + 1] == "origin/main"
    # a shallow checkout of the head only: no base branch, a notice saying how to fetch it
    _, args = cli_args({"GITHUB_BASE_REF": "release"}, clone)
    assert "--base-ref" not in args
    out = capsys.readouterr().out
    assert out.startswith("::notice title=alembic-preflight::") and "fetch-depth: 0" in out
    # an explicit input wins
    _, args = cli_args({"GITHUB_BASE_REF": "main", "INPUT_BASE-REF": "origin/dev"}, clone)
    assert args[args.index("--base-ref") + 1] == "origin/dev"


def test_report_inputs_name_files_in_the_workspace(tmp_path: Path) -> None:
    """`sarif`, `junit` and `gitlab-codequality` are relative to the workspace (where later
    steps such as upload-sarif run), not to working-directory."""
    (tmp_path / "backend").mkdir()
    env = {
        "INPUT_WORKING-DIRECTORY": "backend",
        "INPUT_SARIF": "reports/preflight.sarif",
        "INPUT_JUNIT": str(tmp_path / "reports" / "junit.xml"),  # absolute, in the workspace
        "INPUT_GITLAB-CODEQUALITY": "./reports//codequality.json",
        "INPUT_FAIL-ON": "never",
    }
    _, args = cli_args(env, tmp_path)
    pairs = list(zip(args[2::2], args[3::2], strict=False))
    assert ("--sarif", "reports/preflight.sarif") in pairs
    assert ("--junit", "reports/junit.xml") in pairs
    assert ("--gitlab-codequality", "reports/codequality.json") in pairs
    assert ("--fail-on", "never") in pairs


@pytest.mark.parametrize("path", ["../preflight.sarif", "reports/../../x.sarif", "/tmp/x.sarif"])
def test_a_report_outside_the_workspace_is_refused(tmp_path: Path, path: str) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    with pytest.raises(ActionError, match=r"sarif .*workspace"):
        cli_args({"INPUT_SARIF": path}, workspace)


def test_written_reports_become_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each report input the run wrote is an output of the same name holding its path; one
    not written this time (a stale file of an earlier run) is not."""
    from alembic_preflight import action, cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(action, "trust_workspace", lambda env, workspace: None)
    (tmp_path / "junit.xml").write_text("<old/>")
    seen: list[list[str]] = []

    def fake_main(args: list[str]) -> int:
        seen.append(args)
        (tmp_path / "reports").mkdir()
        (tmp_path / "reports" / "preflight.sarif").write_text("{}")
        return 0

    monkeypatch.setattr(cli, "main", fake_main)
    output = tmp_path / "github_output"
    env = {
        "GITHUB_WORKSPACE": str(tmp_path),
        "GITHUB_OUTPUT": str(output),
        "INPUT_SARIF": "reports/preflight.sarif",
        "INPUT_JUNIT": "junit.xml",
    }
    assert action.run_action(env) == 0
    assert seen and "--sarif" in seen[0] and "--junit" in seen[0]
    outputs = output.read_text().splitlines()
    assert "sarif=reports/preflight.sarif" in outputs
    assert not any(line.startswith(("junit=", "gitlab-codequality=")) for line in outputs)


def test_the_image_entrypoint_started_in_root_says_to_mount_the_project() -> None:
    """The image has no WORKDIR: `docker run IMAGE` without -w starts in /. The entrypoint
    says there is no project there and how to mount one (exit 2), and runs a project named
    explicitly from / as anywhere."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "INPUT_"))}
    env.update(NO_COLOR="1", PYTHONWARNINGS="ignore")

    def entrypoint(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "alembic_preflight.action", *args],
            cwd="/",
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    lost = entrypoint("verify")
    assert lost.returncode == 2, lost.stderr
    assert "Traceback" not in lost.stderr
    assert "no alembic.ini here" in lost.stderr
    assert "the current directory is /, which holds no project" in lost.stderr
    assert '-v "$PWD:/work" -w /work' in lost.stderr
    named = entrypoint("verify", str(ROOT / "examples" / "project"), "--checks", "graph")
    assert named.returncode == 0, named.stderr
    assert "current directory is /" not in named.stderr


def test_the_image_entrypoint_exits_with_the_runs_code_and_its_reports_written(
    project: Any, tmp_path: Path
) -> None:
    """The entrypoint leaves at once after the run (action.run: os._exit, no interpreter
    teardown): the exit code is the run's, and what it wrote is whole."""
    import json
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "INPUT_"))}
    report = tmp_path / "report.json"
    json_to = ["--report-json", str(report)]
    proc = subprocess.run(
        [sys.executable, "-m", "alembic_preflight.action", "verify", "--checks", "graph", *json_to],
        cwd=project("missing_parent"),
        env={**env, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert "graph" in proc.stdout + proc.stderr
    data = json.loads(report.read_text())
    assert [c["id"] for c in data["checks"]] == ["graph"]
    assert data["checks"][0]["status"] == "failed"
