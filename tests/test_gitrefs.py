"""Pull-request mode: revisions at another git ref, in a real repository built per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from alembic_preflight.checks import graph
from alembic_preflight.checks.base import CheckContext
from alembic_preflight.errors import ConfigError
from alembic_preflight.findings import Finding, Severity
from alembic_preflight.project import Project, load_project
from alembic_preflight.project.gitrefs import changed_revisions, history_at
from alembic_preflight.settings import build_settings
from tests.conftest import git

FIXTURES = Path(__file__).parent / "fixtures"
SOURCE = FIXTURES / "several_heads" / "migrations" / "versions"
BASE = "1a2b3c4d5e6f_create_users.py"
OURS = "2b3c4d5e6f70_add_email_to_users.py"  # on the feature branch
THEIRS = "3c4d5e6f7081_create_orders.py"  # on main, same parent


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """main: base + THEIRS; feature (checked out): base + OURS, both on the same parent."""
    for var in ("GITHUB_WORKSPACE", "CI_PROJECT_DIR"):
        monkeypatch.delenv(var, raising=False)
    shutil.copytree(FIXTURES / "several_heads", tmp_path, dirs_exist_ok=True)
    versions = tmp_path / "migrations" / "versions"
    for p in versions.glob("*.py"):
        if p.name != BASE:
            p.unlink()
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "base")
    git(tmp_path, "checkout", "-q", "-b", "feature")
    shutil.copy(SOURCE / OURS, versions / OURS)
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "ours")
    git(tmp_path, "checkout", "-q", "main")
    shutil.copy(SOURCE / THEIRS, versions / THEIRS)
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "theirs")
    git(tmp_path, "checkout", "-q", "feature")
    return tmp_path


def project(repo: Path, **flags: object) -> tuple[Project, list[Finding]]:
    settings = build_settings(repo, flags)
    p = load_project(settings)
    return p, list(graph.run(CheckContext(settings, p)))


def test_history_at_reads_the_other_branch(repo: Path) -> None:
    p, _ = project(repo)
    files = history_at(repo, p, "main")
    assert sorted(f.revision or "" for f in files) == ["1a2b3c4d5e6f", "3c4d5e6f7081"]
    theirs = next(f for f in files if f.revision == "3c4d5e6f7081")
    assert theirs.path == (repo / "migrations" / "versions" / THEIRS).resolve()
    assert theirs.down_revisions == ("1a2b3c4d5e6f",)
    assert not (repo / "migrations" / "versions" / THEIRS).exists()  # nothing checked out


def test_changed_revisions_include_uncommitted_and_untracked(repo: Path) -> None:
    p, _ = project(repo)
    assert changed_revisions(repo, p, "main") == {"2b3c4d5e6f70"}
    versions = repo / "migrations" / "versions"
    with (versions / BASE).open("a") as f:
        f.write("# touched\n")
    (versions / "4d4d4d4d4d4d_untracked.py").write_text(
        "revision = '4d4d4d4d4d4d'\ndown_revision = '2b3c4d5e6f70'\n"
    )
    p, _ = project(repo)
    assert changed_revisions(repo, p, "main") == {"1a2b3c4d5e6f", "2b3c4d5e6f70", "4d4d4d4d4d4d"}


def test_merge_conflict_heads(repo: Path) -> None:
    _, alone = project(repo)
    assert alone == []  # the branch on its own has one head
    _, found = project(repo, base_ref="main")
    (f,) = found
    assert (f.rule, f.severity, f.revision, f.line) == (
        "merge-conflict-heads",
        Severity.ERROR,
        "2b3c4d5e6f70",
        16,
    )
    assert f.file is not None and f.file.endswith(f"migrations/versions/{OURS}")
    assert "on main 3c4d5e6f7081" in f.message
    assert "on this branch 2b3c4d5e6f70" in f.message
    assert f.fix is not None
    assert f.fix.startswith(f'set down_revision = "3c4d5e6f7081" in migrations/versions/{OURS}')
    assert 'alembic merge heads -m "merge 2b3c4d5e6f70 and 3c4d5e6f7081"' in f.fix


def test_no_conflict_once_rebased(repo: Path) -> None:
    git(repo, "rebase", "-q", "main")
    ours = repo / "migrations" / "versions" / OURS
    ours.write_text(ours.read_text().replace("= '1a2b3c4d5e6f'", "= '3c4d5e6f7081'"))
    _, found = project(repo, base_ref="main")
    assert found == []


def test_unknown_ref(repo: Path) -> None:
    p, found = project(repo, base_ref="origin/nope")
    assert [(f.rule, f.severity) for f in found] == [("base-ref", Severity.ERROR)]
    assert "fetch" in found[0].message
    with pytest.raises(ConfigError, match="'origin/nope' is not in this clone"):
        changed_revisions(repo, p, "origin/nope")


def test_a_project_outside_git_says_so(tmp_path: Path) -> None:
    """What changed since a ref is git's to say: a project in no repository is told as
    that, not as the git command that failed."""
    shutil.copytree(FIXTURES / "several_heads", tmp_path, dirs_exist_ok=True)
    p = load_project(build_settings(tmp_path, {}))
    with pytest.raises(ConfigError, match=r"is not in a git repository \(git rev-parse"):
        changed_revisions(tmp_path, p, "main")
