"""The command line's options in one table: each flag, its help, and how its value
becomes a Settings field (or a report option).

Why a table (issue 14): written as Typer parameters, thirty options were three hundred
lines of the same shape, and the mapping to Settings was a second, untyped list beside
them, where a flag could be lost. Here each flag is said once; cli.py builds the Typer
signature from the table, and `settings_values` hands build_settings only fields it has
(checked at import)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Annotated, Any

import typer

from alembic_preflight.errors import ConfigError
from alembic_preflight.settings import (
    ALL_CHECKS,
    DATABASES,
    DRIVERS,
    FAIL_ON,
    IRREVERSIBLE,
    FailOn,
    Settings,
)

DB = "Database"
PROJ = "Project"
CHK = "Checks"
WALK = "Stepwise: the per-revision walk"
LOCKS = "Locks: blocking statements, projected to production sizes"
SCOPE = "Pull requests and baselines"
OUT = "Reports"


def _same(value: Any) -> Any:
    return value


def _csv(values: list[str] | None) -> tuple[str, ...] | None:
    if not values:
        return None
    return tuple(v.strip() for item in values for v in item.split(",") if v.strip())


def _table_rows(values: list[str] | None) -> dict[str, int] | None:
    """--table-rows orders=5e7 (repeatable, or comma-separated)."""
    from alembic_preflight.settings import rows_count

    if not values:
        return None
    out: dict[str, int] = {}
    for item in (v for value in values for v in value.split(",") if v.strip()):
        name, sep, rows = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--table-rows takes TABLE=ROWS, e.g. orders=5e7 (got {item!r})")
        try:
            out[name.strip()] = rows_count(rows)
        except ValueError as e:
            raise ConfigError(f"--table-rows {item}: {e}") from None
    return out


def _strings(values: list[str] | None) -> tuple[str, ...] | None:
    return tuple(values) if values else None


def _choice(flag: str, choices: tuple[str, ...]) -> Callable[[str | None], str | None]:
    def parse(value: str | None) -> str | None:
        if value is not None and value not in choices:
            raise ConfigError(f"{flag} must be one of {', '.join(choices)} (got {value!r})")
        return value

    return parse


def _fail_on(value: str | None) -> FailOn | None:
    if value is None:
        return None
    if value not in FAIL_ON:
        raise ConfigError(f"--fail-on must be error, warning or never (got {value!r})")
    return FailOn(value)


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


def _from_here(path: Path | None) -> Path | None:
    """A path typed on the command line is relative to where it was typed (one in the
    settings file, to the project directory)."""
    return None if path is None else path.absolute()


@dataclass(frozen=True)
class Flag:
    name: str  # the parameter, and the Settings field (or report option) it fills
    kind: Any  # what Typer parses the value as
    option: tuple[str, ...]  # its spellings on the command line
    help: str
    panel: str
    parse: Callable[[Any], Any] = _same  # the raw value -> the field's value (or an error)
    envvar: str | None = None
    default: Any = None
    # what --help calls the value (FILE, REF, N); a switch takes none. Without one, Typer
    # shows the Python type (`<str>`, `<list[str]>`, `<bool>`)
    metavar: str = ""

    @property
    def is_switch(self) -> bool:
        return self.kind in (bool, bool | None)

    def parameter(self) -> inspect.Parameter:
        info = typer.Option(
            *self.option,
            envvar=self.envvar,
            help=self.help,
            rich_help_panel=self.panel,
            metavar=self.metavar,
        )
        return inspect.Parameter(
            self.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=self.default,
            annotation=Annotated[self.kind, info],
        )


SETTINGS_FLAGS: tuple[Flag, ...] = (
    Flag(
        "config",
        Path | None,
        ("--config", "-c"),
        "alembic.ini elsewhere than PROJECT_DIR.",
        PROJ,
        metavar="FILE",
    ),
    Flag(
        "name",
        str | None,
        ("--name",),
        "The alembic.ini section (default: alembic).",
        PROJ,
        metavar="SECTION",
    ),
    Flag(
        "url_env",
        list[str] | None,
        ("--url-env",),
        "Environment variable env.py reads its URL from; repeatable (default: DATABASE_URL). "
        "Another one env.py reads is found, set and reported.",
        PROJ,
        _csv,
        metavar="NAME",
    ),
    Flag(
        "driver",
        str | None,
        ("--driver",),
        "Driver in the URL handed to env.py: psycopg (default; sync and async), asyncpg, psycopg2.",
        PROJ,
        _choice("--driver", DRIVERS),
        metavar="NAME",
    ),
    Flag(
        "x",
        list[str] | None,
        ("-x",),
        "Extra KEY=VALUE for env.py's context.get_x_argument(); repeatable.",
        PROJ,
        _strings,
        metavar="KEY=VALUE",
    ),
    Flag(
        "database",
        str | None,
        ("--database",),
        "Where PostgreSQL comes from: auto (local server binaries when there are some and no "
        "image or version is asked for, else Docker, else embedded), container, embedded, url.",
        DB,
        _choice("--database", DATABASES),
        metavar="SOURCE",
    ),
    Flag(
        "database_url",
        str | None,
        ("--database-url",),
        "A server you provide (implies --database url). A fresh database is created there and "
        "dropped afterwards.",
        DB,
        envvar="PREFLIGHT_DATABASE_URL",
        metavar="URL",
    ),
    Flag(
        "allow_non_empty",
        bool | None,
        ("--allow-non-empty",),
        "With --database-url and no CREATEDB right: use the named database even if it holds "
        "tables (it is wiped).",
        DB,
    ),
    Flag(
        "pg_bin",
        Path | None,
        ("--pg-bin",),
        "Directory of the PostgreSQL server binaries (embedded).",
        DB,
        metavar="DIR",
    ),
    Flag(
        "postgres_image",
        str | None,
        ("--postgres-image",),
        "Image for --database container (default postgres:17-alpine).",
        DB,
        metavar="IMAGE",
    ),
    Flag(
        "postgres_version",
        int | None,
        ("--postgres-version",),
        "Shortcut for --postgres-image postgres:N-alpine.",
        DB,
        metavar="N",
    ),
    Flag(
        "checks",
        list[str] | None,
        ("--checks",),
        f"Comma-separated checks to run (default: all): {', '.join(ALL_CHECKS)}.",
        CHK,
        _csv,
        metavar="a,b,...",
    ),
    Flag(
        "skip",
        list[str] | None,
        ("--skip",),
        "Comma-separated checks not to run.",
        CHK,
        _csv,
        metavar="a,b,...",
    ),
    Flag(
        "fail_on",
        str | None,
        ("--fail-on",),
        "Fail on findings of this severity or worse: error (default), warning; or never: "
        "report only, exit 0 unless nothing was verified.",
        CHK,
        _fail_on,
        metavar="SEVERITY",
    ),
    Flag(
        "step_timeout",
        float | None,
        ("--step-timeout",),
        "Seconds one migration step may take (default 300).",
        CHK,
        metavar="SECONDS",
    ),
    Flag(
        "irreversible",
        str | None,
        ("--irreversible",),
        "Downgrades that raise on purpose: warn (default), error, allow.",
        CHK,
        _choice("--irreversible", IRREVERSIBLE),
        metavar="MODE",
    ),
    Flag(
        "skip_revisions",
        list[str] | None,
        ("--skip-revisions",),
        "Revisions to stamp instead of run, in every check (comma-separated ids, prefixes or "
        "labels): their upgrade() and downgrade() are not called, the version table moves.",
        CHK,
        _csv,
        metavar="a,b,...",
    ),
    Flag(
        "bootstrap",
        str | None,
        ("--bootstrap",),
        "A .sql file or module:function run before the first upgrade.",
        CHK,
        metavar="FILE|MOD:FN",
    ),
    Flag(
        "downgrade_floor",
        str | None,
        ("--downgrade-floor",),
        "Do not try downgrades of this revision and those below it.",
        WALK,
        metavar="REV",
    ),
    Flag(
        "table_rows",
        list[str] | None,
        ("--table-rows",),
        "A table's size in production, for the locks check's projections: TABLE=ROWS "
        "(repeatable, e.g. orders=5e7).",
        LOCKS,
        _table_rows,
        metavar="TABLE=ROWS",
    ),
    Flag(
        "table_stats",
        Path | None,
        ("--table-stats",),
        "A file of production table sizes, a `table,rows` line each (the README's query "
        "writes it); --table-rows wins.",
        LOCKS,
        metavar="FILE",
    ),
    Flag(
        "lock_budget",
        float | None,
        ("--lock-budget",),
        "Seconds a deploy may block a table of known size before locks says error (default 2).",
        LOCKS,
        metavar="SECONDS",
    ),
    Flag(
        "sample_rows",
        int | None,
        ("--sample-rows",),
        "Rows a risky statement is timed on to project it (default 20000; 0: no timing).",
        LOCKS,
        metavar="N",
    ),
    Flag(
        "seed_data",
        bool | None,
        ("--seed-data/--no-seed-data",),
        "Put synthetic rows in tables before each revision.",
        WALK,
    ),
    Flag(
        "jobs",
        int | None,
        ("--jobs", "-j"),
        "Parallel databases for the per-revision walk (default: cores, at most 2); with more "
        "than 1, the walk starts while upgrade, drift and roundtrip run.",
        WALK,
        metavar="N",
    ),
    Flag(
        "shard",
        str | None,
        ("--shard",),
        "Run the K-th of N shares of the per-revision work (a CI matrix).",
        WALK,
        _shard,
        metavar="K/N",
    ),
    Flag(
        "changed_since",
        str | None,
        ("--changed-since",),
        "Pull-request scope: the team's conventions (lint's naming, message and style "
        "rules) look only at revisions added or changed since this git ref; the rules "
        "about whether a migration can run or be undone, and every database check, still "
        "cover the whole history.",
        SCOPE,
        metavar="REF",
    ),
    Flag(
        "base_ref",
        str | None,
        ("--base-ref",),
        "Merge preview: check the revision graph together with this git ref's revisions; "
        "also the pull-request scope of --changed-since when that is not given.",
        SCOPE,
        metavar="REF",
    ),
    Flag(
        "baseline",
        Path | None,
        ("--baseline",),
        "Findings accepted on the existing history (written by `alembic-preflight baseline`;"
        " default: .alembic-preflight-baseline.json in PROJECT_DIR when present).",
        SCOPE,
        _from_here,
        metavar="FILE",
    ),
    Flag(
        "no_baseline",
        bool | None,
        ("--no-baseline",),
        "Ignore the baseline file: every finding counts.",
        SCOPE,
    ),
)

REPORT_FLAGS: tuple[Flag, ...] = (
    Flag(
        "output_format",
        str,
        ("--format",),
        "auto (github when GITHUB_ACTIONS=true), console, github.",
        OUT,
        default="auto",
        metavar="FORMAT",
    ),
    Flag(
        "report_json",
        Path | None,
        ("--report-json",),
        "Write the JSON report here.",
        OUT,
        metavar="FILE",
    ),
    Flag("junit", Path | None, ("--junit",), "Write a JUnit XML report here.", OUT, metavar="FILE"),
    Flag(
        "sarif", Path | None, ("--sarif",), "Write a SARIF 2.1.0 report here.", OUT, metavar="FILE"
    ),
    Flag(
        "gitlab_codequality",
        Path | None,
        ("--gitlab-codequality",),
        "Write a GitLab Code Quality report here.",
        OUT,
        metavar="FILE",
    ),
    Flag(
        "verbose",
        bool,
        ("--verbose", "-v"),
        "Print every finding in full on the console (by default: at most 10 entries per "
        "section, details cut to 6 lines). The report files always have everything.",
        OUT,
        default=False,
    ),
)

# merge-reports judges the merged report as verify judges a run
MERGE_FLAGS: tuple[Flag, ...] = (
    replace(
        next(f for f in SETTINGS_FLAGS if f.name == "fail_on"),
        help="Fail on findings of this severity or worse: error, warning; or never: report "
        "only, exit 0 unless a check verified nothing. Default: the strictest --fail-on the "
        "reports were made with.",
        panel=CHK,
    ),
)

# every flag that takes a value names it in --help
_UNNAMED = [
    f.option[0]
    for f in (*SETTINGS_FLAGS, *REPORT_FLAGS, *MERGE_FLAGS)
    if not f.metavar and not f.is_switch
]
assert not _UNNAMED, f"flags without a metavar: {_UNNAMED}"

# every settings flag names a field build_settings knows (`skip` is folded into `checks`)
_FIELDS = {f.name for f in fields(Settings)} | {"skip"}
assert {f.name for f in SETTINGS_FLAGS} <= _FIELDS, {f.name for f in SETTINGS_FLAGS} - _FIELDS


def settings_values(given: Mapping[str, Any]) -> dict[str, Any]:
    """The Settings fields the command line sets, parsed and validated."""
    return {f.name: f.parse(given.get(f.name, f.default)) for f in SETTINGS_FLAGS}


def report_values(given: Mapping[str, Any]) -> dict[str, Any]:
    return {f.name: given.get(f.name, f.default) for f in REPORT_FLAGS}


def merge_values(given: Mapping[str, Any]) -> dict[str, Any]:
    """merge-reports' own flags, parsed and validated."""
    return {f.name: f.parse(given.get(f.name, f.default)) for f in MERGE_FLAGS}


def with_flags(
    func: Callable[..., Any], flags: Iterable[Flag], leading: Iterable[inspect.Parameter] = ()
) -> Callable[..., Any]:
    """`func(**given)` as Typer sees a command: its parameters are the flags (after any
    `leading` ones, such as an argument)."""
    params = [*leading, *(f.parameter() for f in flags)]
    func.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    func.__annotations__ = {p.name: p.annotation for p in params}
    return func
