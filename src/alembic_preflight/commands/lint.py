"""`lint`: the checks that need no database (graph, lint), for a pre-commit hook or an
editor. Given revision files, it finds each one's Alembic project (the nearest directory
above it holding alembic.ini, or the one --config names), reads that project's whole
history for the graph, and lints the given files only, as a linter of Python files does.
Given a directory (or nothing: the current one), it checks that project's every revision.

No PostgreSQL is started and no user code runs: revision files are read with `ast`, and
alembic.ini by Alembic's own loader (which imports neither env.py nor the models)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from alembic_preflight import output
from alembic_preflight.commands.verify import exit_code, run_verify
from alembic_preflight.errors import EXIT_OK, ConfigError
from alembic_preflight.project import load_project
from alembic_preflight.project.history import is_revision_file_name
from alembic_preflight.reporters import ReportOptions, emit
from alembic_preflight.settings import DATABASE_CHECKS, build_settings

INI = "alembic.ini"


def lint(paths: Sequence[Path], flags: Mapping[str, Any], verbose: bool = False) -> int:
    """Each project the paths belong to, checked on its own; the worst exit code."""
    config: Path | None = flags.get("config")
    targets, strays = group_by_project(paths or [Path(".")], config)
    if strays:
        output.info(
            f"skipped {len(strays)} file(s) with no {INI} in their folder or above it "
            f"(name it with --config): {', '.join(map(str, strays[:5]))}"
        )
    worst = EXIT_OK
    for project_dir, files in targets.items():
        worst = max(worst, _lint_project(project_dir, files, flags, verbose))
    return worst


def _lint_project(
    project_dir: Path, files: frozenset[Path] | None, flags: Mapping[str, Any], verbose: bool
) -> int:
    settings = build_settings(project_dir, flags)
    settings = replace(
        settings,
        # what the project's settings choose of the two; a hook never starts a database
        checks=tuple(c for c in settings.checks if c not in DATABASE_CHECKS),
        # the files given are the scope, not a git ref (read from the settings file)
        changed_since=None,
        base_ref=None,
        shard=None,
    )
    project = load_project(settings)
    if files is not None:
        # a file of another kind under the version folder, or not Alembic's at all
        files = files & {f.path.resolve() for f in project.history.files}
        if not files:
            return EXIT_OK
    report, _ = run_verify(replace(settings, files=files), None, project)
    emit(
        report,
        ReportOptions(format="console", project_name=project.directory.name, verbose=verbose),
    )
    return exit_code(report, settings.fail_on)


def group_by_project(
    paths: Sequence[Path], config: Path | None
) -> tuple[dict[Path, frozenset[Path] | None], list[Path]]:
    """Project directory -> the revision files given in it (None: a directory was given,
    every file counts), and the files that belong to no project."""
    files: dict[Path, set[Path]] = {}
    whole: set[Path] = set()
    strays: list[Path] = []
    for path in paths:
        if path.is_dir():
            whole.add(path.resolve())
            continue
        if not path.exists():
            raise ConfigError(f"{path}: no such file or directory")
        if not is_revision_file_name(path.name):  # Alembic would not load it either
            continue
        home = config.resolve().parent if config is not None else project_of(path)
        if home is None:
            strays.append(path)
        else:
            files.setdefault(home, set()).add(path.resolve())
    targets: dict[Path, frozenset[Path] | None] = {d: frozenset(f) for d, f in files.items()}
    targets.update(dict.fromkeys(whole))
    return dict(sorted(targets.items())), strays


def project_of(file: Path) -> Path | None:
    """The nearest folder holding alembic.ini, from the file's folder up to the top of
    its repository."""
    for folder in file.resolve().parents:
        if (folder / INI).is_file():
            return folder
        if (folder / ".git").exists():
            return None
    return None
