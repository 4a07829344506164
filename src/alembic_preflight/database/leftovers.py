"""What a run killed outright (SIGKILL, an OOM kill) leaves behind, removed by the next.

Each run keeps a marker file while it lives: its pid and start time, and every resource
it makes that would outlive it (a PostgreSQL cluster from local binaries and its server
process, a container, a temporary directory). A normal end removes the resources and the
marker. A run finds the markers of runs that are no longer alive and removes what they
list, saying so (issue 15: clusters and containers piled up; Ryuk, testcontainers'
reaper, cannot be pulled in offline CI).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alembic_preflight import output

LABEL = "org.alembic-preflight.run"  # every container of ours, with its run's id


def registry() -> Path | None:
    """Our own directory of markers (0700), or None where it cannot be trusted."""
    folder = Path(tempfile.gettempdir()) / f"alembic-preflight-runs-{os.getuid()}"
    with suppress(FileExistsError):
        folder.mkdir(mode=0o700)
    try:
        info = folder.lstat()
    except OSError:
        return None
    # a folder someone else made (or a link to one) is not ours to read or write
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        return None
    return folder


def stat_fields(pid: int | str) -> list[str] | None:
    """/proc/PID/stat after the command name (state, ppid, pgrp, ...), None when it cannot
    be read (gone, or no /proc)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _started(pid: int) -> str | None:
    """The process's start time (a pid is reused; the pair is not), None when it is gone."""
    fields = stat_fields(pid)
    if fields is None or len(fields) < 20:
        return None if not _alive(pid) else "unknown"
    return fields[19]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Marker:
    """This run's marker file: what to remove should this run be killed outright."""

    path: Path | None
    resources: list[dict[str, Any]] = field(default_factory=list)

    def add(self, kind: str, **info: Any) -> None:
        self.resources.append({"kind": kind, **info})
        self._write()

    def drop(self, kind: str, **info: Any) -> None:
        """A resource its owner has removed."""
        self.resources = [r for r in self.resources if r != {"kind": kind, **info}]
        self._write()

    def release(self, folder: str) -> None:
        """Every resource in `folder` (a cluster, its directory) has been removed."""
        self.resources = [r for r in self.resources if folder not in (r.get("dir"), r.get("path"))]
        self._write()

    def _write(self) -> None:
        if self.path is None:
            return
        pid = os.getpid()
        data = {"pid": pid, "started": _started(pid), "resources": self.resources}
        tmp = self.path.with_suffix(".tmp")
        with suppress(OSError):
            tmp.write_text(json.dumps(data), encoding="utf-8")
            os.replace(tmp, self.path)


_current = Marker(None)


def current() -> Marker:
    """The marker of the run under way (one that writes nothing outside a run)."""
    return _current


# removes the containers of a run by its id, and says how many (database/__init__.py
# hands it over: this module does not import the container backend, which imports it)
RemoveContainers = Callable[[str, str], int]


@contextmanager
def run_marker(remove_containers: RemoveContainers | None = None) -> Iterator[Marker]:
    """This run's marker for its lifetime; first, what dead runs left is removed."""
    global _current
    folder = registry()
    if folder is not None:
        sweep(folder, remove_containers)
    marker = Marker(folder / f"{os.getpid()}-{time.time_ns()}.json" if folder else None)
    marker._write()
    _current = marker
    try:
        yield marker
    finally:
        _current = Marker(None)
        if marker.path is not None:
            marker.path.unlink(missing_ok=True)


def sweep(folder: Path, remove_containers: RemoveContainers | None = None) -> None:
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            pid, started = int(data["pid"]), data.get("started")
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if _alive(pid) and _started(pid) == started:
            continue  # a run under way
        # processes first (workers, then the server), folders last; a cluster's own
        # folder is said once, with the cluster
        resources = sorted(data.get("resources", ()), key=lambda r: _ORDER.get(r.get("kind"), 9))
        clusters = {r.get("dir") for r in resources if r.get("kind") == "cluster"}
        resources = [
            r for r in resources if not (r.get("kind") == "dir" and r.get("path") in clusters)
        ]
        removed = [_remove(r, remove_containers) for r in resources]
        said = [r for r in removed if r]
        if said:
            output.info(
                f"removed what an earlier run (pid {pid}) left when it was killed: "
                + "; ".join(said)
            )
        path.unlink(missing_ok=True)


_ORDER = {"workers": 0, "cluster": 1, "container": 2, "dir": 3}


def _remove(resource: dict[str, Any], remove_containers: RemoveContainers | None) -> str | None:
    kind = resource.get("kind")
    if kind == "cluster":
        pid, folder = resource.get("server_pid"), resource.get("dir")
        if isinstance(pid, int) and _alive(pid):
            with suppress(OSError):
                os.kill(pid, signal.SIGQUIT)  # PostgreSQL's immediate shutdown
            for _ in range(50):
                if not _alive(pid):
                    break
                time.sleep(0.1)
            with suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        if folder and Path(folder).exists():
            shutil.rmtree(folder, ignore_errors=True)
        return f"a PostgreSQL cluster in {folder}"
    if kind == "workers":
        # a worker leads a process group of its own (worker/main.py): it, and what the
        # migration it ran had started
        pid = resource.get("pid")
        if isinstance(pid, int):
            with suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
                return f"the worker process group {pid}"
        return None
    if kind == "dir":
        folder = resource.get("path")
        if folder and Path(folder).exists():
            shutil.rmtree(folder, ignore_errors=True)
            return f"the folder {folder}"
        return None
    if kind == "container":
        run_id = str(resource.get("run_id", ""))
        if not run_id or remove_containers is None:
            return None
        removed = remove_containers(LABEL, run_id)
        return f"{removed} container(s) labelled {LABEL}={run_id}" if removed else None
    return None


PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h


def adopt_orphans() -> frozenset[int]:
    """Become the reaper of our descendants (Linux): a process a migration starts in a
    session of its own escapes its worker's process group, and would outlive the run
    under init; as our orphan, `end_strays` can end it. Best effort elsewhere. Returns
    our children now (not the run's: a program embedding the verifier has its own)."""
    with suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    return frozenset(_children())


def _parents() -> dict[int, int]:
    """pid -> its parent's pid, for every live process (zombies left out)."""
    found: dict[int, int] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if not entry.isdigit():
            continue
        fields = stat_fields(entry)
        if fields is None:
            continue
        if fields[0] != "Z":
            found[int(entry)] = int(fields[1])
    return found


def _children() -> list[int]:
    me = os.getpid()
    return [pid for pid, parent in _parents().items() if parent == me]


def end_strays(before: frozenset[int]) -> list[int]:
    """Kill what is our child once the run is over and was not before it (every worker,
    server and container of the run is gone by then): orphans a migration left, and their
    own descendants. A worker still exiting may not have handed its children to us yet
    (we are their reaper only once it is gone): they are ended with it."""
    parents = _parents()
    me = os.getpid()
    ours = [pid for pid, parent in parents.items() if parent == me and pid not in before]
    found: list[int] = []
    while ours:
        pid = ours.pop()
        found.append(pid)
        ours.extend(child for child, parent in parents.items() if parent == pid)
    for pid in found:
        with suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    for pid in found:  # reaped, not left as zombies (ours only: the others' reaper is us
        with suppress(ChildProcessError, OSError):  # once their parent is gone)
            os.waitpid(pid, 0)
    return found
