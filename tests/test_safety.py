"""Safety first (issue 13): the verifier never touches a database it did not create, and
never passes work it did not do.

A second PostgreSQL database stands for the developer's real one: a table of rows. Every
route by which env.py (or a revision) may reach it is tried; each run must either verify
for real in our own database or stop with exit 2 before a single statement reaches it. The
real database's schema (`pg_dump -s`) and rows are compared before and after."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from alembic_preflight.database import choose_backend
from alembic_preflight.database.base import Server
from alembic_preflight.database.embedded import find_bindir
from alembic_preflight.settings import Settings
from tests.checks.histories import ENV_PY, long_history, write_project
from tests.conftest import CliResult, code_before_notes_title, run_cli

ROWS = [(1, "ada@example.com"), (2, "grace@example.com"), (3, "linus@example.com")]


@dataclass(frozen=True)
class RealDatabase:
    """The developer's database: it must come out exactly as it went in."""

    server: Server
    name: str

    @property
    def url(self) -> str:
        s = self.server
        return f"postgresql+psycopg://{s.user}:{s.password}@{s.host}:{s.port}/{self.name}"

    @property
    def dsn(self) -> str:
        s = self.server
        return f"postgresql://{s.user}:{s.password}@{s.host}:{s.port}/{self.name}"

    def state(self) -> tuple[str, list[tuple[Any, ...]]]:
        dump = subprocess.run(
            [
                str(find_bindir() / "pg_dump"),
                "--schema-only",
                "-h",
                self.server.host,
                "-p",
                str(self.server.port),
                "-U",
                self.server.user,
                self.name,
            ],
            env={**os.environ, "PGPASSWORD": self.server.password or ""},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        # pg_dump 15.14+ writes a random \restrict key into every dump
        dump = "\n".join(
            x for x in dump.splitlines() if not x.startswith(("\\restrict", "\\unrestrict"))
        )
        with psycopg.connect(self.server.conninfo(self.name)) as conn:
            rows = conn.execute("SELECT * FROM customers ORDER BY id").fetchall()
        return dump, rows


@pytest.fixture
def real_db(pg_server: Server) -> Iterator[RealDatabase]:
    name = f"realapp_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.conninfo(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(pg_server.conninfo(name)) as conn:
        conn.execute("CREATE TABLE customers (id int PRIMARY KEY, email text NOT NULL)")
        conn.cursor().executemany("INSERT INTO customers VALUES (%s, %s)", ROWS)
    db = RealDatabase(pg_server, name)
    before = db.state()
    assert "CREATE TABLE public.customers" in before[0]
    yield db
    # the promise: whatever the run said, the real database is as it was
    assert db.state() == before
    with psycopg.connect(pg_server.conninfo(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def verify(proj: Path, *args: str, env: dict[str, str] | None = None) -> CliResult:
    return run_cli("verify", ".", "--database", "embedded", *args, cwd=proj, env=env)


def assert_refused(r: CliResult, real: RealDatabase) -> None:
    assert r.code == 2, r.stdout + r.stderr
    assert "refused target" in r.stderr
    assert f"{real.server.host}:{real.server.port}/{real.name}" in r.stderr
    assert real.server.password not in r.stderr + r.stdout
    assert "Traceback" not in r.stderr


# -- routes to another database ----------------------------------------------------------------
def test_settings_variable_is_set_to_ours_and_the_run_verifies(project: Any, real_db: Any) -> None:
    """APP__DATABASE__URL through pydantic-settings: retried with it set to our URL, and the
    notice says which setting to add; a typical settings project verifies with no flags."""
    proj = project("settings_app")
    r = verify(proj, env={"APP__DATABASE__URL": real_db.url})
    assert r.code == 0, r.stdout + r.stderr
    notices = r.findings("url-env-inferred")
    assert len(notices) == 1
    assert "APP__DATABASE__URL (environment)" in notices[0]["message"]
    assert "url-env: [APP__DATABASE__URL]" in notices[0]["message"]
    assert real_db.server.password not in r.stdout + r.stderr
    assert r.check("stepwise")["note"].startswith("2 of 2 revisions walked")


def test_settings_from_dotenv_are_overridden_by_the_environment(project: Any, real_db: Any) -> None:
    proj = project("settings_app")
    (proj / ".env").write_text(f"# local development\nAPP__DATABASE__URL={real_db.url}\n")
    r = verify(proj)
    assert r.code == 0, r.stdout + r.stderr
    (notice,) = r.findings("url-env-inferred")
    assert "APP__DATABASE__URL from " in notice["message"]
    assert ".env:2" in notice["message"]


def test_settings_with_url_env_named_need_no_retry(project: Any, real_db: Any) -> None:
    proj = project("settings_app")
    env = {"APP__DATABASE__URL": real_db.url}
    r = verify(proj, "--url-env", "APP__DATABASE__URL", "--checks", "upgrade", env=env)
    assert r.code == 0, r.stdout + r.stderr
    assert r.findings("url-env-inferred") == []


def test_a_lane_upgrading_ahead_is_refused_too_and_starts_again(
    tmp_path: Path, real_db: Any
) -> None:
    """40 revisions: lane 1 upgrades to its slice while lane 0 probes env.py (its head
    start), and env.py reads the real database's address from a variable in both. Both
    are refused; retried with the variable set to ours, the walk covers every revision."""
    write_project(tmp_path, long_history(40))
    env_py = tmp_path / "migrations" / "env.py"
    env_py.write_text(
        "import os\n"
        + ENV_PY.replace(
            "config = context.config\n",
            'config = context.config\nconfig.set_main_option("sqlalchemy.url", '
            'os.environ["APP_DATABASE_URL"])\n',
        )
    )
    r = verify(
        tmp_path, "--checks", "stepwise", "--jobs", "2", env={"APP_DATABASE_URL": real_db.url}
    )
    assert r.code == 0, r.stdout + r.stderr
    (notice,) = r.findings("url-env-inferred")
    assert "APP_DATABASE_URL (environment)" in notice["message"]
    note = r.check("stepwise")["note"]
    assert note.startswith("40 of 40 revisions walked") and "2 parallel lanes" in note, note


def test_dotenv_loaded_with_override_is_refused(project: Any, real_db: Any) -> None:
    proj = project("dotenv_override")
    (proj / ".env").write_text(f"APP_DATABASE_URL={real_db.url}\n")
    r = verify(proj)
    assert_refused(r, real_db)
    assert "APP_DATABASE_URL from " in r.stderr and ".env:1" in r.stderr
    assert "tried again" in r.stderr
    assert "--url-env APP_DATABASE_URL" in r.stderr


def test_url_pieces_are_set_to_ours(project: Any, real_db: Any) -> None:
    proj = project("url_pieces")
    s = real_db.server
    env = {
        "POSTGRES_HOST": s.host,
        "POSTGRES_PORT": str(s.port),
        "POSTGRES_DB": real_db.name,
        "POSTGRES_USER": s.user,
        "POSTGRES_PASSWORD": s.password,
    }
    r = verify(proj, env=env)
    assert r.code == 0, r.stdout + r.stderr
    (notice,) = r.findings("url-env-inferred")
    for name in env:
        assert name in notice["message"]
    assert s.password not in r.stdout + r.stderr


def test_url_written_in_env_py_is_refused(project: Any, real_db: Any) -> None:
    proj = project("url_in_env_py")
    env_py = proj / "migrations" / "env.py"
    s = real_db.server
    env_py.write_text(
        env_py.read_text()
        .replace("REAL_PASSWORD", s.password)
        .replace("REAL_PORT", str(s.port))
        .replace("REAL_DB", real_db.name)
    )
    r = verify(proj)
    assert_refused(r, real_db)
    assert "a URL written at " in r.stderr and "migrations/env.py:8" in r.stderr


@pytest.mark.parametrize(
    "driver",
    ["psycopg", "psycopg2", "asyncpg", "libpq-defaults", "engine_from_config", "swallowed"],
)
def test_a_revision_connecting_elsewhere_is_refused(
    project: Any, real_db: Any, driver: str
) -> None:
    """The drivers' own connect, libpq's environment defaults, engine_from_config, and an
    error the revision catches: refused before anything is sent, and the run stops."""
    proj = project("side_connection")
    s = real_db.server
    env = {"SIDE_DRIVER": driver, "REFERENCE_DSN": real_db.dsn, "REFERENCE_URL": real_db.url}
    if driver == "libpq-defaults":
        env |= {
            "PGHOST": s.host,
            "PGPORT": str(s.port),
            "PGDATABASE": real_db.name,
            "PGUSER": s.user,
            "PGPASSWORD": s.password,
        }
    r = verify(proj, "--checks", "upgrade", env=env)
    assert r.code == 2, r.stdout + r.stderr
    assert "refused target" in r.stderr
    assert s.password not in r.stdout + r.stderr
    assert "the upgrade of revision c3d4e5f6a7b8 tried to connect" in r.stderr
    if driver != "libpq-defaults":
        assert f"/{real_db.name}" in r.stderr
        assert "c3d4e5f6a7b8_copy_reference_data.py:" in r.stderr


# -- verdicts proven in our database ---------------------------------------------------------------
@pytest.mark.parametrize("name", ["env_does_nothing", "env_offline_only"])
def test_env_py_that_runs_no_migration_fails_once(project: Any, name: str) -> None:
    proj = project(name)
    r = verify(proj)
    assert r.code == 1, r.stdout + r.stderr
    (finding,) = [f for f in r.findings() if f["severity"] == "error"]
    assert finding["rule"] == "env-did-not-migrate"
    assert finding["check"] == "upgrade"
    assert "env.py did not run the migrations on the database it was handed" in (finding["message"])
    assert finding["file"].endswith("migrations/env.py")
    for check in ("drift", "roundtrip", "stepwise"):
        assert r.check(check)["status"] == "skipped"
        assert "see upgrade" in r.check(check)["note"]


def test_env_failure_is_one_finding_with_the_hint_that_fits(project: Any) -> None:
    proj = project("env_import_error")
    r = verify(proj)
    assert r.code == 1, r.stdout + r.stderr
    (finding,) = r.findings()
    assert finding["check"] == "upgrade" and finding["rule"] == "env-failed"
    assert "not installed where the verifier runs" in finding["fix"]
    # the user's frames, not ours or the libraries'
    assert "site-packages" not in finding["detail"]
    assert "alembic_preflight" not in finding["detail"]
    assert "env.py" in finding["detail"]
    assert "site-packages" in finding["traceback"]  # the JSON report keeps the whole
    for check in ("drift", "roundtrip", "stepwise"):
        assert r.check(check)["status"] == "skipped"


# -- verify DIR from anywhere ----------------------------------------------------------------------
def _repo_with_project(tmp_path: Path, source: Path, location: str) -> Path:
    """A repository with the project in backend/, its script_location written `location`."""
    backend = tmp_path / "repo" / "backend"
    shutil.copytree(source, backend)
    # the repository root: where report paths are relative to, from inside or out
    subprocess.run(["git", "init", "-q", str(backend.parent)], check=True)
    ini = backend / "alembic.ini"
    text = ini.read_text()
    text = "\n".join(
        f"script_location = {location}" if line.startswith("script_location") else line
        for line in text.splitlines()
    )
    ini.write_text(text + "\n")
    return backend


@pytest.mark.parametrize("location", ["migrations", "%(here)s/migrations", "ABSOLUTE"])
def test_verify_dir_from_elsewhere_equals_verify_inside(
    project: Any, tmp_path: Path, location: str
) -> None:
    source = project("several_heads")
    absolute = str(tmp_path / "repo" / "backend" / "migrations")
    backend = _repo_with_project(tmp_path, source, location.replace("ABSOLUTE", absolute))
    outside = run_cli("verify", "backend", "--checks", "graph,lint", cwd=backend.parent)
    inside = run_cli("verify", ".", "--checks", "graph,lint", cwd=backend)
    for r in (outside, inside):
        assert r.code == 1, r.stdout + r.stderr
        assert r.report is not None
        assert r.report["project"]["revisions"] == 3
        assert len(r.report["project"]["heads"]) == 2
    assert [f["rule"] for f in outside.findings()] == [f["rule"] for f in inside.findings()]
    assert [f["file"] for f in outside.findings()] == [f["file"] for f in inside.findings()]


def test_verify_dir_with_relative_version_locations(project: Any, tmp_path: Path) -> None:
    source = project("settings_app")
    backend = _repo_with_project(tmp_path, source, "migrations")
    (backend / "history").mkdir()
    for f in (backend / "migrations" / "versions").glob("*.py"):
        f.rename(backend / "history" / f.name)
    ini = backend / "alembic.ini"
    ini.write_text(
        ini.read_text().replace("[alembic]\n", "[alembic]\nversion_locations = history\n")
    )
    r = run_cli("verify", "backend", "--checks", "graph,lint", cwd=backend.parent)
    assert r.code == 0, r.stdout + r.stderr
    assert r.report is not None and r.report["project"]["revisions"] == 2


def test_database_checks_from_elsewhere_walk_every_revision(
    project: Any, tmp_path: Path, real_db: Any
) -> None:
    backend = _repo_with_project(tmp_path, project("settings_app"), "migrations")
    r = run_cli(
        "verify",
        "backend",
        "--database",
        "embedded",
        "--url-env",
        "APP__DATABASE__URL",
        cwd=backend.parent,
        env={"APP__DATABASE__URL": real_db.url},
    )
    assert r.code == 0, r.stdout + r.stderr
    assert r.check("stepwise")["note"].startswith("2 of 2 revisions walked")


# -- the embedded server and `auto` ----------------------------------------------------------------
def test_embedded_url_is_one_settings_libraries_accept(pg_server: Server) -> None:
    from pydantic import PostgresDsn, TypeAdapter

    url = pg_server.url("some_db")
    assert url.startswith(f"postgresql+psycopg://postgres:{pg_server.password}@127.0.0.1:")
    TypeAdapter(PostgresDsn).validate_python(url)
    # and it works: the server takes the password over TCP
    with psycopg.connect(
        host="127.0.0.1",
        port=pg_server.port,
        user="postgres",
        password=pg_server.password,
        dbname="postgres",
    ) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(host="127.0.0.1", port=pg_server.port, user="postgres", dbname="postgres")


def test_auto_takes_local_binaries_first() -> None:
    assert choose_backend(Settings()) == "embedded"
    # an image or version asked for is Docker's to give
    assert choose_backend(Settings(postgres_version=16)) in ("container", "embedded")


def test_embedded_password_is_masked_in_every_output(project: Any) -> None:
    """A migration that prints the URL it was handed into its error message."""
    proj = project("settings_app")
    code_before_notes_title(
        proj, "import os", 'raise RuntimeError("cannot reach " + os.environ["APP__DATABASE__URL"])'
    )
    r = verify(proj, "--url-env", "APP__DATABASE__URL", "--checks", "upgrade")
    assert r.code == 1, r.stdout + r.stderr
    (finding,) = r.findings("migration-failed")
    assert "cannot reach postgresql+psycopg://postgres:***@127.0.0.1:" in finding["message"]


def test_revisions_alembic_loads_but_we_do_not_read_stop_the_run(project: Any) -> None:
    """`sourceless = true` and a compiled revision without its source: Alembic loads it,
    the static reader does not; nothing may pass over a history half seen."""
    import py_compile

    proj = project("settings_app")
    versions = proj / "migrations" / "versions"
    extra = versions / "c0ffee000001_extra.py"
    extra.write_text(
        'revision = "c0ffee000001"\ndown_revision = "b2c3d4e5f6a7"\n'
        "branch_labels = None\ndepends_on = None\n\n\n"
        "def upgrade() -> None:\n    pass\n\n\ndef downgrade() -> None:\n    pass\n"
    )
    py_compile.compile(str(extra), cfile=str(versions / "c0ffee000001_extra.pyc"))
    extra.unlink()
    ini = proj / "alembic.ini"
    ini.write_text(ini.read_text().replace("[alembic]\n", "[alembic]\nsourceless = true\n"))
    r = verify(proj, "--url-env", "APP__DATABASE__URL", "--checks", "upgrade")
    assert r.code == 3, r.stdout + r.stderr
    assert "only loaded by Alembic: c0ffee000001" in r.stderr
    assert "only read here: none" in r.stderr
    assert r.report is not None and r.report["passed"] is False
    assert "NOT VERIFIED" in r.stdout
