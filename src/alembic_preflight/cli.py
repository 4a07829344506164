"""The command line: Typer options → Settings → commands.*; no logic of its own."""

from __future__ import annotations

import inspect
import os
import signal
import sys
import tempfile
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperCommand, TyperGroup

from alembic_preflight import __version__, output
from alembic_preflight.error_handler import run_guarded
from alembic_preflight.errors import EXIT_INTERRUPTED, ConfigError, interrupt_on_signal
from alembic_preflight.flags import (
    MERGE_FLAGS,
    REPORT_FLAGS,
    SETTINGS_FLAGS,
    merge_values,
    report_values,
    settings_values,
    with_flags,
)
from alembic_preflight.head_start import close_unused
from alembic_preflight.settings import Settings, build_settings
from alembic_preflight.worker.client import prewarm

if TYPE_CHECKING:
    from alembic_preflight.reporters import ReportOptions


def _reflowed(text: str | None) -> str | None:
    """Each paragraph on one line, for the terminal to wrap: Typer keeps a docstring's line
    breaks after its first paragraph, which then break mid-sentence at any other width."""
    if text is None:
        return None
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


def _without_type(option: Any) -> Any:
    """Typer shows a value's Python type beside an option without a metavar: `<bool>`
    beside --help, which takes no value."""
    if option is not None and option.metavar is None:
        option.metavar = ""
    return option


class Command(TyperCommand):
    """A command whose --help reads well at 80 columns: paragraphs wrapped to the
    terminal, no type placeholder beside --help. The options name their values themselves
    (flags.Flag.metavar)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = _reflowed(self.help)

    def get_help_option(self, ctx: Any) -> Any:
        return _without_type(super().get_help_option(ctx))


class Group(TyperGroup):
    """The top level's --help, without a type placeholder beside --help either."""

    def get_help_option(self, ctx: Any) -> Any:
        return _without_type(super().get_help_option(ctx))


app = typer.Typer(
    name="alembic-preflight",
    cls=Group,
    help="Verify Alembic migrations against a real, throwaway PostgreSQL before a deploy does.",
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"alembic-preflight {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool | None,
        typer.Option(
            "--version", callback=_version, is_eager=True, metavar="", help="Print the version."
        ),
    ] = None,
) -> None:
    """Verify Alembic migrations against a real, throwaway PostgreSQL."""


def verify(project_dir: Path = Path("."), **given: Any) -> None:
    """Run the checks on the Alembic project in PROJECT_DIR.

    PROJECT_DIR is where you would run `alembic` (default: the current directory).

    Exit codes: 0 passed; 1 a check failed (with --fail-on never, only a check that
    verified nothing); 2 usage or configuration error, or a refused target; 3 not verified
    (no PostgreSQL, or an internal error); 130 interrupted.
    """

    def go() -> int:
        settings = build_settings(project_dir, settings_values(given))
        # the workers start importing now, beside the verifier's own imports below
        with prewarm(settings) as prewarmed:
            prewarmed.ask_layout(settings)  # answered while we import what follows
            from alembic_preflight.commands.verify import verify as run_verify

            options = report_options(settings, **report_values(given))
            return run_verify(settings, options, prewarmed)

    raise typer.Exit(run_guarded(go))


# Said in the command's own text: Typer's panel of arguments would show a Python type
# (`<path>`) beside it
PROJECT_DIR = inspect.Parameter(
    "project_dir",
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    default=Path("."),
    annotation=Annotated[Path, typer.Argument(metavar="PROJECT_DIR", hidden=True)],
)
app.command(cls=Command)(with_flags(verify, (*SETTINGS_FLAGS, *REPORT_FLAGS), (PROJECT_DIR,)))


def merge_reports(reports: list[Path], **given: Any) -> None:
    """Merge the JSON reports of `verify --shard K/N` jobs into one report.

    REPORT: the JSON report (--report-json) of each shard. The merged report is judged by
    --fail-on as verify judges a run (default: the strictest --fail-on the shards ran with).

    Exit codes: 0 passed (with --fail-on never, also when a check failed); 1 a check failed
    (with --fail-on never, only a check that verified nothing); 2 unreadable reports or a
    bad option; 3 not verified (a shard could not verify).
    """

    def go() -> int:
        from alembic_preflight.commands.merge_reports import merge_reports as run_merge

        fail_on = merge_values(given)["fail_on"]
        options = report_options(Settings(project_dir=Path(".")), **report_values(given))
        return run_merge(reports, options, fail_on)

    raise typer.Exit(run_guarded(go))


REPORTS = inspect.Parameter(
    "reports",
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    annotation=Annotated[list[Path], typer.Argument(metavar="REPORT", hidden=True)],
)
app.command("merge-reports", cls=Command)(
    with_flags(merge_reports, (*MERGE_FLAGS, *REPORT_FLAGS), (REPORTS,))
)


def baseline(project_dir: Path = Path("."), **given: Any) -> None:
    """Accept the findings of the project in PROJECT_DIR: later runs fail only on new ones.

    Runs what verify runs and writes every finding to the project's baseline file
    (.alembic-preflight-baseline.json in PROJECT_DIR, or --baseline FILE), which verify then
    reads. PROJECT_DIR is where you would run `alembic` (default: the current directory).

    Exit codes: 0 written; 2 usage or configuration error; 3 not verified (nothing written).
    """

    def go() -> int:
        settings = build_settings(project_dir, settings_values(given))
        with prewarm(settings) as prewarmed:
            from alembic_preflight.commands.baseline import write_baseline

            options = report_options(settings, **report_values(given))
            return write_baseline(settings, options, prewarmed)

    raise typer.Exit(run_guarded(go))


app.command(cls=Command)(with_flags(baseline, (*SETTINGS_FLAGS, *REPORT_FLAGS), (PROJECT_DIR,)))


def lint(paths: list[Path] | None = None, **given: Any) -> None:
    """The checks that need no database (graph, lint), on the files or projects given.

    PATH: revision files (the pre-commit hook), or project directories (default: .). A
    file's project is the nearest folder above it with alembic.ini (or --config's); its
    whole history makes the graph, and only the files given are linted.

    Exit codes: 0 passed (also a failure with --fail-on never), 1 a check failed, 2 usage or
    configuration error.
    """

    def go() -> int:
        from alembic_preflight.commands.lint import lint as run_lint

        return run_lint(paths or [], settings_values(given), verbose=given.get("verbose", False))

    raise typer.Exit(run_guarded(go))


# a hook's choices: which project, and how strict; nothing about databases or reports
LINT_FLAGS = tuple(
    f
    for f in (*SETTINGS_FLAGS, *REPORT_FLAGS)
    if f.name in ("config", "name", "fail_on", "irreversible", "baseline", "no_baseline", "verbose")
)
PATHS = inspect.Parameter(
    "paths",
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    default=None,
    annotation=Annotated[list[Path] | None, typer.Argument(metavar="PATH", hidden=True)],
)
app.command(cls=Command)(with_flags(lint, LINT_FLAGS, (PATHS,)))


@app.command("rules", cls=Command)
def rules() -> None:
    """List every rule of every check, and what it means.

    These are the names `rules:` in the settings can re-grade (error, warning, notice) or
    switch off.
    """
    import textwrap

    from alembic_preflight.checks import rule_docs

    for key, text in sorted(rule_docs().items()):
        body = textwrap.fill(text.help, width=88, initial_indent="    ", subsequent_indent="    ")
        typer.echo(f"{key}: {text.short}\n{body}\n")


def report_options(
    settings: Settings,
    output_format: str = "auto",
    report_json: Path | None = None,
    junit: Path | None = None,
    sarif: Path | None = None,
    gitlab_codequality: Path | None = None,
    verbose: bool = False,
) -> ReportOptions:
    from alembic_preflight.database.url import parse_server_url
    from alembic_preflight.reporters import ReportOptions

    for flag, given in (
        ("--report-json", report_json),
        ("--junit", junit),
        ("--sarif", sarif),
        ("--gitlab-codequality", gitlab_codequality),
    ):
        if given is not None and given.is_dir():
            raise ConfigError(f"{flag} {given}: is a directory (name a file in it)")
    fmt = output_format
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
        output.hide(secrets)
        if any(0 < len(s) < output.MIN_MASKED for s in secrets):
            output.info(
                f"note: the --database-url password has fewer than {output.MIN_MASKED} "
                "characters: it is masked where a URL shows it, not wherever its letters "
                "appear"
            )

    def env_path(var: str) -> Path | None:
        value = os.environ.get(var)
        return Path(value) if value and resolved == "github" else None

    # the job summary links a finding's file and line at the commit the run checked
    server, repo, sha = (
        os.environ.get(v, "").rstrip("/")
        for v in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_SHA")
    )
    blob_url = f"{server}/{repo}/blob/{sha}" if server and repo and sha else None

    return ReportOptions(
        format=resolved,
        report_json=report_json,
        junit=junit,
        sarif=sarif,
        gitlab_codequality=gitlab_codequality,
        github_step_summary=env_path("GITHUB_STEP_SUMMARY"),
        github_output=env_path("GITHUB_OUTPUT"),
        blob_url=blob_url if resolved == "github" else None,
        secrets=secrets,
        project_name=settings.project_dir.resolve().name,
        verbose=verbose,
    )


def main(argv: list[str] | None = None) -> int:
    # CI cancels a job with SIGTERM: unwind like Ctrl-C so every database and container
    # is removed (exit 130) instead of dying with them left behind
    with suppress(ValueError):  # not the main thread (embedded in another program)
        signal.signal(signal.SIGTERM, interrupt_on_signal)
        # Ctrl-C raises KeyboardInterrupt again from here on (__main__ quit at once
        # while starting): run_guarded unwinds it, removing what the run made
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        app(args=argv, prog_name="alembic-preflight")
    except SystemExit as e:  # Typer ends every run this way; usage errors exit 2
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except KeyboardInterrupt:  # while the command line is read, before run_guarded
        output.error("interrupted")
        return EXIT_INTERRUPTED
    return 0


def run() -> NoReturn:
    """The console script: main(), then out at once. By then every database, container and
    worker is gone and the reports are written; the interpreter's orderly teardown of
    SQLAlchemy, Alembic and friends would only add a few hundred milliseconds."""
    try:
        code = main()
    finally:
        close_unused()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
