"""What `verify` and `baseline` start before their command line is read (issue 21): the
first workers, forked from this process while it imports the rest (worker/client.py),
and the garbage collector paused until the project is loaded (collector.keep_all). For
both ways in: the console script (__main__) and the image's entry point (action)."""

from __future__ import annotations

from collections.abc import Sequence

COMMANDS = ("verify", "baseline")


def head_start(args: Sequence[str], *, fork: bool = True) -> None:
    """For a command line that runs one of COMMANDS; else nothing. `fork=False`: the
    workers are new interpreters (after the action's `install:`, whose editable installs
    add .pth files that only a new interpreter reads)."""
    if not args or args[0] not in COMMANDS:
        return
    from alembic_preflight import collector

    collector.pause()
    from alembic_preflight.worker.client import start_early

    start_early(fork=fork)


def close_unused() -> None:
    """The workers head_start started that no run took (--help, a bad flag, an error
    before the run): they would end on their own, once their imports are done."""
    from alembic_preflight.worker.client import Prewarmed, take_early

    Prewarmed(take_early()).close()
