"""`verify`: load the project → run the static checks → provision PostgreSQL (started
beside the first two) → run the database checks → write the reports → exit code."""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from alembic_preflight import __version__, collector, output, output_progress
from alembic_preflight.baseline import Baseline, Entry, Matcher
from alembic_preflight.baseline import load as load_baseline
from alembic_preflight.checks import CHECKS, rule_docs, stepwise
from alembic_preflight.checks.base import CheckContext
from alembic_preflight.commands.run_checks import (
    beside,
    errored,
    head_starts,
    run_beside,
    run_check,
    skipped,
    walk_context,
)
from alembic_preflight.database import Starting, choose_backend, remove_containers
from alembic_preflight.database.leftovers import adopt_orphans, end_strays, run_marker
from alembic_preflight.errors import (
    EXIT_FAILED,
    EXIT_INFRA,
    EXIT_OK,
    ConfigError,
    PreflightError,
)
from alembic_preflight.findings import (
    CheckResult,
    DatabaseInfo,
    ProjectInfo,
    Report,
    Status,
)
from alembic_preflight.project import Project, load_project
from alembic_preflight.reporters import ReportOptions, emit
from alembic_preflight.settings import FIXED_RULES, FailOn, Settings
from alembic_preflight.workbench import Workbench
from alembic_preflight.worker.client import Prewarmed


def verify(settings: Settings, options: ReportOptions, prewarmed: Prewarmed | None = None) -> int:
    report, secrets = run_verify(settings, prewarmed)
    emit(report, replace(options, secrets=(*options.secrets, *secrets)))
    return exit_code(report, settings.fail_on)


def exit_code(report: Report, fail_on: FailOn) -> int:
    """0 passed, 1 a check failed, 3 not verified. `--fail-on never` turns 1 into 0 unless
    a check verified nothing (env.py failed, an internal error): a report-only run must not
    pass on zero work, and 3 stays 3."""
    if report.not_verified:
        return EXIT_INFRA
    if report.passed:
        return EXIT_OK
    if fail_on is not FailOn.NEVER:
        return EXIT_FAILED
    unverified = unverified_checks(report)
    if unverified:
        output.info(
            f"fail-on never does not apply: {', '.join(unverified)} verified nothing "
            "(see the findings above); exit 1"
        )
        return EXIT_FAILED
    output.info(
        f"fail-on never: exit 0 although {', '.join(report.failed_checks)} failed (report only)"
    )
    return EXIT_OK


def unverified_checks(report: Report) -> list[str]:
    """Checks that verified nothing: stopped by an error, or by a finding no setting can
    accept (FIXED_RULES: env.py failed or did not migrate, an internal error)."""
    return [
        c.id
        for c in report.checks
        if c.status is Status.ERROR or any(f.rule in FIXED_RULES for f in c.findings)
    ]


def run_verify(
    settings: Settings, prewarmed: Prewarmed | None, project: Project | None = None
) -> tuple[Report, tuple[str, ...]]:
    """Every chosen check, run: the report, and the secrets the run made (passwords).
    `project`: the settings' project, when the caller has read it already."""
    started = time.monotonic()
    with ExitStack() as stack:
        starting = None
        if any(CHECKS[c].NEEDS_DB for c in settings.checks):
            # the run's marker first (what a killed run leaves is found by the next), then
            # the server, starting while the project loads and the static checks run
            stack.enter_context(run_marker(remove_containers))
            starting = stack.enter_context(Starting(settings))
        return _run_verify(settings, prewarmed, project, started, starting)


def _run_verify(
    settings: Settings,
    prewarmed: Prewarmed | None,
    project: Project | None,
    started: float,
    starting: Starting | None,
) -> tuple[Report, tuple[str, ...]]:
    secrets: tuple[str, ...] = ()
    if project is None:
        project = load_project(settings, prewarmed.layout if prewarmed else None)
    collector.keep_all()  # the project's syntax trees live as long as the run
    check_rule_names(settings)
    check_revision_names(settings, project)
    checks = [CHECKS[c] for c in settings.checks]
    results: dict[str, CheckResult] = {}
    focus = None
    since = settings.changed_since or settings.base_ref
    if since:
        from alembic_preflight.project.gitrefs import changed_revisions

        try:
            focus = frozenset(changed_revisions(project.repo_root, project, since))
        except ConfigError as e:  # said after the setting that asked for it
            key = "changed-since" if settings.changed_since else "base-ref"
            raise ConfigError(f"{settings.source_of(key)}: {e}") from None
        output.info(
            f"{len(focus)} revision(s) added or changed since {since}: the team's conventions "
            "are checked on those only; everything else covers the whole history"
        )
    path = settings.baseline_path
    matcher = Matcher(_baseline(settings, path)) if path is not None else None
    # bars on a terminal, a line now and then in a CI log: stopped before the report
    progress = output_progress.on_stderr()
    ctx = CheckContext(
        settings=settings,
        project=project,
        earlier=results,
        focus=focus,
        baseline=matcher,
        progress=progress,
    )
    for check in checks:
        if not check.NEEDS_DB:
            results[check.ID] = run_check(check, ctx, settings.fail_on.threshold)
    database: DatabaseInfo | None = None
    not_verified: str | None = None
    db_checks = [c for c in checks if c.NEEDS_DB]
    if db_checks and not project.history.loadable:
        for check in db_checks:
            results[check.ID] = skipped(
                check.ID, "the revision graph is broken (see graph); Alembic cannot load it"
            )
    elif db_checks:
        ours = adopt_orphans()
        try:
            assert starting is not None
            with starting.running() as server:
                # a generated password is a secret like the user's own (issue 13)
                secrets = tuple(server.secrets)
                output.hide(secrets)
                database = DatabaseInfo(
                    backend=server.backend, server_version=server.server_version
                )
                output.info(
                    f"PostgreSQL {server.server_version.split()[0]} ready ({server.backend}, "
                    f"{time.monotonic() - started:.1f} s)"
                )
                bench = Workbench(settings, project, server, prewarmed=prewarmed or Prewarmed())
                # the bars stop first (also on Ctrl-C), then the lanes close
                ahead = head_starts(db_checks, ctx)
                with bench.open(lanes=settings.lanes, ahead=ahead), progress:
                    db_ctx = replace(ctx, bench=bench)
                    if beside(db_checks, bench.lane_count):
                        run_beside(db_checks, db_ctx, settings.fail_on.threshold, results)
                    else:
                        walk_ctx = walk_context(db_checks, db_ctx, bench.lane_count)
                        lane0 = replace(db_ctx, lanes=(0,))
                        for check in db_checks:
                            of = walk_ctx if check.ID == stepwise.ID else lane0
                            results[check.ID] = run_check(check, of, settings.fail_on.threshold)
        except PreflightError as e:
            if e.exit_code != EXIT_INFRA:
                raise
            output.error(str(e))
            not_verified = f"not verified: {e}"
            for check in db_checks:
                results.setdefault(check.ID, errored(check.ID, "not run"))
            database = database or DatabaseInfo(backend=choose_backend(settings), server_version="")
        finally:
            strays = end_strays(ours)
            if strays:
                output.info(f"ended {len(strays)} process(es) a migration left running")
    ran = tuple(results[c.ID] for c in checks if c.ID in results)
    in_scope = _in_scope(settings, project, focus)
    report = Report(
        tool_version=__version__,
        project=project_info(project),
        database=database,
        checks=ran,
        duration_s=round(time.monotonic() - started, 3),
        fail_on=settings.fail_on.threshold,
        report_only=settings.fail_on is FailOn.NEVER,
        not_verified=not_verified,
        rules=rule_docs(),
        baseline=project.rel(matcher.baseline.path) if matcher else None,
        fixed=matcher.fixed(_looked_at(ran), in_scope) if matcher else (),
    )
    progress.close()
    return report, secrets


def _looked_at(results: tuple[CheckResult, ...]) -> list[str]:
    """Checks whose findings are complete: they ran to the end."""
    return [r.id for r in results if r.status in (Status.PASSED, Status.FAILED)]


def _in_scope(
    settings: Settings, project: Project, focus: frozenset[str] | None
) -> Callable[[Entry], bool]:
    """Whether this run looked at a baseline entry: not a convention outside a pull
    request's scope, nor a file the hook was not given, nor the walk of another shard."""
    linted = None if settings.files is None else {project.rel(p) for p in settings.files}

    def looked(e: Entry) -> bool:
        if focus is not None and e.check == "lint" and e.revision not in focus:
            return False
        if linted is not None and e.check == "lint" and e.file is not None and e.file not in linted:
            return False
        return not (settings.shard is not None and e.check == "stepwise")

    return looked


def check_revision_names(settings: Settings, project: Project) -> None:
    """Every revision the settings name (skip-revisions, downgrade-floor, data:) is in the
    history: a configuration error (exit 2) before any check runs, said where it was
    given, not a check's error halfway through."""
    project.history.named_by(settings)


def _baseline(settings: Settings, path: Path) -> Baseline:
    """The baseline file; when the settings named it (not the project's default one), an
    error says where: the file and line that gave it, or the flag."""
    try:
        return load_baseline(path)
    except ConfigError as e:
        if settings.baseline is None:
            raise
        raise ConfigError(f"{settings.source_of('baseline')}: {e}") from None


def check_rule_names(settings: Settings) -> None:
    """Every name in the settings' `rules:` is a rule some check reports (a typo would
    silently change nothing)."""
    docs = rule_docs()
    known = {*docs, *(key.partition("/")[2] for key in docs)}
    for name in settings.rules:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            at = settings.given_at("rules", name)
            where = f"{at}: " if at else ""
            raise ConfigError(
                f"{where}`rules.{name}` names no rule{hint}; `alembic-preflight rules` lists them"
            )


def project_info(project: Project) -> ProjectInfo:
    history = project.history
    return ProjectInfo(
        config=project.rel(project.ini_path),
        script_location=project.rel(project.script_location),
        revisions=len(history.revisions),
        heads=tuple(history.heads),
        bases=tuple(history.bases),
        directory=project.rel(project.directory),
        parents={r: tuple(f.down_revisions) for r, f in history.revisions.items()},
        files={r: project.rel(f.path) for r, f in history.revisions.items()},
    )
