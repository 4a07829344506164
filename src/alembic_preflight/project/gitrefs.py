"""Revisions as another git ref has them, for pull-request mode: which revisions this
branch adds or changes, and the revision files of the branch it will merge into.

Files at a ref are read with `git ls-tree` and `git cat-file`, and parsed by the same
code as the working tree (history.parse_revision_file): nothing is checked out.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from alembic_preflight.errors import ConfigError
from alembic_preflight.project import Project
from alembic_preflight.project.history import (
    RevisionFile,
    is_revision_file_name,
    parse_revision_file,
)

_TIMEOUT = 60


def _git(repo: Path, *args: str, input: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *args],
            input=input,
            capture_output=True,
            timeout=_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as e:
        raise ConfigError(f"git {' '.join(args)} could not run: {e}") from e
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip().splitlines()
        raise ConfigError(f"git {' '.join(args)} failed: {err[-1] if err else done.returncode}")
    return done.stdout


def _toplevel(repo_root: Path) -> Path:
    try:
        out = _git(repo_root, "rev-parse", "--show-toplevel")
    except ConfigError as e:  # what changed since a ref is git's to say
        raise ConfigError(f"{repo_root} is not in a git repository ({e})") from None
    return Path(out.decode().strip()).resolve()


def _check_ref(top: Path, ref: str) -> str:
    try:
        return _git(top, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").decode().strip()
    except ConfigError:
        # CI checkouts are shallow and single-branch by default
        raise ConfigError(
            f"git ref {ref!r} is not in this clone: fetch it first (`git fetch origin {ref}`; "
            "on GitHub Actions, actions/checkout with fetch-depth: 0)"
        ) from None


def changed_revisions(repo_root: Path, project: Project, ref: str) -> set[str]:
    """Ids of the revisions whose files were added or changed since the branch left `ref`
    (committed, staged, unstaged or untracked); deleted files have no revision to name."""
    top = _toplevel(repo_root)
    _check_ref(top, ref)
    base = _git(top, "merge-base", ref, "HEAD").decode().strip()
    # `git diff <merge-base>` = `git diff ref...` plus what is not committed yet
    changed = _git(top, "diff", "--name-only", "-z", "--diff-filter=d", base).split(b"\0")
    untracked = _git(top, "ls-files", "--others", "--exclude-standard", "-z").split(b"\0")
    paths = {(top / p.decode()).resolve() for p in (*changed, *untracked) if p}
    return {
        f.revision
        for f in project.history.files
        if f.revision is not None and f.path.resolve() in paths
    }


def history_at(repo_root: Path, project: Project, ref: str) -> list[RevisionFile]:
    """The revision files in the project's version locations as they are at `ref`,
    chosen by Alembic's file rules; each keeps its working-tree path for reports."""
    top = _toplevel(repo_root)
    commit = _check_ref(top, ref)
    wanted: list[str] = []
    for location in project.version_locations:
        try:
            rel = location.resolve().relative_to(top).as_posix()
        except ValueError:
            continue  # a version location outside the repository has no history here
        listing = _git(top, "ls-tree", "-r", "-z", "--name-only", commit, "--", f"{rel}/")
        for name in sorted(p.decode() for p in listing.split(b"\0") if p):
            sub = Path(name).relative_to(rel)
            if "__pycache__" in sub.parts or not is_revision_file_name(sub.name):
                continue
            if len(sub.parts) > 1 and not project.recursive:
                continue
            wanted.append(name)
    return [
        parse_revision_file(top / name, data)
        for name, data in zip(wanted, _blobs(top, commit, wanted), strict=True)
    ]


def _blobs(top: Path, commit: str, names: list[str]) -> list[bytes]:
    """Many files' contents in one `git cat-file --batch` call."""
    if not names:
        return []
    out = _git(top, "cat-file", "--batch", input="".join(f"{commit}:{n}\n" for n in names).encode())
    blobs: list[bytes] = []
    pos = 0
    for name in names:
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        if len(header) != 3:
            raise ConfigError(f"git cat-file could not read {name} at {commit}")
        size = int(header[2])
        blobs.append(out[end + 1 : end + 1 + size])
        pos = end + 1 + size + 1  # the content is followed by a newline
    return blobs


def export_tree(repo_root: Path, ref: str, dest: Path) -> Path:
    """The files of `ref` written under `dest` (`git archive`, streamed: no worktree to
    remove, the repository untouched); returns `dest`, which stands for the top."""
    import tarfile

    top = _toplevel(repo_root)
    commit = _check_ref(top, ref)
    argv = ["git", "-C", str(top), "archive", "--format=tar", commit]
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as e:
        raise ConfigError(f"git archive could not run: {e}") from e
    assert proc.stdout is not None and proc.stderr is not None
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            if hasattr(tarfile, "data_filter"):  # Python 3.12, and security releases before
                tar.extractall(dest, filter="data")
            else:  # pragma: no cover
                tar.extractall(dest)
    except tarfile.TarError as e:
        proc.kill()
        err = proc.stderr.read().decode(errors="replace").strip()
        raise ConfigError(f"git archive {ref} failed: {err or e}") from None
    finally:
        proc.stdout.close()
        code = proc.wait(timeout=_TIMEOUT)
        err = proc.stderr.read().decode(errors="replace").strip()
        proc.stderr.close()
    if code != 0:
        raise ConfigError(f"git archive {ref} failed: {err.splitlines()[-1] if err else code}")
    return dest


def in_tree(repo_root: Path, path: Path, tree: Path) -> Path:
    """Where `path` (in the working tree) is in an exported tree of the same repository."""
    top = _toplevel(repo_root)
    return tree / path.resolve().relative_to(top)
