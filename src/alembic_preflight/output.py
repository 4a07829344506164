"""The only module besides the reporters that writes to the terminal: progress and errors
go to stderr, so stdout stays for reports (and GitHub workflow commands)."""

from __future__ import annotations

import sys

from alembic_preflight.findings import CheckResult


def progress(result: CheckResult) -> None:
    note = f" ({result.note})" if result.note and result.status.value == "skipped" else ""
    count = len(result.findings)
    found = f", {count} finding{'s' if count != 1 else ''}" if count else ""
    print(
        f"alembic-preflight: {result.id}: {result.status.value} in {result.duration_s:.1f} s"
        f"{found}{note}",
        file=sys.stderr,
        flush=True,
    )


def info(message: str) -> None:
    print(f"alembic-preflight: {message}", file=sys.stderr, flush=True)


def error(message: str) -> None:
    print(f"alembic-preflight: error: {message}", file=sys.stderr, flush=True)
