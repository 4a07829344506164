"""A private PostgreSQL cluster from local server binaries, fsync off, removed afterwards.

It listens on 127.0.0.1 on a free port, with a generated password (scram), and on a unix
socket in a private directory: env.py is handed an ordinary
`postgresql+psycopg://postgres:PASSWORD@127.0.0.1:PORT/db`, which settings libraries accept
(pydantic's PostgresDsn refuses a URL without a host), while our own connections take the
socket. initdb and postgres refuse root, so as root the server runs as an unprivileged
user (the `postgres` system user where there is one)."""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace
from pathlib import Path
from threading import Event
from typing import Any

import psycopg

from alembic_preflight.database import leftovers
from alembic_preflight.database.base import Server, StartCancelled, check_cancelled
from alembic_preflight.errors import ProvisionError

SUPERUSER = "postgres"
HOST = "127.0.0.1"
PORT_TRIES = 3  # a free port can be taken by another process before the server binds it


def find_bindir(explicit: Path | None = None) -> Path:
    """--pg-bin, else PATH, else `pg_config --bindir`, else /usr/lib/postgresql/*/bin
    (newest first)."""
    if explicit is not None:
        if not (explicit / "postgres").is_file() or not (explicit / "initdb").is_file():
            raise ProvisionError(f"--pg-bin {explicit}: no `postgres` and `initdb` there")
        return explicit
    candidates: list[Path] = []
    on_path = shutil.which("postgres")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    pg_config = shutil.which("pg_config")
    if pg_config:
        with suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10
            ).stdout.strip()
            if out:
                candidates.append(Path(out))

    def major(p: Path) -> int:
        m = re.search(r"/(\d+)/bin$", p.as_posix())
        return int(m.group(1)) if m else 0

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=major, reverse=True)
    for c in candidates:
        if (c / "postgres").is_file() and (c / "initdb").is_file():
            return c
    raise ProvisionError(
        "no PostgreSQL server binaries found (looked on PATH, in `pg_config --bindir` and "
        "/usr/lib/postgresql/*/bin): install them (Debian: apt-get install postgresql), "
        "name them with --pg-bin DIR, or use --database container / --database url"
    )


# A throwaway cluster needs no durability: in memory, CREATE DATABASE takes ~15 ms instead of
# ~250 ms on a disk (measured), and every migration's file creation gets cheaper too.
MEMORY_DIR = Path("/dev/shm")
MEMORY_MIN_FREE = 1 << 30  # containers often get a 64 MB /dev/shm: too small, use disk


def _scratch_dir() -> str | None:
    """Where the cluster lives: in memory when there is room, else the temp directory."""
    try:
        if os.access(MEMORY_DIR, os.W_OK) and shutil.disk_usage(MEMORY_DIR).free >= MEMORY_MIN_FREE:
            return str(MEMORY_DIR)
    except OSError:
        pass
    return None


def _server_account() -> pwd.struct_passwd | None:
    """The account to run the server as, or None to run it as ourselves."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with suppress(KeyError):
            return pwd.getpwnam(name)
    raise ProvisionError(
        "running as root, and PostgreSQL refuses root: no `postgres` or `nobody` user to run it"
    )


@contextmanager
def start_embedded(
    pg_bin: Path | None = None, *, timeout: float = 30.0, cancelled: Event | None = None
) -> Iterator[Server]:
    bindir = find_bindir(pg_bin)
    account = _server_account()
    workdir = Path(tempfile.mkdtemp(prefix="alembic-preflight-pg-", dir=_scratch_dir()))
    marker = leftovers.current()
    marker.add("dir", path=str(workdir))  # removed by the next run, should we be killed
    data, sock = workdir / "data", workdir / "sock"
    sock.mkdir()
    log_path = workdir / "server.log"
    password = secrets.token_urlsafe(24)
    pwfile = workdir / "pwfile"
    pwfile.write_text(password + "\n", encoding="utf-8")
    os.chmod(pwfile, 0o600)
    # subprocess's arguments that run initdb and the server as that account
    as_server: dict[str, Any] = {}
    if account is not None:
        for p in (workdir, sock, pwfile):
            os.chown(p, account.pw_uid, account.pw_gid)
        as_server = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    proc: subprocess.Popen[bytes] | None = None
    try:
        check_cancelled(cancelled)
        init = subprocess.Popen(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                SUPERUSER,
                # our own connections come through the private socket; TCP needs the password
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                f"--pwfile={pwfile}",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=workdir,
            # a group of its own (initdb runs a backend of its own): ended whole when cancelled
            start_new_session=True,
            **as_server,
        )
        out, err = _initdb_output(init, cancelled)
        pwfile.unlink()
        if init.returncode != 0:
            raise ProvisionError(f"initdb failed ({bindir}):\n{(err or out)[-2000:]}")
        for attempt in range(1, PORT_TRIES + 1):
            check_cancelled(cancelled)
            port = _free_port()
            proc = _start_server(bindir, data, sock, port, log_path, workdir, as_server)
            marker.add("cluster", dir=str(workdir), server_pid=proc.pid)
            server = Server(
                backend="embedded",
                host=HOST,
                port=port,
                user=SUPERUSER,
                password=password,
                socket_dir=str(sock),
            )
            try:
                version = _wait_ready(server, proc, log_path, timeout, cancelled)
                break
            except ProvisionError:
                if attempt == PORT_TRIES or proc.poll() is None or not _port_taken(log_path):
                    raise
                proc = None  # it exited: the port was taken meanwhile; another one
        yield replace(server, server_version=version)
    finally:
        if proc is not None and proc.poll() is None:
            # immediate shutdown: the cluster is thrown away, nothing to flush
            with suppress(ProcessLookupError):
                proc.send_signal(signal.SIGQUIT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)
        marker.release(str(workdir))


def _initdb_output(init: subprocess.Popen[str], cancelled: Event | None) -> tuple[str, str]:
    """initdb's stdout and stderr once it has ended; ended with its backend, and
    StartCancelled raised, as soon as `cancelled` is set. Interrupted otherwise (Ctrl-C
    on the thread that waits: bench/run.py's, a test session's), it is ended too: in a
    session of its own, it would run on, and its backend's shared memory would stay."""
    while True:
        try:
            return init.communicate(timeout=0.02)
        except subprocess.TimeoutExpired:  # (retrying loses no output)
            if cancelled is not None and cancelled.is_set():
                _end_group(init)
                raise StartCancelled from None
        except BaseException:
            _end_group(init)
            raise


def _end_group(init: subprocess.Popen[str]) -> None:
    """initdb and its backend, ended at once. Killed outright, the backend leaves its
    shared memory segments in /dev/shm (~1 MB, measured; asked to end, it finishes its
    step first, ~0.4 s): they are read from its memory map while the group is stopped,
    and removed after it is killed."""
    with suppress(ProcessLookupError):
        os.killpg(init.pid, signal.SIGSTOP)
    segments = _shared_memory_of(init.pid)
    with suppress(ProcessLookupError):
        os.killpg(init.pid, signal.SIGKILL)
    init.communicate()
    for path in segments:
        with suppress(OSError):
            os.unlink(path)


def _shared_memory_of(group: int) -> set[str]:
    """The PostgreSQL shared memory files the processes of `group` have mapped, or hold
    open: a backend creates a segment (shm_open, then sizes it) before it maps it, and
    one stopped in between has it open only (a segment left once in ~150 cancels)."""
    found: set[str] = set()
    for proc in Path("/proc").glob("[0-9]*"):
        fields = leftovers.stat_fields(proc.name)
        if fields is None or fields[2] != str(group):
            continue
        paths = _mapped(proc) + _open(proc)
        # A segment its backend already unlinked is listed as "<path> (deleted)": gone.
        found.update(
            path
            for path in paths
            if path.startswith("/dev/shm/PostgreSQL.") and not path.endswith(" (deleted)")
        )
    return found


def _mapped(proc: Path) -> list[str]:
    try:
        return [line.split(maxsplit=5)[-1] for line in (proc / "maps").read_text().splitlines()]
    except OSError:  # it ended meanwhile
        return []


def _open(proc: Path) -> list[str]:
    found = []
    with suppress(OSError):  # it ended meanwhile
        for fd in (proc / "fd").iterdir():
            with suppress(OSError):  # (closed meanwhile)
                found.append(os.readlink(fd))
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _port_taken(log_path: Path) -> bool:
    return "could not bind" in log_path.read_text(errors="replace")


def _start_server(
    bindir: Path,
    data: Path,
    sock: Path,
    port: int,
    log_path: Path,
    workdir: Path,
    as_server: dict[str, Any],
) -> subprocess.Popen[bytes]:
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [
                str(bindir / "postgres"),
                "-D",
                str(data),
                "-k",
                str(sock),
                "-c",
                f"listen_addresses={HOST}",
                "-p",
                str(port),
                "-F",
                "-c",
                "full_page_writes=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "max_connections=60",
                "-c",
                "unix_socket_permissions=0700",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            # its own session: a Ctrl-C reaches us, and we stop the server in order
            start_new_session=True,
            **as_server,
        )


def _wait_ready(
    server: Server,
    proc: subprocess.Popen[bytes],
    log_path: Path,
    timeout: float,
    cancelled: Event | None = None,
) -> str:
    deadline = time.monotonic() + timeout
    while True:
        check_cancelled(cancelled)
        if proc.poll() is not None:
            raise ProvisionError(
                f"PostgreSQL exited while starting:\n{log_path.read_text(errors='replace')[-2000:]}"
            )
        try:
            with psycopg.connect(server.conninfo(), connect_timeout=2) as conn:
                return str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise ProvisionError(
                    f"PostgreSQL did not accept connections within {timeout:.0f} s"
                ) from None
            time.sleep(0.02)
