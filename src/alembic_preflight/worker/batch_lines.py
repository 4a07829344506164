"""The line that queued the batch operation being run.

Inside `with op.batch_alter_table(...) as batch_op:` Alembic only queues each operation;
they all run when the block ends, so a failure's stack shows the `with` line. The line to
fix is the operation's own (issue 16): each queued entry keeps its caller's line, and the
entry being run is remembered while Alembic's flush iterates the queue.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any

# (file, line) of the queued operation Alembic is running; None between operations
running: tuple[str, int] | None = None

_LIBRARIES: tuple[str, ...] = ()


class _Queue(list[Any]):
    """Alembic's batch queue, with the caller's line beside each entry."""

    def __init__(self, items: Iterable[Any] = ()) -> None:
        super().__init__(items)
        self.lines: list[tuple[str, int] | None] = [None] * len(self)

    def append(self, item: Any) -> None:
        super().append(item)
        self.lines.append(_caller())

    def __iter__(self) -> Iterator[Any]:
        global running
        for item, line in zip(list.__iter__(self), self.lines, strict=False):
            running = line
            yield item
        running = None


def _caller() -> tuple[str, int] | None:
    """The first frame outside Alembic, SQLAlchemy and this package: the revision's.
    Alembic's proxy methods are compiled from strings ("<string>"): no file, skipped."""
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        if not name.startswith(_LIBRARIES) and not name.startswith("<"):
            return os.path.realpath(name), frame.f_lineno
        frame = frame.f_back  # type: ignore[assignment]
    return None


def install() -> None:
    """Give every batch Alembic starts a queue that keeps lines (once per process)."""
    global _LIBRARIES
    import alembic
    import sqlalchemy
    from alembic.operations.batch import BatchOperationsImpl

    if getattr(BatchOperationsImpl, "_preflight_lines", False):
        return
    ours = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    _LIBRARIES = tuple(
        d + os.sep
        for d in (*(os.path.dirname(m.__file__ or "") for m in (alembic, sqlalchemy)), ours)
    )
    original = BatchOperationsImpl.__init__

    def init(self: Any, *args: Any, **kw: Any) -> None:
        original(self, *args, **kw)
        self.batch = _Queue(self.batch)

    BatchOperationsImpl.__init__ = init  # type: ignore[method-assign]
    BatchOperationsImpl._preflight_lines = True  # type: ignore[attr-defined]


def reset() -> None:
    global running
    running = None
