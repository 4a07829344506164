"""`verify`: load the project → run the static checks → provision PostgreSQL → run the
database checks → write the reports → exit code."""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import replace

from alembic_preflight import __version__, output
from alembic_preflight.checks import CHECKS, rule_docs, stepwise
from alembic_preflight.checks.base import Check, CheckContext, CheckSkipped, LaneBusy
from alembic_preflight.database import choose_backend, provision
from alembic_preflight.errors import (
    EXIT_FAILED,
    EXIT_INFRA,
    EXIT_OK,
    PreflightError,
    RefusedTarget,
)
from alembic_preflight.findings import (
    CheckResult,
    DatabaseInfo,
    Finding,
    ProjectInfo,
    Report,
    Severity,
    Status,
)
from alembic_preflight.project import Project, load_project
from alembic_preflight.reporters import ReportOptions, emit
from alembic_preflight.settings import Settings
from alembic_preflight.workbench import Workbench
from alembic_preflight.worker.client import Prewarmed


def verify(settings: Settings, options: ReportOptions, prewarmed: Prewarmed | None = None) -> int:
    started = time.monotonic()
    project = load_project(settings, prewarmed.layout if prewarmed else None)
    checks = [CHECKS[c] for c in settings.checks]
    results: dict[str, CheckResult] = {}
    focus = None
    if settings.changed_since:
        from alembic_preflight.project.gitrefs import changed_revisions

        focus = frozenset(changed_revisions(project.repo_root, project, settings.changed_since))
        output.info(
            f"{len(focus)} revision(s) changed since {settings.changed_since}: "
            "lint and per-revision checks look at those only"
        )
    ctx = CheckContext(settings=settings, project=project, earlier=results, focus=focus)
    for check in checks:
        if not check.NEEDS_DB:
            results[check.ID] = _run(check, ctx, settings.fail_on)
    database: DatabaseInfo | None = None
    infra_failed = False
    not_verified: str | None = None
    db_checks = [c for c in checks if c.NEEDS_DB]
    if db_checks and not project.history.loadable:
        for check in db_checks:
            results[check.ID] = _skipped(
                check.ID, "the revision graph is broken (see graph); Alembic cannot load it"
            )
    elif db_checks:
        try:
            with provision(settings) as server:
                # a generated password is a secret like the user's own (issue 13)
                options = replace(options, secrets=(*options.secrets, *server.secrets))
                database = DatabaseInfo(
                    backend=server.backend, server_version=server.server_version
                )
                output.info(
                    f"PostgreSQL {server.server_version.split()[0]} ready ({server.backend}, "
                    f"{time.monotonic() - started:.1f} s)"
                )
                bench = Workbench(settings, project, server, prewarmed=prewarmed or Prewarmed())
                with bench.open(lanes=settings.lanes):
                    db_ctx = replace(ctx, bench=bench)
                    if _beside(db_checks, bench.lane_count):
                        _run_beside(db_checks, db_ctx, settings.fail_on, results)
                    else:
                        every = tuple(range(bench.lane_count))
                        for check in db_checks:
                            lanes_of = every if check.ID == stepwise.ID else (0,)
                            results[check.ID] = _run(
                                check, replace(db_ctx, lanes=lanes_of), settings.fail_on
                            )
        except PreflightError as e:
            if e.exit_code != EXIT_INFRA:
                raise
            output.error(str(e))
            infra_failed = True
            not_verified = f"not verified: {e}"
            for check in db_checks:
                results.setdefault(check.ID, _errored(check.ID, "not run"))
            database = database or DatabaseInfo(backend=choose_backend(settings), server_version="")
    report = Report(
        tool_version=__version__,
        project=project_info(project),
        database=database,
        checks=tuple(results[c.ID] for c in checks if c.ID in results),
        duration_s=round(time.monotonic() - started, 3),
        fail_on=settings.fail_on,
        not_verified=not_verified,
        rules=rule_docs(),
    )
    emit(report, options)
    if infra_failed:
        return EXIT_INFRA
    return EXIT_OK if report.passed else EXIT_FAILED


def _beside(db_checks: list[Check], lanes: int) -> bool:
    """Whether stepwise starts on its other lanes while the other checks run on lane 0.

    Why (issue 7): upgrade, drift and roundtrip run one request at a time on one core, and
    the walk's lanes would wait for them. Now lane 1 walks meanwhile, and lane 0 joins the
    walk when they are done, with a slice cut shorter by what they cost. (A lane of their
    own beside two walking lanes was as fast, but a third worker costs 75 MB.)"""
    ids = {c.ID for c in db_checks}
    return stepwise.ID in ids and len(ids) > 1 and lanes > 1


def _run_beside(
    db_checks: list[Check], ctx: CheckContext, fail_on: Severity, results: dict[str, CheckResult]
) -> None:
    assert ctx.bench is not None
    walk = next(c for c in db_checks if c.ID == stepwise.ID)
    others = [c for c in db_checks if c is not walk]
    busy = LaneBusy(
        threading.Event(),
        stepwise.busy_cost([c.ID for c in others], len(ctx.project.history.revisions)),
    )
    walk_ctx = replace(ctx, lanes=tuple(range(ctx.bench.lane_count)), lane0_busy=busy)
    done: dict[str, CheckResult] = {}
    errors: list[BaseException] = []

    def target() -> None:
        try:
            done[walk.ID] = _run(walk, walk_ctx, fail_on)
        except BaseException as e:  # an infrastructure error: re-raised below
            errors.append(e)

    thread = threading.Thread(target=target, name="stepwise", daemon=True)
    thread.start()
    try:
        for check in others:
            results[check.ID] = _run(check, replace(ctx, lanes=(0,)), fail_on)
    finally:
        busy.free.set()
    thread.join()
    if errors:
        raise errors[0]
    results.update(done)


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


def _run(check: Check, ctx: CheckContext, fail_on: Severity) -> CheckResult:
    started = time.monotonic()
    findings: list[Finding] = []
    ctx.cases = []
    ctx.note = None
    status = Status.PASSED
    note = None
    try:
        for finding in check.run(ctx):
            findings.append(finding)
    except CheckSkipped as e:
        status, note = Status.SKIPPED, str(e)
    except PreflightError as e:
        # a refused target or a broken server ends the run, not just this check
        if e.exit_code == EXIT_INFRA or isinstance(e, RefusedTarget):
            raise
        status, note = Status.ERROR, str(e)
    except Exception as e:
        status, note = Status.ERROR, f"internal error: {type(e).__name__}: {e}"
        findings.append(
            Finding(
                check=check.ID,
                rule="internal-error",
                severity=Severity.ERROR,
                message=f"the {check.ID} check stopped on an internal error; please report it",
                detail="".join(traceback.format_exception(e))[-4000:],
            )
        )
    if status is Status.PASSED and any(f.severity.rank <= fail_on.rank for f in findings):
        status = Status.FAILED
    result = CheckResult(
        id=check.ID,
        status=status,
        duration_s=round(time.monotonic() - started, 3),
        findings=tuple(findings),
        note=note or ctx.note,
        cases=tuple(ctx.cases),
    )
    output.progress(result)
    return result


def _skipped(check_id: str, why: str) -> CheckResult:
    result = CheckResult(id=check_id, status=Status.SKIPPED, duration_s=0.0, note=why)
    output.progress(result)
    return result


def _errored(check_id: str, why: str) -> CheckResult:
    return CheckResult(id=check_id, status=Status.ERROR, duration_s=0.0, note=why)
