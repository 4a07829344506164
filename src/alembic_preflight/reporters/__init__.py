"""Reporters: every output format, fed from one `Report`; the CLI calls `emit` only.

File formats are listed in `FILE_REPORTERS` (option name -> render function), so adding a
format is one module and one line here. Reporters never run SQL and never import checks.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console

from alembic_preflight.errors import ReportNotWritten
from alembic_preflight.findings import CheckResult, Finding, Report
from alembic_preflight.output import masked, spellings
from alembic_preflight.reporters import console as console_reporter
from alembic_preflight.reporters import github, gitlab, junit, sarif
from alembic_preflight.reporters import json as json_reporter

FORMATS = ("console", "github")

# ReportOptions attribute -> render(report) -> file text
FILE_REPORTERS: dict[str, Callable[[Report], str]] = {
    "report_json": json_reporter.render,
    "junit": junit.render,
    "sarif": sarif.render,
    "gitlab_codequality": gitlab.render,
}


@dataclass(frozen=True)
class ReportOptions:
    format: str = "console"  # console | github; the CLI resolves "auto"
    console: Console | TextIO | None = None  # None: stdout
    report_json: Path | None = None
    junit: Path | None = None
    sarif: Path | None = None
    gitlab_codequality: Path | None = None
    github_step_summary: Path | None = None  # $GITHUB_STEP_SUMMARY
    github_output: Path | None = None  # $GITHUB_OUTPUT
    # $GITHUB_SERVER_URL/$GITHUB_REPOSITORY/blob/$GITHUB_SHA: the job summary links there
    blob_url: str | None = None
    secrets: tuple[str, ...] = ()  # masked in every output (passwords in URLs, tokens)
    project_name: str = ""
    verbose: bool = False  # the console prints every entry and detail in full

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, got {self.format!r}")


def emit(report: Report, options: ReportOptions) -> None:
    """Write every requested report: files first (so a broken terminal cannot lose them),
    then the GitHub job summary and outputs, then the terminal."""
    secrets = spellings(options.secrets)
    report = scrub(redact(report, secrets))
    unwritten: list[str] = []
    for attr, render in FILE_REPORTERS.items():
        path: Path | None = getattr(options, attr)
        if path is not None:
            try:
                write_atomic(path, render(report))
            except OSError as e:  # the other reports and the terminal still get theirs
                flag = "--" + attr.replace("_", "-")
                unwritten.append(f"{flag} {path}: {e.strerror or e}")
    if options.github_step_summary is not None:
        text = github.summary(report, options.project_name, options.report_json, options.blob_url)
        github.append(options.github_step_summary, text)
    if options.github_output is not None:
        github.append(options.github_output, github.outputs(report, options.report_json))
    console = as_console(options.console)
    if options.format != "github":
        console_reporter.write(report, console, options.project_name, options.verbose)
    else:
        # workflow commands go to the console's own stream so they interleave in order
        # with the report they fence; the runner reads commands from stdout and stderr
        stream = console.file
        token = github.new_token()
        github.begin(report, stream, secrets, token)
        try:
            console_reporter.write(report, console, options.project_name, options.verbose)
        finally:
            github.end(stream, token)
    if unwritten:
        raise ReportNotWritten("a report could not be written: " + "; ".join(unwritten))


def as_console(target: Console | TextIO | None) -> Console:
    if isinstance(target, Console):
        return target
    # rich turns colour off when the stream is not a TTY and honours NO_COLOR itself;
    # the explicit check keeps that true even where FORCE_COLOR is also set.
    no_color = bool(os.environ.get("NO_COLOR"))
    return Console(file=target or sys.stdout, no_color=no_color or None, highlight=False)


def write_atomic(path: Path, text: str) -> None:
    """Readers (CI artifact upload, a concurrent merge) never see half a file. What is
    not a regular file is written in place, never replaced (as root, replacing /dev/full
    or /dev/stdout would replace the device); a link is followed to its file."""
    if path.is_symlink():
        path = path.resolve()
    if path.exists() and not path.is_file():
        if path.is_dir():
            raise IsADirectoryError(f"{path} is a directory")
        with open(path, "w", encoding="utf-8", errors="replace", newline="\n") as f:
            f.write(text)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="replace", newline="\n") as f:
            f.write(text)
        # mkstemp makes it 0600; a report is for others to read (CI artifact uploaders)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def scrub(value: Any) -> Any:
    """The report with text every writer can encode (issue 15): a lone surrogate (from an
    error message, or a file name's undecodable byte) becomes U+FFFD instead of stopping
    the report. Walks the record's dataclasses, tuples and dicts."""
    if isinstance(value, enum.Enum):  # Severity, Status: text of ours
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {
            f.name: scrub(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init
        }
        return replace(value, **changes)
    if isinstance(value, tuple):
        return tuple(scrub(v) for v in value)
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    return value


def redact(report: Report, secrets: tuple[str, ...]) -> Report:
    """The report with every secret replaced by ***, in all text a migration could echo."""

    def clean(text: str | None) -> str | None:
        return None if text is None else masked(text, secrets)

    def clean_finding(f: Finding) -> Finding:
        return replace(
            f,
            message=clean(f.message) or "",
            detail=clean(f.detail),
            fix=clean(f.fix),
            traceback=clean(f.traceback),
        )

    def clean_check(c: CheckResult) -> CheckResult:
        return replace(c, note=clean(c.note), findings=tuple(clean_finding(f) for f in c.findings))

    cleaned = replace(
        report,
        checks=tuple(clean_check(c) for c in report.checks),
        not_verified=clean(report.not_verified),
    )
    return report if cleaned == report else cleaned  # nothing to mask: the same record
