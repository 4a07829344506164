"""The project's CI metadata against the published schemas: action.yml and
composite/action.yml (GitHub's action metadata), every workflow in .github/workflows/ and
examples/workflows/ (GitHub's workflow syntax), the GitLab CI example (GitLab's), with
check-jsonschema's built-in copies of them (SchemaStore's, vendored in the package: no
network). And what the release does to action.yml (scripts/action-image.sh), and the
pre-commit hook's manifest."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

WORKFLOWS = sorted(
    p
    for folder in (ROOT / ".github" / "workflows", ROOT / "examples" / "workflows")
    for p in (*folder.glob("*.yml"), *folder.glob("*.yaml"))
    if "gitlab" not in p.name
)
GITLAB = sorted(ROOT.glob("examples/**/*gitlab-ci*.yml"))
ACTIONS = [ROOT / "action.yml", ROOT / "composite" / "action.yml"]


def check_jsonschema(schema: str, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *map(str, files)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_every_file_is_covered() -> None:
    """Not a vacuous pass: the files the README and the release rely on are found."""
    names = {p.relative_to(ROOT).as_posix() for p in (*WORKFLOWS, *GITLAB)}
    assert {
        ".github/workflows/ci.yml",
        ".github/workflows/release.yml",
        "examples/workflows/github-container.yml",
        "examples/workflows/github-composite.yml",
        "examples/workflows/github-matrix.yml",
        "examples/workflows/gitlab-ci.yml",
    } <= names


@pytest.mark.parametrize(
    ("schema", "files"),
    [
        ("vendor.github-actions", ACTIONS),
        ("vendor.github-workflows", WORKFLOWS),
        ("vendor.gitlab-ci", GITLAB),
    ],
    ids=["github-actions", "github-workflows", "gitlab-ci"],
)
def test_valid_against_the_published_schema(schema: str, files: list[Path]) -> None:
    done = check_jsonschema(schema, *files)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schemas_catch_a_mistake(tmp_path: Path) -> None:
    """The validation bites: a workflow job without `runs-on`, an action without `runs`."""
    workflow = tmp_path / "broken.yml"
    workflow.write_text("on: push\njobs:\n  test:\n    steps:\n      - run: make test\n")
    assert check_jsonschema("vendor.github-workflows", workflow).returncode == 1
    action = tmp_path / "action.yml"
    action.write_text("name: x\ndescription: y\n")
    assert check_jsonschema("vendor.github-actions", action).returncode == 1


def test_the_release_points_the_action_at_the_image(tmp_path: Path) -> None:
    """main builds the image from the Dockerfile; the release commit's action.yml runs the
    pushed image, and is as valid."""
    assert yaml.safe_load((ROOT / "action.yml").read_text())["runs"]["image"] == "Dockerfile"
    released = tmp_path / "action.yml"
    shutil.copy(ROOT / "action.yml", released)
    image = "ghcr.io/your-org/alembic-preflight:1.2.3"
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "action-image.sh"), image, str(released)],
        check=True,
        timeout=60,
    )
    before = yaml.safe_load((ROOT / "action.yml").read_text())
    after = yaml.safe_load(released.read_text())
    assert after["runs"] == {**before["runs"], "image": f"docker://{image}"}
    assert {k: v for k, v in after.items() if k != "runs"} == {
        k: v for k, v in before.items() if k != "runs"
    }
    done = check_jsonschema("vendor.github-actions", released)
    assert done.returncode == 0, done.stdout + done.stderr
    # a second run finds no `image: Dockerfile` line: it fails rather than release that
    again = subprocess.run(
        ["bash", str(ROOT / "scripts" / "action-image.sh"), image, str(released)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 1 and "expected exactly one line" in again.stderr


def test_the_pre_commit_manifest() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pre_commit", "validate-manifest", ".pre-commit-hooks.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "alembic-preflight-lint"
    assert hook["entry"] == "alembic-preflight lint"
