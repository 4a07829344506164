"""`baseline`: run what `verify` runs and write every finding to the project's baseline
file, so later runs accept them and fail only on new ones (issue 17)."""

from __future__ import annotations

from dataclasses import replace

from alembic_preflight import __version__, output
from alembic_preflight.baseline import FILE_NAME, render
from alembic_preflight.commands.verify import run_verify
from alembic_preflight.errors import EXIT_INFRA, EXIT_OK, ReportNotWritten
from alembic_preflight.reporters import ReportOptions, emit, write_atomic
from alembic_preflight.settings import Settings
from alembic_preflight.worker.client import Prewarmed


def write_baseline(
    settings: Settings, options: ReportOptions, prewarmed: Prewarmed | None = None
) -> int:
    # the baseline names everything found: an older baseline must not hide any of it
    report, secrets = run_verify(replace(settings, no_baseline=True), prewarmed)
    options = replace(options, secrets=(*options.secrets, *secrets))
    emit(report, options)
    if report.not_verified:
        output.error("the baseline was not written: the run verified nothing to accept")
        return EXIT_INFRA
    path = settings.baseline or settings.project_dir / FILE_NAME
    if not path.is_absolute():
        path = settings.project_dir / path
    text = output.masked(render(report.findings, __version__), output.spellings(options.secrets))
    try:
        write_atomic(path, text)
    except OSError as e:
        raise ReportNotWritten(f"{path}: the baseline cannot be written: {e.strerror or e}") from e
    count = sum(1 for _ in report.findings)
    output.info(
        f"baseline written: {path} ({count} finding{'s' if count != 1 else ''}); commit it, "
        "and `verify` fails only on new ones"
    )
    return EXIT_OK
