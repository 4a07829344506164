"""The command line: Typer options → Settings → commands.*; no logic of its own."""

from __future__ import annotations

import os
import signal
import sys
import tempfile
from contextlib import suppress
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from alembic_preflight import __version__
from alembic_preflight.error_handler import run_guarded
from alembic_preflight.errors import ConfigError
from alembic_preflight.settings import ALL_CHECKS, Settings, build_settings
from alembic_preflight.worker.client import Prewarmed, prewarm, take_early

if TYPE_CHECKING:
    from alembic_preflight.reporters import ReportOptions

app = typer.Typer(
    name="alembic-preflight",
    help="Verify Alembic migrations against a real, throwaway PostgreSQL before a deploy does.",
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

CHECKS_HELP = f"Comma-separated checks to run (default: all): {', '.join(ALL_CHECKS)}."
DB = "Database"
PROJ = "Project"
CHK = "Checks"
OUT = "Reports"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"alembic-preflight {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = None,
) -> None:
    """Verify Alembic migrations against a real, throwaway PostgreSQL."""


def _csv(values: list[str] | None) -> tuple[str, ...] | None:
    if not values:
        return None
    return tuple(v.strip() for item in values for v in item.split(",") if v.strip())


def _shard(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        k, n = (int(x) for x in value.split("/"))
    except ValueError:
        raise ConfigError(f"--shard takes K/N, e.g. 1/4 (got {value!r})") from None
    if not 1 <= k <= n:
        raise ConfigError(f"--shard {value}: K must be between 1 and N")
    return (k, n)


@app.command()
def verify(
    project_dir: Annotated[
        Path, typer.Argument(help="The project directory (where you run `alembic`).")
    ] = Path("."),
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="alembic.ini elsewhere than PROJECT_DIR.", rich_help_panel=PROJ
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name", help="The alembic.ini section (default: alembic).", rich_help_panel=PROJ
        ),
    ] = None,
    url_env: Annotated[
        list[str] | None,
        typer.Option(
            "--url-env",
            help="Environment variable env.py reads its URL from; repeatable "
            "(default: DATABASE_URL). Another one env.py reads is found, set and reported.",
            rich_help_panel=PROJ,
        ),
    ] = None,
    driver: Annotated[
        str | None,
        typer.Option(
            "--driver",
            help="Driver in the URL handed to env.py: psycopg (default; sync and async), "
            "asyncpg, psycopg2.",
            rich_help_panel=PROJ,
        ),
    ] = None,
    x: Annotated[
        list[str] | None,
        typer.Option(
            "-x",
            help="Extra KEY=VALUE for env.py's context.get_x_argument(); repeatable.",
            rich_help_panel=PROJ,
        ),
    ] = None,
    database: Annotated[
        str | None,
        typer.Option(
            "--database",
            help="Where PostgreSQL comes from: auto (local server binaries when there are "
            "some and no image or version is asked for, else Docker, else embedded), "
            "container, embedded, url.",
            rich_help_panel=DB,
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="PREFLIGHT_DATABASE_URL",
            help="A server you provide (implies --database url). A fresh database is created "
            "there and dropped afterwards.",
            rich_help_panel=DB,
        ),
    ] = None,
    allow_non_empty: Annotated[
        bool | None,
        typer.Option(
            "--allow-non-empty",
            help="With --database-url and no CREATEDB right: use the named database even if it "
            "holds tables (it is wiped).",
            rich_help_panel=DB,
        ),
    ] = None,
    pg_bin: Annotated[
        Path | None,
        typer.Option(
            "--pg-bin",
            help="Directory of the PostgreSQL server binaries (embedded).",
            rich_help_panel=DB,
        ),
    ] = None,
    postgres_image: Annotated[
        str | None,
        typer.Option(
            "--postgres-image",
            help="Image for --database container (default postgres:17-alpine).",
            rich_help_panel=DB,
        ),
    ] = None,
    postgres_version: Annotated[
        int | None,
        typer.Option(
            "--postgres-version",
            help="Shortcut for --postgres-image postgres:N-alpine.",
            rich_help_panel=DB,
        ),
    ] = None,
    checks: Annotated[
        list[str] | None, typer.Option("--checks", help=CHECKS_HELP, rich_help_panel=CHK)
    ] = None,
    skip: Annotated[
        list[str] | None,
        typer.Option("--skip", help="Comma-separated checks not to run.", rich_help_panel=CHK),
    ] = None,
    fail_on: Annotated[
        str | None,
        typer.Option(
            "--fail-on",
            help="Fail on findings of this severity or worse: error (default), warning.",
            rich_help_panel=CHK,
        ),
    ] = None,
    step_timeout: Annotated[
        float | None,
        typer.Option(
            "--step-timeout",
            help="Seconds one migration step may take (default 300).",
            rich_help_panel=CHK,
        ),
    ] = None,
    irreversible: Annotated[
        str | None,
        typer.Option(
            "--irreversible",
            help="Downgrades that raise on purpose: warn (default), error, allow.",
            rich_help_panel=CHK,
        ),
    ] = None,
    downgrade_floor: Annotated[
        str | None,
        typer.Option(
            "--downgrade-floor",
            help="Do not try downgrades of this revision and those below it.",
            rich_help_panel=CHK,
        ),
    ] = None,
    skip_revisions: Annotated[
        list[str] | None,
        typer.Option(
            "--skip-revisions",
            help="Revisions to stamp instead of run (comma-separated).",
            rich_help_panel=CHK,
        ),
    ] = None,
    seed_data: Annotated[
        bool | None,
        typer.Option(
            "--seed-data/--no-seed-data",
            help="Put synthetic rows in tables before each revision (stepwise).",
            rich_help_panel=CHK,
        ),
    ] = None,
    bootstrap: Annotated[
        str | None,
        typer.Option(
            "--bootstrap",
            help="A .sql file or module:function run before the first upgrade.",
            rich_help_panel=CHK,
        ),
    ] = None,
    changed_since: Annotated[
        str | None,
        typer.Option(
            "--changed-since",
            help="Lint and per-revision checks look only at revisions changed since this git ref.",
            rich_help_panel=CHK,
        ),
    ] = None,
    base_ref: Annotated[
        str | None,
        typer.Option(
            "--base-ref",
            help="Merge preview: check the revision graph together with this git ref's revisions.",
            rich_help_panel=CHK,
        ),
    ] = None,
    shard: Annotated[
        str | None,
        typer.Option(
            "--shard",
            help="K/N: run this share of the per-revision work (CI matrix).",
            rich_help_panel=CHK,
        ),
    ] = None,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            "-j",
            help=(
                "Parallel databases for the per-revision walk (default: cores, at most 2); "
                "with more than 1, the walk starts while upgrade, drift and roundtrip run."
            ),
            rich_help_panel=CHK,
        ),
    ] = None,
    output_format: Annotated[
        str,
        typer.Option(
            "--format",
            help="auto (github when GITHUB_ACTIONS=true), console, github.",
            rich_help_panel=OUT,
        ),
    ] = "auto",
    report_json: Annotated[
        Path | None,
        typer.Option("--report-json", help="Write the JSON report here.", rich_help_panel=OUT),
    ] = None,
    junit: Annotated[
        Path | None,
        typer.Option("--junit", help="Write a JUnit XML report here.", rich_help_panel=OUT),
    ] = None,
    sarif: Annotated[
        Path | None,
        typer.Option("--sarif", help="Write a SARIF 2.1.0 report here.", rich_help_panel=OUT),
    ] = None,
    gitlab_codequality: Annotated[
        Path | None,
        typer.Option(
            "--gitlab-codequality",
            help="Write a GitLab Code Quality report here.",
            rich_help_panel=OUT,
        ),
    ] = None,
) -> None:
    """Run the checks on the Alembic project in PROJECT_DIR.

    Exit codes: 0 passed, 1 a check failed, 2 usage/configuration error or refused target,
    3 no PostgreSQL could be started (or an internal error), 130 interrupted.
    """

    def go() -> int:
        flags = {
            "config": config,
            "name": name,
            "url_env": _csv(url_env),
            "driver": _choice("--driver", driver, ("psycopg", "asyncpg", "psycopg2")),
            "x": tuple(x) if x else None,
            "database": _choice("--database", database, ("auto", "container", "embedded", "url")),
            "database_url": database_url,
            "allow_non_empty": allow_non_empty,
            "pg_bin": pg_bin,
            "postgres_image": postgres_image,
            "postgres_version": postgres_version,
            "checks": _csv(checks),
            "skip": _csv(skip),
            "fail_on": _severity(fail_on),
            "step_timeout": step_timeout,
            "irreversible": _choice("--irreversible", irreversible, ("warn", "error", "allow")),
            "downgrade_floor": downgrade_floor,
            "skip_revisions": _csv(skip_revisions),
            "seed_data": seed_data,
            "bootstrap": bootstrap,
            "changed_since": changed_since,
            "base_ref": base_ref,
            "shard": _shard(shard),
            "jobs": jobs,
        }
        settings = build_settings(project_dir, flags)
        # the workers start importing now, beside the verifier's own imports below
        with prewarm(settings) as prewarmed:
            from alembic_preflight.commands.verify import verify as run_verify

            options = report_options(
                settings, output_format, report_json, junit, sarif, gitlab_codequality
            )
            return run_verify(settings, options, prewarmed)

    raise typer.Exit(run_guarded(go))


@app.command("merge-reports")
def merge_reports(
    reports: Annotated[list[Path], typer.Argument(help="JSON reports of the shards.")],
    output_format: Annotated[
        str,
        typer.Option("--format", help="auto (github when GITHUB_ACTIONS=true), console, github."),
    ] = "auto",
    report_json: Annotated[
        Path | None, typer.Option("--report-json", help="Write the merged JSON report here.")
    ] = None,
    junit: Annotated[Path | None, typer.Option("--junit", help="Write JUnit XML here.")] = None,
    sarif: Annotated[Path | None, typer.Option("--sarif", help="Write SARIF 2.1.0 here.")] = None,
    gitlab_codequality: Annotated[
        Path | None,
        typer.Option("--gitlab-codequality", help="Write a GitLab Code Quality report here."),
    ] = None,
) -> None:
    """Merge the JSON reports of `verify --shard K/N` jobs into one report.

    Exit codes as for verify: 0 passed, 1 a check failed, 2 unreadable reports.
    """

    def go() -> int:
        from alembic_preflight.commands.merge_reports import merge_reports as run_merge

        settings = Settings(project_dir=Path("."))
        options = report_options(
            settings, output_format, report_json, junit, sarif, gitlab_codequality
        )
        return run_merge(reports, options)

    raise typer.Exit(run_guarded(go))


def _choice(flag: str, value: str | None, choices: tuple[str, ...]) -> str | None:
    if value is not None and value not in choices:
        raise ConfigError(f"{flag} must be one of {', '.join(choices)} (got {value!r})")
    return value


def _severity(value: str | None) -> object:
    from alembic_preflight.findings import Severity

    if value is None:
        return None
    if value not in ("error", "warning"):
        raise ConfigError(f"--fail-on must be error or warning (got {value!r})")
    return Severity(value)


def report_options(
    settings: Settings,
    fmt: str,
    report_json: Path | None,
    junit: Path | None,
    sarif: Path | None,
    gitlab_codequality: Path | None,
) -> ReportOptions:
    from alembic_preflight.database.url import parse_server_url
    from alembic_preflight.reporters import ReportOptions

    if fmt not in ("auto", "console", "github"):
        raise ConfigError(f"--format must be auto, console or github (got {fmt!r})")
    in_actions = os.environ.get("GITHUB_ACTIONS") == "true"
    resolved = "github" if fmt == "github" or (fmt == "auto" and in_actions) else "console"
    if resolved == "github" and report_json is None:
        # the `report` step output must point at a file
        base = Path(os.environ.get("RUNNER_TEMP") or tempfile.gettempdir())
        report_json = base / "alembic-preflight" / "report.json"
    secrets: tuple[str, ...] = ()
    if settings.database_url:
        secrets = parse_server_url(settings.database_url).secrets

    def env_path(var: str) -> Path | None:
        value = os.environ.get(var)
        return Path(value) if value and resolved == "github" else None

    return ReportOptions(
        format=resolved,
        report_json=report_json,
        junit=junit,
        sarif=sarif,
        gitlab_codequality=gitlab_codequality,
        github_step_summary=env_path("GITHUB_STEP_SUMMARY"),
        github_output=env_path("GITHUB_OUTPUT"),
        secrets=secrets,
        project_name=settings.project_dir.resolve().name,
    )


def main(argv: list[str] | None = None) -> int:
    # CI cancels a job with SIGTERM: unwind like Ctrl-C so every database and container
    # is removed (exit 130) instead of dying with them left behind
    with suppress(ValueError):  # not the main thread (embedded in another program)
        signal.signal(signal.SIGTERM, _terminate)
    try:
        app(args=argv, prog_name="alembic-preflight")
    except SystemExit as e:  # Typer ends every run this way; usage errors exit 2
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return 0


def run() -> NoReturn:
    """The console script: main(), then out at once. By then every database, container and
    worker is gone and the reports are written; the interpreter's orderly teardown of
    SQLAlchemy, Alembic and friends would only add a few hundred milliseconds."""
    try:
        code = main()
    finally:
        # workers started before the command line was read and never taken (--help, a
        # bad flag): they would end on their own, once their imports are done
        Prewarmed(take_early()).close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _terminate(signum: int, frame: FrameType | None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not cut cleanup short
    raise KeyboardInterrupt(f"signal {signum}")
