"""Errors meant for the user; error_handler maps them to exit codes."""

from __future__ import annotations

import signal
from types import FrameType
from typing import NoReturn

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INFRA = 3
EXIT_INTERRUPTED = 130


class PreflightError(RuntimeError):
    """An error whose message is for the user (no traceback)."""

    exit_code = EXIT_USAGE


class ConfigError(PreflightError):
    """Bad flags, settings files or alembic.ini: exit 2."""


class RefusedTarget(PreflightError):
    """A database the verifier will not touch: exit 2, nothing done."""


class ProvisionError(PreflightError):
    """No PostgreSQL could be started or reached: exit 3."""

    exit_code = EXIT_INFRA


class WorkerError(PreflightError):
    """The process running the user's migrations died or hung."""

    exit_code = EXIT_INFRA


class ReportNotWritten(PreflightError):
    """A report file could not be written (a full disk, a directory given): exit 3."""

    exit_code = EXIT_INFRA


class InternalError(PreflightError):
    """Something we read disagrees with what Alembic does: nothing can be trusted. Exit 3."""

    exit_code = EXIT_INFRA


def interrupt_on_signal(signum: int, frame: FrameType | None) -> NoReturn:
    """A SIGTERM handler: unwind like Ctrl-C (exit 130), so every database, container and
    worker is removed; CI cancels a job with SIGTERM, and a Python PID 1 ignores it unless
    a handler is installed. A second one must not cut that cleanup short."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt(f"signal {signum}")
