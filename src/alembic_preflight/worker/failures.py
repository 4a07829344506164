"""A failure as plain data: where in the user's code it happened, and its traceback."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from types import TracebackType

from alembic_preflight.worker.protocol import Failure, WorkerInit


def frames(tb: TracebackType | None) -> Iterator[tuple[str, int]]:
    while tb is not None:
        yield tb.tb_frame.f_code.co_filename, tb.tb_lineno
        tb = tb.tb_next


def deepest(
    frames: list[tuple[str, int]], wanted: Callable[[str], bool]
) -> tuple[str | None, int | None]:
    for filename, lineno in reversed(frames):
        real = os.path.realpath(filename)
        if os.path.isfile(real) and wanted(real):  # "<frozen os>" is no file
            return real, lineno
    return None, None


def user_frame(
    e: BaseException, frames: list[tuple[str, int]], project_dir: str
) -> tuple[str | None, int | None]:
    """The deepest frame in the user's project (env.py, their models), never site-packages."""
    if isinstance(e, SyntaxError) and e.filename and os.path.isfile(e.filename):
        return os.path.realpath(e.filename), e.lineno
    project = os.path.realpath(project_dir) + os.sep
    return deepest(frames, lambda real: real.startswith(project) and "site-packages" not in real)


def tail(text: str, lines: int) -> str:
    parts = text.rstrip().splitlines()
    return "\n".join(parts[-lines:])


def failure_static(e: BaseException, init: WorkerInit) -> Failure:
    """A failure before the ScriptDirectory exists (a bad alembic.ini, say)."""
    file, line = user_frame(e, list(frames(e.__traceback__)), init.project_dir)
    user_tb, full_tb = tracebacks(e, init.project_dir)
    return Failure(
        error_type=type(e).__name__,
        message=str(e).strip() or type(e).__name__,
        file=file,
        line=line,
        traceback=user_tb,
        full_traceback=full_tb,
    )


def tracebacks(e: BaseException, project_dir: str) -> tuple[str, str]:
    """(the user's frames only, every frame): users see their env.py, revision files and
    packages, not ours or the libraries' (issue 13); the JSON report keeps the whole."""
    import traceback  # only when something failed

    full = tail("".join(traceback.format_exception(type(e), e, e.__traceback__)), 40)
    project = os.path.realpath(project_dir) + os.sep
    ours = os.path.dirname(os.path.realpath(__file__)) + os.sep
    frames = [
        f
        for f in traceback.extract_tb(e.__traceback__)
        if (real := os.path.realpath(f.filename)).startswith(project)
        and "site-packages" not in real
        and not real.startswith(ours)
        and os.path.isfile(real)  # "<frozen importlib._bootstrap>" is no file
    ]
    last = "".join(traceback.format_exception_only(type(e), e)).rstrip()
    if not frames:
        return last, full
    stack = "".join(traceback.StackSummary.from_list(frames[-6:]).format()).rstrip()
    return f"Traceback (the project's own frames):\n{stack}\n{last}", full
