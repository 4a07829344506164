"""Turning a worker's failure into a finding: the revision, its file and line, the error."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from alembic_preflight.checks.base import CheckContext
from alembic_preflight.findings import Finding, RuleText, Severity, first_line
from alembic_preflight.project.history import RevisionFile
from alembic_preflight.project.source import (
    commit_lines,
    run_migrations_line,
    statement_span,
    upgrade_strings,
)
from alembic_preflight.settings import ALL_CHECKS, DATABASE_CHECKS
from alembic_preflight.worker.protocol import Failure, FailureKind

BOOTSTRAP_HINT = (
    "if this history starts from a schema made outside Alembic (metadata.create_all() + "
    "`alembic stamp`, or a schema SQL file), set `bootstrap:` (a .sql file or "
    "module:function) in the settings so it runs before the first upgrade"
)


ENV_HINT = (
    "env.py or a module it imports failed before any migration ran: the traceback shows "
    "where; it runs as `alembic upgrade head` would run it, from the project directory"
)


MISSING_MODULE_HINT = (
    "a module env.py imports is not installed where the verifier runs: install the "
    "project's packages there (pip install -r requirements.txt; the container action's "
    "`install` input), or, for the project's own package, set `prepend_sys_path = .` in "
    "alembic.ini"
)


SETTING_HINT = (
    "a setting env.py (or the settings module it imports) needs is missing or invalid{names}: "
    "set it in the job's environment (the action's `env:`); if it holds the database URL, "
    "name it with --url-env NAME (`url-env:` in .alembic-preflight.yml) and the verifier "
    "sets it to its own database; values read with context.get_x_argument() come from "
    "-x KEY=VALUE"
)


SYNC_UNDER_ASYNC_HINT = (
    "an async driver under a sync env.py (MissingGreenlet): hand it a sync one with "
    "--driver psycopg (the default) or --driver psycopg2"
)


ASYNC_NEEDS_ASYNC_DRIVER_HINT = (
    "env.py is async (create_async_engine / async_engine_from_config) and the URL's driver "
    "is not: use --driver psycopg (serves sync and async) or --driver asyncpg"
)


DID_NOT_MIGRATE_HINT = (
    "env.py must run the migrations online on the URL it is handed (sqlalchemy.url, "
    "-x dburl, or the --url-env variable): `context.configure(connection=...)` then "
    "`context.run_migrations()` when context.is_offline_mode() is False, as `alembic init` "
    "writes it"
)


# the database checks in the order they run: the first that runs says what the probe of
# env.py found, once; the others are skipped with a note pointing there
DATABASE_CHECK_ORDER = tuple(c for c in ALL_CHECKS if c in DATABASE_CHECKS)


def failure_finding(
    ctx: CheckContext,
    check: str,
    rule: str,
    failure: Failure,
    *,
    what: str,
    severity: Severity = Severity.ERROR,
) -> Finding:
    """`what` says what was being done ("upgrade head on an empty database")."""
    rev = failure.revision
    history = ctx.project.history
    file = failure.file
    line = failure.line
    rev_file = history.revisions.get(rev) if rev else None
    if rev_file is not None and (file is None or not _same(file, rev_file.path)):
        # the error surfaced outside the revision file (inside alembic or SQLAlchemy):
        # point at the function that was running
        file = str(rev_file.path)
        line = rev_file.upgrade_line if failure.phase == "upgrade" else rev_file.downgrade_line
    if timed_out(failure):
        message = f"{what}: {rev + ' ' if rev else ''}{failure.message}"
        rule = "step-timeout"
    else:
        first = first_line(failure.message)
        # a bare `assert` (Alembic's own) has no message: the type alone says it
        error = (
            failure.error_type if first == failure.error_type else f"{failure.error_type}: {first}"
        )
        if rev:
            message = f"{failure.phase} of {rev} fails ({what}): {error}"
        elif at_commit(failure):
            message = f"{what} fails at commit, after its migrations ran: {error}"
        else:
            message = f"{what} fails outside any migration: {error}"
    detail_parts = []
    if failure.message and "\n" in failure.message.strip():
        detail_parts.append(failure.message.strip())
    if failure.statement:
        detail_parts.append(f"statement:\n{failure.statement.strip()}")
    if failure.traceback:
        detail_parts.append(failure.traceback)
    fix = None if rev else env_hint(failure)
    if rev_file is not None and not timed_out(failure):
        fix = cause(rev_file, failure, line) or fix
    if at_commit(failure):
        fix = DEFERRED_FIX if rev else DEFERRED_WHOLE_FIX
    if not rev and (why := transaction_cause(ctx, failure)):
        fix = why
    if needs_bootstrap(ctx, failure):
        fix = BOOTSTRAP_HINT
    return Finding(
        check=check,
        rule=rule,
        severity=severity,
        message=message,
        revision=rev,
        file=ctx.rel(file) if file else None,
        line=line,
        detail="\n\n".join(detail_parts) or None,
        fix=fix,
        traceback=failure.full_traceback or None,
    )


# Lint rules whose hit explains a database failure in the same statement: the failure
# finding then says so, so the reader does not have to match the two up.
CAUSES = ("unnamed-drop-constraint", "concurrently-in-transaction")


AUTOCOMMIT_FIX = (
    "run it inside `with op.get_context().autocommit_block():` (PostgreSQL refuses it "
    "inside a transaction block, and Alembic runs each migration in one)"
)


OUTER_TRANSACTION_FIX = (
    "autocommit_block() needs the transaction to be Alembic's: env.py begins its own "
    "(`with connectable.begin() as connection:`); use `connectable.connect()` and "
    "`with context.begin_transaction():` as `alembic init` writes it"
)


# Constraints PostgreSQL can defer to the end of the transaction (foreign keys, unique,
# primary keys, exclusion): their violation surfaces at COMMIT, after the migrations ran.
_DEFERRABLE_VIOLATIONS = frozenset({"ForeignKeyViolation", "UniqueViolation", "ExclusionViolation"})

DEFERRED_FIX = (
    "a DEFERRABLE INITIALLY DEFERRED constraint is checked when the transaction commits: "
    "the rows the migration writes must satisfy it by then (insert the parent rows too, "
    "or delete what breaks it)"
)

DEFERRED_WHOLE_FIX = (
    "a DEFERRABLE INITIALLY DEFERRED constraint failed when the migrations' transaction "
    "committed: a revision run in it left rows that break it; the stepwise check, which "
    "commits each revision on its own, names which"
)


PENDING_CHECKS_FIX = (
    "rows inserted, updated or deleted earlier in the same transaction under a "
    "DEFERRABLE INITIALLY DEFERRED constraint still wait for their check, and PostgreSQL "
    "refuses to alter or drop their table until then; Alembic runs every revision of an "
    "upgrade or downgrade in one transaction, so it fails there the same way. Set "
    "transaction_per_migration=True in env.py's context.configure() (each revision then "
    'commits on its own), or run `op.execute("SET CONSTRAINTS ALL IMMEDIATE")` before '
    "this statement"
)


def at_commit(failure: Failure) -> bool:
    """A deferred constraint's violation, raised by COMMIT (no statement of its own)."""
    return failure.error_type in _DEFERRABLE_VIOLATIONS and not failure.statement


COMMIT_FIX = (
    "a migration ended the transaction Alembic opened (op.get_bind().commit() or "
    "COMMIT): on SQLAlchemy 2 the next statement starts a new one that Alembic never "
    "commits. Set transaction_per_migration=True in env.py's context.configure(), and "
    "run what must be outside a transaction in `with op.get_context().autocommit_block():`"
)


def cause(rev_file: RevisionFile, failure: Failure, line: int | None) -> str | None:
    """Why the statement at `line` failed, when the source or the error says it plainly."""
    from alembic_preflight.checks.lint.rules import hits
    from alembic_preflight.checks.lint.visitor import Facts

    span = statement_span(rev_file, line, failure.phase)
    if span is not None:
        for hit in hits(rev_file, Facts()):
            if hit.rule in CAUSES and span[0] <= hit.line <= span[1]:
                return f"the cause is lint {hit.rule} at line {hit.line}: {hit.fix}"
    if failure.error_type == "DependentObjectsStillExist":
        # PostgreSQL's DETAIL names what still depends on it: say it in the fix, in words
        detail = next(
            (
                x.strip()[len("DETAIL:") :].strip()
                for x in failure.message.splitlines()
                if x.strip().startswith("DETAIL:")
            ),
            "",
        )
        because = f" ({detail})" if detail else ""
        return (
            f"drop what depends on it first{because}: downgrade() must undo upgrade() in "
            "reverse order (drop the referencing table or foreign key before the table)"
        )
    if "cannot run inside a transaction block" in failure.message:
        return AUTOCOMMIT_FIX
    if failure.error_type == "ObjectInUse" and "pending trigger events" in failure.message:
        return PENDING_CHECKS_FIX
    if failure.error_type == "AssertionError" and "autocommit_block" in failure.traceback:
        return OUTER_TRANSACTION_FIX
    if _ended_transaction(failure):
        return COMMIT_FIX
    return None


def transaction_cause(ctx: CheckContext, failure: Failure) -> str | None:
    """A failure after the migrations ran (Alembic committing its transaction): name the
    revisions that commit on their own, found in their source."""
    if not _ended_transaction(failure):
        return None
    found = [
        f"{f.revision} ({ctx.rel(f.path)}:{n})"
        for f in ctx.project.history.revisions.values()
        for n in commit_lines(f)
    ]
    if not found:
        return COMMIT_FIX
    return f"{COMMIT_FIX} Committing here: {', '.join(found[:5])}"


def _ended_transaction(failure: Failure) -> bool:
    return failure.error_type == "InvalidRequestError" and (
        "transaction is inactive" in failure.message
        or "closed transaction inside context manager" in failure.message
    )


def needs_bootstrap(ctx: CheckContext, failure: Failure) -> bool:
    """An early upgrade finds no table to change that any revision before it creates: the
    history most likely starts from a schema made outside Alembic. Said for a base
    revision, and for a later one whose ancestors never name the missing relation (a base
    whose upgrade is empty, say). Every check that meets it says the same."""
    history = ctx.project.history
    rev = failure.revision
    if failure.phase != "upgrade" or rev is None or ctx.settings.bootstrap:
        return False
    if "does not exist" not in failure.message:
        return False
    if rev in history.bases:
        return True
    missing = _MISSING_RELATION.search(failure.message)
    if missing is None:
        return False
    name = missing.group(1).rpartition(".")[2]
    return not any(
        name in upgrade_strings(history.revisions[a])
        for a in history.lineage(rev) - {rev}
        if a in history.revisions
    )


_MISSING_RELATION = re.compile(r'relation "([^"]+)" does not exist')


def timed_out(failure: Failure) -> bool:
    """--step-timeout, enforced on the wall clock (the worker was stopped) or by PostgreSQL's
    statement_timeout (the statement was cancelled): the same limit, reported the same way."""
    return failure.kind is FailureKind.TIMEOUT or (
        failure.error_type == "QueryCanceled" and "statement timeout" in failure.message
    )


def _same(a: object, b: object) -> bool:
    from pathlib import Path

    return Path(str(a)).resolve() == Path(str(b)).resolve()


def fresh_database(ctx: CheckContext) -> str:
    """What the first upgrade starts from, in words: empty, unless `bootstrap:` made it."""
    return "the bootstrapped database" if ctx.settings.bootstrap else "an empty database"


def start_empty(ctx: CheckContext, lane: int = 0, *, save: bool = True) -> Failure | None:
    """A fresh database as the first revision expects it: empty, or after `bootstrap:`,
    kept as the template "base" for the next caller unless `save` is False. Without
    `bootstrap:` it is a new empty database, none when the lane's still is: a copy of an
    empty template would cost the same as a new one, and saving it as much again."""
    from alembic_preflight.worker.protocol import BOOTSTRAP

    bench = ctx.bench
    assert bench is not None
    if not ctx.settings.bootstrap:
        bench.fresh(lane=lane)
        return None
    if bench.has("base"):
        bench.fresh("base", lane=lane)
        return None
    bench.fresh(lane=lane)
    outcome = bench.run(BOOTSTRAP, ctx.settings.bootstrap, lane=lane)
    if not outcome.ok:
        return outcome.failure
    if save:
        bench.save("base", lane=lane)
    return None


def ensure_head(
    ctx: CheckContext,
    check_id: str,
    refused: list[Finding] | None = None,
    on_running: Callable[[Any], None] | None = None,
) -> Failure | None:
    """Put the lane's database at head: a copy of the saved one, or by upgrading (with
    the rows `data:` declares; the ones refused go to `refused`; `on_running` hears each
    revision start)."""
    from alembic_preflight.checks.declared_rows import upgrade_with_rows

    bench = ctx.bench
    assert bench is not None
    if bench.has("head"):
        bench.fresh("head")
        return None
    failure = start_empty(ctx)
    if failure is not None:
        return failure
    outcome, said = upgrade_with_rows(ctx, check_id, on_running=on_running)
    if refused is not None:
        refused += said
    if not outcome.ok:
        return outcome.failure
    bench.save("head")
    return None


def env_hint(failure: Failure) -> str:
    """The fix for env.py failing outside any migration, by the kind of failure; the
    generic hint only when the kind is unknown."""
    kind, message = failure.error_type, failure.message
    if kind in ("ModuleNotFoundError", "ImportError"):
        return MISSING_MODULE_HINT
    if kind == "MissingGreenlet":
        return SYNC_UNDER_ASYNC_HINT
    if "asyncio extension requires an async driver" in message or "is not async" in message:
        return ASYNC_NEEDS_ASYNC_DRIVER_HINT
    if failure.kind is FailureKind.DID_NOT_MIGRATE:
        return DID_NOT_MIGRATE_HINT
    names = _setting_names(failure)
    if names is not None:
        return SETTING_HINT.format(names=f" ({', '.join(names)})" if names else "")
    return ENV_HINT


def _setting_names(failure: Failure) -> list[str] | None:
    """The settings a failure says are missing or invalid; None when it is no such failure.
    pydantic's ValidationError lists each field on a line of its own; os.environ["X"]
    raises KeyError('X')."""
    kind, message = failure.error_type, failure.message
    if kind == "ValidationError" and "validation error" in message:
        lines = message.splitlines()[1:]
        return [ln.strip() for ln in lines if ln.strip() and not ln.startswith((" ", "\t"))]
    if kind == "KeyError":
        name = message.strip().strip("'\"")
        if re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
            return [name]
    if kind in ("SettingsError", "ImproperlyConfigured", "EnvError"):
        return []
    return None


def probe_findings(ctx: CheckContext, check: str) -> tuple[list[Finding], bool]:
    """What the workbench's probe of env.py found (workbench._probe): notices, and env.py
    failing or not migrating, said by the first database check that runs; the others are
    skipped (CheckSkipped) when env.py fails. (findings, whether the check must stop).
    commands/verify.py asks before it runs each database check."""
    from alembic_preflight.checks.base import CheckSkipped

    bench = ctx.bench
    assert bench is not None
    owner = next((c for c in DATABASE_CHECK_ORDER if c in ctx.settings.checks), check)
    found: list[Finding] = []
    if check == owner:
        found += [
            Finding(check=check, rule="url-env-inferred", severity=Severity.NOTICE, message=n)
            for n in bench.notices
        ]
    failure = bench.env_failure
    if failure is None:
        return found, False
    if check != owner:
        raise CheckSkipped(f"env.py does not run the migrations (see {owner})")
    if failure.kind is FailureKind.DID_NOT_MIGRATE:
        found.append(did_not_migrate_finding(ctx, check, failure.message))
    else:
        found.append(failure_finding(ctx, check, "env-failed", failure, what="env.py"))
    return found, True


def did_not_migrate_finding(ctx: CheckContext, check: str, message: str) -> Finding:
    """At env.py: the line that runs the migrations, else its last statement."""
    env_py = ctx.project.script_location / "env.py"
    return Finding(
        check=check,
        rule="env-did-not-migrate",
        severity=Severity.ERROR,
        message=message,
        file=ctx.rel(env_py),
        line=run_migrations_line(env_py),
        fix=DID_NOT_MIGRATE_HINT,
    )


# rules every database check may report: env.py as the probe found it, a step that hangs
DATABASE_RULES: dict[str, RuleText] = {
    "env-failed": RuleText(
        "env.py failed before any migration ran",
        "The project's env.py raised an error. Check imports, the database URL handling "
        "and anything env.py reads from the environment. Said once, by the first database "
        "check that runs; the others are skipped.",
    ),
    "env-did-not-migrate": RuleText(
        "env.py did not run the migrations on the database it was handed",
        "env.py returned without calling context.run_migrations() on a connection to the "
        "URL it was handed (it does nothing, returns early, or runs offline), or after "
        "`upgrade head` the database's version table does not name the heads. Nothing was "
        "verified. Configure the context with a connection to that URL and run the "
        "migrations, as `alembic init` writes env.py.",
    ),
    "url-env-inferred": RuleText(
        "env.py read its URL from a variable of its own",
        "env.py ignored the URL it was handed and read another database's address from an "
        "environment variable (or a .env entry): the verifier refused that connection, "
        "set the variable to its own disposable database and ran again. Name the variable "
        "with `url-env:` (or --url-env) so the retry is not needed.",
    ),
    "step-timeout": RuleText(
        "A migration step took longer than the step timeout",
        "The step did not finish in time; it may wait on a lock or do heavy work. Split "
        "it, or raise --step-timeout if it is expected.",
    ),
}
