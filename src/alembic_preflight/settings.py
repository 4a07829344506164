"""Frozen Settings from flags, `[tool.alembic-preflight]` in pyproject.toml and
`.alembic-preflight.yml`; flags override files, an unknown key is an error."""

from __future__ import annotations

import enum
import importlib.util
import math
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from alembic_preflight import settings_toml
from alembic_preflight.errors import ConfigError
from alembic_preflight.findings import Severity

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ALL_CHECKS = (
    "graph",
    "lint",
    "upgrade",
    "drift",
    "compat",
    "roundtrip",
    "locks",
    "stepwise",
)
# the checks that run against PostgreSQL (each check's NEEDS_DB says so too)
DATABASE_CHECKS = frozenset({"upgrade", "drift", "compat", "roundtrip", "locks", "stepwise"})
DATABASES = ("auto", "container", "embedded", "url")
DRIVERS = ("psycopg", "asyncpg", "psycopg2")
IRREVERSIBLE = ("warn", "error", "allow")
YAML_NAMES = (".alembic-preflight.yml", ".alembic-preflight.yaml")


class FailOn(str, enum.Enum):
    """`--fail-on`: findings of this severity or worse fail the run, or `never` (report
    only: everything is reported, and the exit code is 0 unless nothing was verified)."""

    ERROR = "error"
    WARNING = "warning"
    NEVER = "never"

    @property
    def threshold(self) -> Severity:
        """The severity at which a finding fails its check: what `passed`, `failed-checks`
        and every report say. `never` judges as `error` does, so a report-only run still
        says truthfully which checks failed; only its exit code differs."""
        return Severity.WARNING if self is FailOn.WARNING else Severity.ERROR


FAIL_ON = tuple(f.value for f in FailOn)


# The kinds of names `lint.prefixes` sets (the lint check's own list: checks/lint/visitor.py)
PREFIX_KINDS = ("ck", "fk", "ix", "pk", "uq")


@dataclass(frozen=True)
class LintSettings:
    disable: tuple[str, ...] = ()
    enable: tuple[str, ...] = ()  # rules off by default that the team turns on
    severity: Mapping[str, Severity] = field(default_factory=dict)
    prefixes: Mapping[str, str] = field(
        default_factory=lambda: {"fk": "fk_", "ix": "ix_", "uq": "uq_", "ck": "ck_"}
    )


@dataclass(frozen=True)
class Settings:
    project_dir: Path = Path(".")
    config: Path | None = None  # alembic.ini; default PROJECT_DIR/alembic.ini
    name: str = "alembic"  # ini section
    url_env: tuple[str, ...] = ("DATABASE_URL",)
    driver: str = "psycopg"
    x: tuple[str, ...] = ()  # extra -x key=value for env.py
    database: str = "auto"
    database_url: str | None = None
    pg_bin: Path | None = None
    postgres_image: str | None = None
    postgres_version: int | None = None
    allow_non_empty: bool = False
    checks: tuple[str, ...] = ALL_CHECKS
    fail_on: FailOn = FailOn.ERROR
    step_timeout: float = 300.0
    irreversible: str = "warn"
    downgrade_floor: str | None = None
    skip_revisions: tuple[str, ...] = ()
    seed_data: bool = True
    # the locks check: production sizes (table -> rows), the longest block a deploy may
    # cause, and the rows a risky statement is timed on to project it
    table_rows: Mapping[str, int] = field(default_factory=dict)
    table_stats: Path | None = None  # read into table_rows (which wins) by build_settings
    lock_budget: float = 2.0
    sample_rows: int = 20_000
    data: Mapping[str, Mapping[str, list[dict[str, Any]]]] = field(default_factory=dict)
    bootstrap: str | None = None
    lint: LintSettings = field(default_factory=LintSettings)
    # "rule" or "check/rule" -> its severity, or None: switched off (any check's rule)
    rules: Mapping[str, Severity | None] = field(default_factory=dict)
    changed_since: str | None = None
    base_ref: str | None = None
    shard: tuple[int, int] | None = None  # (k, n), 1-based k
    jobs: int = 0  # parallel workers; 0 = one per core, at most 2
    baseline: Path | None = None  # relative to project_dir; default: its baseline file
    no_baseline: bool = False
    # `alembic-preflight lint FILE...` (the pre-commit hook): lint looks at these revision
    # files only (resolved paths); None = every file. Not a flag of verify, nor a file key.
    files: frozenset[Path] | None = None
    # the settings file read, and the fields whose value came from it (not a flag): where
    # an error about a value says it was given
    settings_file: Path | None = None
    from_file: frozenset[str] = frozenset()

    def given_at(self, key: str, entry: str | None = None) -> str | None:
        """`FILE:LINE` (or `FILE`) where the settings file gives setting `key` (as a file
        spells it; with `entry`, that entry of it: a `data:` revision, a `rules:` name),
        or None when a flag or the default gave its value."""
        if entry is None:
            return in_file(self.settings_file, self.from_file, key)
        path = _gave(self.settings_file, self.from_file, key)
        return None if path is None else where_entry(path, key, entry)

    def place_of(self, key: str, entry: str | tuple[str, ...]) -> tuple[Path, int | None] | None:
        """The settings file and line (None when it cannot be told) of entry `entry` of
        setting `key` (`lint`'s ("severity", RULE)), or None when a flag or the default
        gave the setting."""
        path = _gave(self.settings_file, self.from_file, key)
        return None if path is None else (path, _line_of_entry(path, key, entry))

    def source_of(self, key: str, entry: str | None = None) -> str:
        """Where setting `key` was given, to begin an error about its value:
        "FILE:LINE: `key`" from the settings file, else the flag `--key` (`data` has none)."""
        at = self.given_at(key, entry)
        if at is not None:
            return f"{at}: `{key}`"
        return f"`{key}`" if key == "data" else f"--{key}"

    @property
    def baseline_path(self) -> Path | None:
        """The baseline file to use: the one named, else the project's when present."""
        if self.no_baseline:
            return None
        if self.baseline is not None:
            return (
                self.baseline if self.baseline.is_absolute() else self.project_dir / self.baseline
            )
        default = self.project_dir / ".alembic-preflight-baseline.json"
        return default if default.is_file() else None

    @property
    def ini_path(self) -> Path:
        return self.config if self.config is not None else self.project_dir / "alembic.ini"

    @property
    def lanes(self) -> int:
        """Worker processes (each with a database of its own) the run uses: none without
        a database check, one without stepwise, else --jobs (0: one per core, at most 2)."""
        if not DATABASE_CHECKS.intersection(self.checks):
            return 0
        if "stepwise" not in self.checks:
            return 1
        return self.jobs if self.jobs > 0 else max(1, min(2, os.cpu_count() or 1))


# file key -> (Settings attribute, parser)
def _str(v: Any, key: str) -> str:
    if not isinstance(v, str | int | float) or isinstance(v, bool):
        raise ValueError(f"`{key}` must be a string")
    return str(v)


def _bool(v: Any, key: str) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"`{key}` must be true or false")
    return v


def _strs(v: Any, key: str) -> tuple[str, ...]:
    if isinstance(v, str):
        return tuple(s.strip() for s in v.split(",") if s.strip())
    if isinstance(v, list) and all(isinstance(s, str) for s in v):
        return tuple(v)
    raise ValueError(f"`{key}` must be a list of strings")


def _choice(choices: tuple[str, ...]) -> Any:
    def parse(v: Any, key: str) -> str:
        if v not in choices:
            raise ValueError(f"`{key}` must be one of {', '.join(choices)} (got {v!r})")
        return str(v)

    return parse


def _number(v: Any, key: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"`{key}` must be a number (got {v!r})")
    return float(v)


def _integer(v: Any, key: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"`{key}` must be a whole number (got {v!r})")
    return v


def rows_count(v: Any) -> int:
    """A row count as people write one: 50000000, 5e7, "50_000_000", "50,000,000"."""
    if isinstance(v, bool):
        raise ValueError(f"not a number of rows: {v!r}")
    if isinstance(v, str):
        text = v.strip().replace("_", "").replace(",", "")
        try:
            v = float(text) if any(c in text for c in ".eE") else int(text)
        except ValueError:
            raise ValueError(f"not a number of rows: {v!r}") from None
    if isinstance(v, float):
        if not math.isfinite(v) or v != int(v):
            raise ValueError(f"not a whole number of rows: {v!r}")
        v = int(v)
    if not isinstance(v, int) or v < 0:
        raise ValueError(f"not a number of rows: {v!r}")
    return v


def _table_rows(v: Any, key: str) -> Mapping[str, int]:
    if not isinstance(v, dict):
        raise ValueError(f"`{key}` must map table names to row counts (orders: 50_000_000)")
    out: dict[str, int] = {}
    for name, rows in v.items():
        try:
            out[str(name)] = rows_count(rows)
        except ValueError as e:
            raise _EntryError(f"`{key}.{name}`: {e}", str(name)) from None
    return out


def read_table_stats(path: Path) -> dict[str, int]:
    """`--table-stats FILE`: a line per table, its name and rows separated by `,`, `|`, a
    tab or spaces (psql -At output); blank lines and `#` comments are skipped; tables
    never analyzed (-1 rows) too."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the table stats: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8") from None
    out: dict[str, int] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = re.split(r"\s*[,|\t]\s*|\s+", line)
        if len(parts) != 2:
            raise ConfigError(f"{path}:{n}: expected `table,rows` (got {line[:80]!r})")
        name, rows = parts
        if rows.strip().startswith("-"):
            continue  # reltuples -1: never vacuumed or analyzed, size unknown
        try:
            out[name] = rows_count(rows)
        except ValueError as e:
            raise ConfigError(f"{path}:{n}: {e}") from None
    return out


class _EntryError(ValueError):
    """A bad value in one entry of a mapping setting (`rules:`'s `multiple-heads`): the
    error is placed at that entry's line, not at the setting's."""

    def __init__(self, message: str, entry: str | tuple[str, ...]) -> None:
        super().__init__(message)
        self.entry = entry  # a name, or a path of names deeper down (`severity`, a rule)


def _severity(v: Any, key: str) -> Severity:
    try:
        return Severity(v)
    except ValueError:
        raise ValueError(f"`{key}` must be error or warning (got {v!r})") from None


def _fail_on(v: Any, key: str) -> FailOn:
    try:
        return FailOn(v)
    except ValueError:
        raise ValueError(f"`{key}` must be error, warning or never (got {v!r})") from None


def _data(v: Any, key: str) -> Mapping[str, Mapping[str, list[dict[str, Any]]]]:
    if not isinstance(v, dict):
        raise ValueError(f"`{key}` must map revision -> table -> list of rows ({{column: value}})")
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for rev, tables in v.items():
        if not isinstance(tables, dict):
            raise _EntryError(
                f"`{key}.{rev}` must map table -> list of rows ({{column: value}})", (str(rev),)
            )
        for table, rows in tables.items():
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise _EntryError(
                    f"`{key}.{rev}.{table}` must be a list of rows ({{column: value}})",
                    (str(rev), str(table)),
                )
        out[str(rev)] = {str(t): list(rows) for t, rows in tables.items()}
    return out


def _lint(v: Any, key: str) -> LintSettings:
    if not isinstance(v, dict):
        raise ValueError(f"`{key}` must be a table")
    known = {"disable", "enable", "severity", "prefixes"}
    for k in v:
        if k not in known:
            raise _EntryError(
                f"unknown key `{key}.{k}` (known: {', '.join(sorted(known))})", str(k)
            )
    for part in ("severity", "prefixes"):
        if not isinstance(v.get(part, {}), dict):
            raise _EntryError(f"`{key}.{part}` must be a table", part)
    severity: dict[str, Severity] = {}
    for rule, grade in v.get("severity", {}).items():
        try:
            severity[str(rule)] = _severity(grade, f"{key}.severity.{rule}")
        except ValueError as e:
            raise _EntryError(str(e), ("severity", str(rule))) from None
    prefixes = dict(LintSettings().prefixes)
    for kind, prefix in v.get("prefixes", {}).items():
        where = f"`{key}.prefixes.{kind}`"
        if kind not in PREFIX_KINDS:
            raise _EntryError(
                f"{where}: no such kind of name (known: {', '.join(PREFIX_KINDS)})",
                ("prefixes", str(kind)),
            )
        if not isinstance(prefix, str):
            raise _EntryError(
                f"{where} must be text, the start of every such name (got {prefix!r})",
                ("prefixes", str(kind)),
            )
        prefixes[kind] = prefix
    lists = {}
    for part in ("disable", "enable"):
        try:
            lists[part] = _strs(v.get(part, []), f"{key}.{part}")
        except ValueError as e:
            raise _EntryError(str(e), part) from None
    return LintSettings(
        disable=lists["disable"], enable=lists["enable"], severity=severity, prefixes=prefixes
    )


# Rules that mean nothing was verified: a run that hides them would pass on zero work.
FIXED_RULES = frozenset({"internal-error", "env-did-not-migrate", "env-failed"})


def _rules(v: Any, key: str) -> Mapping[str, Severity | None]:
    if not isinstance(v, dict):
        raise ValueError(f"`{key}` must map rule (or check/rule) -> error, warning, notice or off")
    out: dict[str, Severity | None] = {}
    for rule, grade in v.items():
        name = str(rule)
        if name.rpartition("/")[2] in FIXED_RULES:
            raise _EntryError(
                f"`{key}.{name}` cannot be changed: it means the checks could not verify "
                "anything, and a run must not pass on that",
                name,
            )
        # YAML 1.1 reads a bare `off` as false
        if grade is False or grade == "off":
            out[name] = None
            continue
        try:
            out[name] = Severity(grade)
        except ValueError:
            raise _EntryError(
                f"`{key}.{name}` must be error, warning, notice or off (got {grade!r})", name
            ) from None
    return out


FILE_KEYS: dict[str, tuple[str, Any]] = {
    "config": ("config", lambda v, k: Path(_str(v, k))),
    "name": ("name", _str),
    "url-env": ("url_env", _strs),
    "driver": ("driver", _choice(DRIVERS)),
    "x": ("x", _strs),
    "database": ("database", _choice(DATABASES)),
    "database-url": ("database_url", _str),
    "pg-bin": ("pg_bin", lambda v, k: Path(_str(v, k))),
    "postgres-image": ("postgres_image", _str),
    "postgres-version": ("postgres_version", _integer),
    "allow-non-empty": ("allow_non_empty", _bool),
    "checks": ("checks", lambda v, k: _check_names(_strs(v, k), f"`{k}`")),
    "skip": ("skip", lambda v, k: _check_names(_strs(v, k), f"`{k}`")),  # against checks
    "fail-on": ("fail_on", _fail_on),
    "step-timeout": ("step_timeout", _number),
    "irreversible": ("irreversible", _choice(IRREVERSIBLE)),
    "downgrade-floor": ("downgrade_floor", _str),
    "skip-revisions": ("skip_revisions", _strs),
    "seed-data": ("seed_data", _bool),
    "table-rows": ("table_rows", _table_rows),
    "table-stats": ("table_stats", lambda v, k: Path(_str(v, k))),
    "lock-budget": ("lock_budget", _number),
    "sample-rows": ("sample_rows", _integer),
    "data": ("data", _data),
    "bootstrap": ("bootstrap", _str),
    "lint": ("lint", _lint),
    "rules": ("rules", _rules),
    "changed-since": ("changed_since", _str),
    "base-ref": ("base_ref", _str),
    "jobs": ("jobs", _integer),
    "baseline": ("baseline", lambda v, k: Path(_str(v, k))),
}


def find_settings_file(project_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    """The settings file for a project: YAML first, then pyproject.toml's table."""
    for name in YAML_NAMES:
        path = project_dir / name
        if path.is_file():
            from alembic_preflight import settings_yaml

            raw = settings_yaml.load(path) or {}
            if not isinstance(raw, dict):
                raise ConfigError(f"{path}: expected a mapping of settings at the top level")
            return path, raw
    path = project_dir / "pyproject.toml"
    if path.is_file():
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not UTF-8") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML: {e}") from e
        table = doc.get("tool", {}).get("alembic-preflight")
        if table is not None:
            if not isinstance(table, dict):
                raise ConfigError(f"{path}: [tool.alembic-preflight] must be a table")
            return path, table
    return None


def _is_yaml(path: Path) -> bool:
    """Whether `path` is a YAML settings file, read through settings_yaml, imported where
    one is only: PyYAML costs ~20 ms of every start, which a project without such a file
    never needs (settings_yaml.py)."""
    return path.suffix in (".yml", ".yaml")


def data_line(path: Path, revision: str) -> int | None:
    """The line of `data`'s entry for `revision` (its id, a prefix of it or a label) in
    a settings file; the line of `data` itself when none matches; None without it."""

    def names(name: str) -> bool:
        return bool(name) and revision.startswith(name)

    if not _is_yaml(path):
        return settings_toml.path_line(path, {"data"}, (names,))
    from alembic_preflight import settings_yaml

    return settings_yaml.path_line(path, "data", (names,))


def entry_line(path: Path, key: str, entry: str | tuple[str, ...]) -> int | None:
    """The line of `entry` in mapping setting `key` of a settings file (`rules`'s
    `multiple-heads`; a path of names for one deeper down, `lint`'s `severity`'s
    `destructive-upgrade`), else of the nearest found above it; None when none is."""
    names = (entry,) if isinstance(entry, str) else entry
    if not _is_yaml(path):
        return settings_toml.path_line(path, _spellings(key), names)
    from alembic_preflight import settings_yaml

    return settings_yaml.path_line(path, key, names)


def where_set(path: Path, key: str) -> str:
    """`FILE:LINE` of top-level setting `key` in a settings file, or `FILE` alone when its
    line cannot be told."""
    return _at(path, key_line(path, key))


def where_entry(path: Path, key: str, entry: str | tuple[str, ...]) -> str:
    """`FILE:LINE` of entry `entry` of mapping setting `key` in a settings file (a `rules:`
    name; a `data:` revision, named there by prefix or label; a path of names deeper
    down), else of `key`, or `FILE` alone when neither line can be told."""
    return _at(path, _line_of_entry(path, key, entry))


def _line_of_entry(path: Path, key: str, entry: str | tuple[str, ...]) -> int | None:
    """where_entry's line (None when it cannot be told)."""
    if key == "data" and isinstance(entry, str):
        return data_line(path, entry)
    return entry_line(path, key, entry)


def in_file(path: Path | None, from_file: frozenset[str], key: str) -> str | None:
    """where_set of setting `key` when the settings file `path` gave its value (its field
    is in `from_file`), else None (a flag or the default gave it)."""
    gave = _gave(path, from_file, key)
    return None if gave is None else where_set(gave, key)


def _gave(path: Path | None, from_file: frozenset[str], key: str) -> Path | None:
    """The settings file, when it gave setting `key`'s value."""
    return path if path is not None and FILE_KEYS[key][0] in from_file else None


def _at(path: Path, line: int | None) -> str:
    return f"{path}:{line}" if line is not None else str(path)


def key_line(path: Path, key: str) -> int | None:
    """The line (from 1) of top-level setting `key` (either spelling, `-` or `_`) in a YAML
    settings file, or in pyproject.toml's [tool.alembic-preflight] table; None when not
    found."""
    if not _is_yaml(path):
        return settings_toml.key_line(path, _spellings(key))
    from alembic_preflight import settings_yaml

    return settings_yaml.key_line(path, _spellings(key))


def _spellings(key: str) -> set[str]:
    return {key, key.replace("_", "-"), key.replace("-", "_")}


def parse_file_settings(path: Path, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Settings attributes from a file's mapping; errors name the file and the key."""
    values: dict[str, Any] = {}
    for key, value in raw.items():
        norm = str(key).replace("_", "-")
        if norm not in FILE_KEYS:
            raise ConfigError(
                f"{where_set(path, str(key))}: unknown setting `{key}` "
                f"(known: {', '.join(sorted(FILE_KEYS))})"
            )
        attr, parse = FILE_KEYS[norm]
        try:
            values[attr] = parse(value, norm)
        except _EntryError as e:
            raise ConfigError(f"{where_entry(path, str(key), e.entry)}: {e}") from None
        except ValueError as e:
            raise ConfigError(f"{where_set(path, str(key))}: {e}") from None
    if "config" in values and not values["config"].is_absolute():
        values["config"] = path.parent / values["config"]
    if "pg_bin" in values and not values["pg_bin"].is_absolute():
        values["pg_bin"] = path.parent / values["pg_bin"]
    if "table_stats" in values and not values["table_stats"].is_absolute():
        values["table_stats"] = path.parent / values["table_stats"]
    return values


def _check_names(names: tuple[str, ...], said: str) -> tuple[str, ...]:
    """`names`, each a check's; else ValueError beginning with `said` (the setting, or
    the flag, that gave them)."""
    for name in names:
        if name not in ALL_CHECKS:
            raise ValueError(f"{said}: unknown check `{name}` (known: {', '.join(ALL_CHECKS)})")
    return names


def select_checks(checks: tuple[str, ...] | None, skip: tuple[str, ...]) -> tuple[str, ...]:
    """The checks to run, in their order; an unknown name (from a flag: a settings file's
    were checked as it was read) is a ConfigError naming the flag."""
    chosen = checks if checks else ALL_CHECKS
    for flag, names in (("--checks", chosen), ("--skip", skip)):
        try:
            _check_names(names, flag)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    return tuple(c for c in ALL_CHECKS if c in chosen and c not in skip)


def build_settings(project_dir: Path, flags: Mapping[str, Any]) -> Settings:
    """Merge: defaults < settings file < flags (a flag left as None does not override)."""
    if not project_dir.is_dir():
        raise ConfigError(f"{project_dir}: no such project directory")
    merged: dict[str, Any] = {}
    found = find_settings_file(project_dir)
    if found is not None:
        merged.update(parse_file_settings(*found))
    given = {k: v for k, v in flags.items() if v is not None and v != () and v != {}}
    from_file = frozenset(merged) - frozenset(given)
    if "table_rows" in given:  # per table: a flag's entry overrides the file's
        given["table_rows"] = {**merged.get("table_rows", {}), **given["table_rows"]}
    merged.update(given)
    if merged.get("table_stats") is not None:
        merged["table_rows"] = {
            **read_table_stats(merged["table_stats"]),
            **merged.get("table_rows", {}),
        }
    skip = merged.pop("skip", ())
    merged["checks"] = select_checks(merged.get("checks"), tuple(skip))
    names = {f.name for f in fields(Settings)}
    unknown = set(merged) - names
    if unknown:  # a programming error: a flag with no Settings field
        raise AssertionError(f"no Settings field for {sorted(unknown)}")
    check_numbers(merged, found[0] if found else None, from_file)
    if "jobs" in merged:
        merged["jobs"] = _capped_jobs(merged["jobs"])
    settings = replace(
        Settings(),
        project_dir=project_dir,
        settings_file=found[0] if found else None,
        from_file=from_file,
        **merged,
    )
    if settings.database == "url" and not settings.database_url:
        raise ConfigError("--database url needs --database-url")
    if settings.database_url and settings.database == "auto":
        settings = replace(settings, database="url")
    if settings.driver == "psycopg2" and importlib.util.find_spec("psycopg2") is None:
        raise ConfigError(
            "--driver psycopg2 needs the psycopg2 package where the verifier runs: "
            "pip install 'alembic-preflight[psycopg2]'"
        )
    return settings


# --step-timeout becomes PostgreSQL's statement_timeout in milliseconds (an int4): a day
# is far below its limit and above any migration a CI job would wait for
MAX_STEP_TIMEOUT = 86_400.0
MAX_SAMPLE_ROWS = 5_000_000  # a larger sample than this costs more than it tells
LANE_MEMORY = 300 << 20  # a worker and its database, measured ~250 MB at 1000 revisions


def check_numbers(
    values: Mapping[str, Any], source: Path | None, from_file: frozenset[str] = frozenset()
) -> None:
    """Every number in range (issue 15: `--jobs -1`, `--step-timeout nan` or `0` were
    taken, `-5` or `3000000` crashed). The message names the flag, or the line of the
    settings file (`source`) that gave the value (its field in `from_file`)."""

    def named(key: str) -> str:
        at = in_file(source, from_file, key)
        return f"{at}: `{key}`" if at is not None else f"--{key} / {key}"

    timeout = values.get("step_timeout")
    if timeout is not None and not (0 < timeout <= MAX_STEP_TIMEOUT):  # nan fails too
        raise ConfigError(
            f"{named('step-timeout')} must be more than 0 and at most "
            f"{MAX_STEP_TIMEOUT:g} seconds (got {timeout!r})"
        )
    budget = values.get("lock_budget")
    if budget is not None and not (0 < budget <= MAX_STEP_TIMEOUT):
        raise ConfigError(
            f"{named('lock-budget')} must be more than 0 and at most "
            f"{MAX_STEP_TIMEOUT:g} seconds (got {budget!r})"
        )
    sample = values.get("sample_rows")
    if sample is not None and not (0 <= sample <= MAX_SAMPLE_ROWS):
        raise ConfigError(
            f"{named('sample-rows')} must be between 0 (no timing) and "
            f"{MAX_SAMPLE_ROWS:,} (got {sample!r})"
        )
    jobs = values.get("jobs")
    if jobs is not None and jobs < 1:
        raise ConfigError(f"{named('jobs')} must be at least 1 (got {jobs!r})")
    version = values.get("postgres_version")
    if version is not None and not (9 <= version <= 99):
        raise ConfigError(
            f"{named('postgres-version')} must be a PostgreSQL major "
            f"version such as 16 (got {version!r})"
        )


def _capped_jobs(jobs: int) -> int:
    """No more lanes than this machine holds: each is a worker process and a database."""
    cores = os.cpu_count() or 1
    try:
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not on every platform
        memory = 4 * cores * LANE_MEMORY
    most = max(1, min(2 * cores, memory // LANE_MEMORY))
    if jobs <= most:
        return jobs
    from alembic_preflight import output

    output.info(
        f"notice: --jobs {jobs} is more than this machine holds ({cores} cores, "
        f"{memory >> 30} GiB): using {most}"
    )
    return most
