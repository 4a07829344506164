"""One exit path: exceptions become a short message and a documented exit code.

0 all passed, 1 a check failed, 2 usage or configuration error or a refused target,
3 infrastructure failure (no PostgreSQL could be started, an internal error),
130 interrupted."""

from __future__ import annotations

import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

from alembic_preflight import output
from alembic_preflight.errors import EXIT_INFRA, EXIT_INTERRUPTED, PreflightError


def run_guarded(fn: Callable[[], int]) -> int:
    try:
        return fn()
    except PreflightError as e:
        output.error(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        output.error("interrupted; the databases were removed")
        return EXIT_INTERRUPTED
    except Exception:
        # a new file in a private directory: a fixed path in /tmp could be a symlink
        # another user planted (issue 15)
        folder = tempfile.mkdtemp(prefix="alembic-preflight-crash-")
        log = Path(folder) / "crash.log"
        with open(log, "x", encoding="utf-8", errors="replace") as f:
            f.write(traceback.format_exc())
        output.error(f"an unexpected error stopped the run; please report it with the log at {log}")
        return EXIT_INFRA
