"""`python -m alembic_preflight` and the `alembic-preflight` console script.

Kept light: a worker process that multiprocessing spawns runs the script that started
the verifier again before it starts; from here that imports nothing, instead of the
command line and everything it imports (~0.1 s per worker). And `verify` starts its
workers before anything else (worker/client.py), forked from this process on Linux."""

import os
import signal
import sys
from typing import NoReturn


def _quit(signum: int, frame: object) -> None:
    """Ctrl-C (or CI's cancel, SIGTERM) while starting: nothing is made yet (the early
    workers end when our pipe to them closes), so out at once. Raising KeyboardInterrupt
    here could land inside the import machinery, which prints it as ignored and goes on."""
    os.write(2, b"alembic-preflight: error: interrupted\n")
    os._exit(130)


def run() -> NoReturn:
    signal.signal(signal.SIGINT, _quit)  # cli.main puts Python's own back
    # and its own for SIGTERM: until then one killed us at once (exit 143), or, as the
    # image's PID 1, was ignored
    signal.signal(signal.SIGTERM, _quit)
    try:
        from alembic_preflight.head_start import head_start

        # no collector until the project is loaded (collector.keep_all), and the workers
        # (copies of this process) start importing now, while the command line is read
        head_start(sys.argv[1:])
        from alembic_preflight.cli import run as cli_run
    except KeyboardInterrupt:
        # Ctrl-C while starting (issue 15): nothing is made yet, and no traceback of ours
        # (the early workers see the same Ctrl-C and end)
        sys.stderr.write("alembic-preflight: error: interrupted\n")
        sys.stderr.flush()
        os._exit(130)
    cli_run()


if __name__ == "__main__":
    run()
