"""The pre-commit hook `alembic-preflight-lint` (.pre-commit-hooks.yaml), run by pre-commit
itself: `pre-commit try-repo` installs the hook's environment from this repository the way a
user's `.pre-commit-config.yaml` would (pip, from PyPI), then runs it on a project's git
repository. Each test installs that environment (try-repo keeps a store of its own for one
run): about 40 s each; PRE_COMMIT_HOME is a temporary folder, never ~/.cache/pre-commit."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, ROOT, source_snapshot

pytestmark = pytest.mark.slow

EXAMPLE = ROOT / "examples" / "project"
HOOK = "alembic-preflight-lint"
VERSIONS = Path("migrations", "versions")
UNNAMED_DROP = '''"""drop the status check

Revision ID: 4d5e6f708192
Revises: 3c4d5e6f7081
Create Date: 2026-10-21 10:00:00

"""
from alembic import op

revision = "4d5e6f708192"
down_revision = "3c4d5e6f7081"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint(None, "orders", type_="check")


def downgrade() -> None:
    pass
'''


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True, timeout=120)


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CI_", "GIT_"))}
    # the hook's environment goes to a temporary store, never ~/.cache/pre-commit
    env.update(PRE_COMMIT_HOME=str(home), NO_COLOR="1", PRE_COMMIT_COLOR="never")
    for who in ("AUTHOR", "COMMITTER"):
        env[f"GIT_{who}_NAME"] = "test"
        env[f"GIT_{who}_EMAIL"] = "test@example.invalid"
    return env


def _git_repo(source: Path, dest: Path, env: dict[str, str]) -> Path:
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(["git", "init", "-q", str(dest)], check=True, env=env, timeout=120)
    _git(dest, "add", "-A")
    return dest


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """This repository as a user's config would clone it: its files (committed, changed or
    new) in one commit, so the hook is the working tree's."""
    base = tmp_path_factory.mktemp("pre-commit")
    env = _env(base / "home")
    repo = source_snapshot(base / "alembic-preflight")
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=env, timeout=120)
    _git(repo, "add", "-A")
    subprocess.run(
        ["git", "-C", str(repo), "commit", "-q", "--no-gpg-sign", "-m", "snapshot"],
        check=True,
        env=env,
        timeout=120,
    )
    yield repo, env


def try_repo(
    hook_repo: tuple[Path, dict[str, str]], project: Path, *which: str
) -> subprocess.CompletedProcess[str]:
    repo, env = hook_repo
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(repo), HOOK, *which],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        # the first run installs the hook's environment with pip: generous on a busy machine
        timeout=1200,
    )


def test_the_hook_passes_on_the_example(
    hook_repo: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    project = _git_repo(EXAMPLE, tmp_path / "example", hook_repo[1])
    done = try_repo(hook_repo, project, "--all-files")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "alembic-preflight lint" in done.stdout and "Passed" in done.stdout


def test_the_hook_fails_on_an_unnamed_drop_constraint(
    hook_repo: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    project = tmp_path / "example"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__"))
    (project / VERSIONS / "4d5e6f708192_drop_status_check.py").write_text(UNNAMED_DROP)
    _git_repo(project, tmp_path / "repo", hook_repo[1])
    done = try_repo(hook_repo, tmp_path / "repo", "--all-files")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "lint/unnamed-drop-constraint" in done.stdout
    assert "4d5e6f708192_drop_status_check.py:17" in done.stdout


def test_the_readme_config_with_fail_on_warning(
    hook_repo: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """The `.pre-commit-config.yaml` entry the README shows, with `--fail-on warning`, run
    by `pre-commit run` on the files of a commit: unnamed constraints are warnings, so
    they fail only with it. The other revisions of this project have errors: they are not
    this commit's."""
    repo, env = hook_repo
    project = _git_repo(FIXTURES / "lint_rules", tmp_path / "lint_rules", env)
    rev = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    config = readme_config().replace("https://github.com/your-org/alembic-preflight", str(repo))
    config = config.replace("rev: v0.1.0", f"rev: {rev}")
    config = config.replace("# args: [--fail-on, warning]", "args: [--fail-on, warning]")
    (project / ".pre-commit-config.yaml").write_text(config)

    def run(*files: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pre_commit", "run", "--files", *map(str, files)],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=1200,
        )

    unnamed = run(VERSIONS / "aa0000000003_create_orders_with_unnamed_constraints.py")
    assert unnamed.returncode == 1, unnamed.stdout + unnamed.stderr
    assert "lint/unnamed-constraint" in unnamed.stdout
    assert "empty-downgrade" not in unnamed.stdout
    clean = run(VERSIONS / "aa0000000001_create_users_and_accounts.py")
    assert clean.returncode == 0, clean.stdout + clean.stderr


def readme_config() -> str:
    """The README's `.pre-commit-config.yaml` block."""
    text = (ROOT / "README.md").read_text()
    start = text.index("```yaml\n# .pre-commit-config.yaml") + len("```yaml\n")
    return text[start : text.index("```", start)]
