"""PostgreSQL in a throwaway container (`--database container`), through testcontainers.

Any image that behaves like the official `postgres` one works (PostGIS, Timescale, ...): it is
configured with POSTGRES_USER/_PASSWORD/_DB and reached on its port 5432. Where the engine is:
- on this host (a developer's machine, a GitHub runner with the composite action): the mapped
  port on the Docker host;
- the host's socket mounted into the container we run in (the GitHub container action): the
  PostgreSQL container is a sibling on our network, reached by its address there;
- `DOCKER_HOST=tcp://docker:2375` (GitLab's docker:dind service): the mapped port on that host.
testcontainers >= 4.9 picks among these (`get_container_host_ip`, ConnectionMode); older
releases connect to localhost from inside a container.

The container is removed however we leave: success, failure, Ctrl-C and SIGTERM (GitHub
cancels a job with SIGTERM, and a Python PID 1 ignores it unless a handler is installed).
Ryuk, testcontainers' reaper for processes killed outright, runs where its image is there or
can be pulled.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace
from threading import Event
from typing import Any

import psycopg

from alembic_preflight.database import leftovers
from alembic_preflight.database.base import Server, check_cancelled
from alembic_preflight.errors import ProvisionError, interrupt_on_signal

log = logging.getLogger(__name__)

PORT = 5432
USER = "postgres"
# every container we start carries this label, with the id of the run as its value
LABEL = leftovers.LABEL
# a throwaway server: durability buys nothing and costs time on every migration
MEMORY_DIR = "/var/lib/preflight-tmpfs"  # a tmpfs; PGDATA below it (the image makes it)
SERVER_ARGS = ("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
PING_TIMEOUT = 2.0
EMBEDDED_HINT = (
    "use `--database embedded` (PostgreSQL server binaries on this machine) or "
    "`--database url --database-url ...` instead"
)


class ImageUnavailable(ProvisionError):
    """The image is neither local nor pullable (`auto` may fall back to embedded)."""


def _docker_client(timeout: float) -> Any:
    """A docker SDK client for the engine testcontainers would use (DOCKER_HOST, the docker
    context, ~/.testcontainers.properties' tc.host), or the default socket."""
    import docker
    from testcontainers.core.docker_client import get_docker_host

    base_url = None
    with suppress(Exception):
        base_url = get_docker_host()
    if base_url:
        return docker.DockerClient(base_url=base_url, timeout=int(max(timeout, 1)))
    return docker.from_env(timeout=int(max(timeout, 1)))


def _engine_name() -> str:
    return os.environ.get("DOCKER_HOST") or "the Docker socket (/var/run/docker.sock)"


def docker_available() -> bool:
    """Whether a Docker engine answers within ~2 s (for `--database auto`)."""
    if not os.environ.get("DOCKER_HOST") and not os.path.exists("/var/run/docker.sock"):
        with suppress(Exception):
            from testcontainers.core.docker_client import get_docker_host

            if get_docker_host():  # a docker context or tc.host names another engine
                return _ping(PING_TIMEOUT)
        return False
    return _ping(PING_TIMEOUT)


def _ping(timeout: float) -> bool:
    try:
        client = _docker_client(timeout)
    except Exception:
        return False
    try:
        return bool(client.ping())
    except Exception:
        return False
    finally:
        with suppress(Exception):
            client.close()


@contextmanager
def start_container(
    image: str, *, timeout: float, cancelled: Event | None = None
) -> Iterator[Server]:
    """Start `image`, wait until PostgreSQL takes connections, yield it, then remove it."""
    from testcontainers.core.container import DockerContainer

    deadline = time.monotonic() + timeout
    client = _connect_engine()
    run_id = uuid.uuid4().hex
    leftovers.current().add("container", run_id=run_id)  # should we be killed outright
    password = secrets.token_urlsafe(18)
    with _sigterm_raises(), suppress_close(client):
        check_cancelled(cancelled)
        _ensure_image(client, image)
        _ensure_reaper(client)
        container = DockerContainer(
            image,
            env={
                "POSTGRES_USER": USER,
                "POSTGRES_PASSWORD": password,
                "POSTGRES_DB": "postgres",
                # in memory, like the embedded cluster: CREATE DATABASE (template clones)
                # is an order of magnitude faster than on the container's overlay disk
                "PGDATA": f"{MEMORY_DIR}/data",
            },
            labels={LABEL: run_id},
        )
        container.with_command(["postgres", *SERVER_ARGS]).with_exposed_ports(PORT)
        if hasattr(container, "with_tmpfs_mount"):
            container.with_tmpfs_mount(MEMORY_DIR)
        else:  # testcontainers < 4.13 passes docker-py's keyword through
            container.with_kwargs(tmpfs={MEMORY_DIR: ""})
        try:
            check_cancelled(cancelled)
            try:
                container.start()
                host = container.get_container_host_ip()
                port = int(container.get_exposed_port(PORT))
            except Exception as e:
                raise ProvisionError(
                    f"could not start a container from {image}: {_reason(e)}"
                ) from e
            log.info("PostgreSQL container %s at %s:%s", _short_id(container), host, port)
            server = Server(backend="container", host=host, port=port, user=USER, password=password)
            version = _wait_ready(container, server, image, deadline, cancelled)
            yield replace(server, server_version=version)
        finally:
            _remove(client, container, run_id)
            leftovers.current().drop("container", run_id=run_id)


# -- the engine and the image -----------------------------------------------------------------


def _connect_engine() -> Any:
    try:
        client = _docker_client(30.0)
        client.ping()
    except Exception as e:
        raise ProvisionError(
            f"no Docker engine answers at {_engine_name()} ({_reason(e)}): start Docker, "
            "mount its socket into this container (-v /var/run/docker.sock:/var/run/docker.sock) "
            f"or set DOCKER_HOST; or {EMBEDDED_HINT}"
        ) from e
    return client


@contextmanager
def suppress_close(client: Any) -> Iterator[None]:
    try:
        yield
    finally:
        with suppress(Exception):
            client.close()


def _ensure_image(client: Any, image: str) -> None:
    import docker.errors

    try:
        client.images.get(image)
        return
    except docker.errors.ImageNotFound:
        pass
    except docker.errors.APIError as e:
        raise ProvisionError(f"the Docker engine failed to look up {image}: {_reason(e)}") from e
    log.info("pulling %s", image)
    repository, tag = _split_tag(image)
    try:
        client.images.pull(repository, tag=tag)
    except Exception as e:
        raise ImageUnavailable(
            f"could not pull the PostgreSQL image {image} ({_reason(e)}): check the name "
            f"(--postgres-image / --postgres-version) and the registry's reachability, or "
            f"{EMBEDDED_HINT}"
        ) from e


def _split_tag(image: str) -> tuple[str, str | None]:
    if "@" in image:  # a digest pins it: pull by the full reference
        return image, None
    name, _, tag = image.rpartition(":")
    if name and "/" not in tag:
        return name, tag
    return image, "latest"


def _ensure_reaper(client: Any) -> None:
    """Keep Ryuk on where it can run: its image is local or pulls. When the user set
    TESTCONTAINERS_RYUK_DISABLED (or ryuk.disabled), theirs is the last word."""
    from testcontainers.core.config import testcontainers_config as tc

    if tc.ryuk_disabled:
        return
    explicit = os.environ.get("TESTCONTAINERS_RYUK_DISABLED") is not None
    try:
        client.images.get(tc.ryuk_image)
        return
    except Exception:
        pass
    if explicit:
        return
    repository, tag = _split_tag(tc.ryuk_image)
    try:
        client.images.pull(repository, tag=tag)
    except Exception as e:
        log.info("Ryuk (%s) cannot be pulled, running without it: %s", tc.ryuk_image, _reason(e))
        tc.ryuk_disabled = True


# -- readiness ------------------------------------------------------------------------------


def _wait_ready(
    container: Any, server: Server, image: str, deadline: float, cancelled: Event | None = None
) -> str:
    """Poll with a real connection: the official image's entrypoint runs a temporary server on
    the unix socket only during initialisation, so a TCP connection means the real one is up.
    Returns the server's version."""
    last: Exception | None = None
    while True:
        check_cancelled(cancelled)
        try:
            with psycopg.connect(server.conninfo(), connect_timeout=3, autocommit=True) as conn:
                row = conn.execute("SHOW server_version").fetchone()
                return str(row[0]) if row else ""
        except psycopg.Error as e:
            last = e
        status = _status(container)
        if status in {"exited", "dead", "removing"}:
            raise ProvisionError(
                f"the PostgreSQL container ({image}) stopped while starting:\n"
                f"{_tail_logs(container)}"
            )
        if time.monotonic() >= deadline:
            raise ProvisionError(
                f"PostgreSQL in {image} did not accept connections at {server.host}:{server.port} "
                f"in time ({_reason(last) if last else 'no answer'}); its last log lines:\n"
                f"{_tail_logs(container)}"
            )
        time.sleep(0.25)


def _status(container: Any) -> str:
    try:
        wrapped = container.get_wrapped_container()
        wrapped.reload()
        return str(wrapped.status)
    except Exception:
        return "unknown"


def _tail_logs(container: Any, lines: int = 20) -> str:
    try:
        out = container.get_wrapped_container().logs(tail=lines)
        return out.decode("utf-8", "replace").rstrip() or "(no output)"
    except Exception as e:
        return f"(logs unavailable: {_reason(e)})"


# -- cleanup --------------------------------------------------------------------------------


def _remove(client: Any, container: Any, run_id: str) -> None:
    """Remove our container: the one testcontainers knows, and any other with this run's label
    (a signal can land between the engine creating a container and us learning its id)."""
    wrapped = getattr(container, "_container", None)
    ids = {wrapped.id} if wrapped is not None else set()
    with suppress(Exception):
        mine = client.containers.list(all=True, filters={"label": f"{LABEL}={run_id}"})
        ids |= {c.id for c in mine}
    for cid in ids:
        try:
            client.api.remove_container(cid, force=True, v=True)
        except Exception as e:
            if "No such container" not in str(e) and "404" not in str(e):
                log.warning("could not remove container %s: %s", cid[:12], _reason(e))
    with suppress(Exception):
        container.get_docker_client().client.close()


def remove_labelled(label: str, run_id: str) -> int:
    """Remove the containers a run killed outright left (leftovers.py); how many."""
    try:
        client = _docker_client(PING_TIMEOUT)
        found = client.containers.list(all=True, filters={"label": f"{label}={run_id}"})
    except Exception:  # no engine here now: nothing we can remove
        return 0
    removed = 0
    for c in found:
        with suppress(Exception):
            client.api.remove_container(c.id, force=True, v=True)
            removed += 1
    with suppress(Exception):
        client.close()
    return removed


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt while the container lives, so `finally` removes it.
    Only the main thread can install handlers; elsewhere the caller's handling stands."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    previous = signal.signal(signal.SIGTERM, interrupt_on_signal)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _short_id(container: Any) -> str:
    wrapped = getattr(container, "_container", None)
    return str(getattr(wrapped, "short_id", "?"))


def _reason(e: BaseException | None) -> str:
    if e is None:
        return ""
    explanation = getattr(e, "explanation", None)  # docker.errors.APIError
    text = str(explanation or e).strip()
    return text.splitlines()[0] if text else type(e).__name__
