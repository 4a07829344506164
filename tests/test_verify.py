"""The core verifier end to end: the real CLI, a real embedded PostgreSQL, real projects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from alembic_preflight.database.base import Server
from tests.checks.histories import line_of
from tests.conftest import ROOT, run_cli

CORE = "graph,upgrade,drift,roundtrip"


def test_sync_project_passes_with_the_report_contract(project: Any) -> None:
    proj: Path = project("sync_good")
    r = run_cli("verify", ".", "--database", "embedded", "--checks", CORE, cwd=proj)
    assert r.code == 0, r.stdout + r.stderr
    report = r.report
    assert report is not None
    assert report["schema"] == 1
    assert report["tool"]["name"] == "alembic-preflight"
    assert report["passed"] is True
    assert report["project"]["revisions"] == 3
    assert report["project"]["heads"] == ["3c4d5e6f7081"]
    assert report["project"]["bases"] == ["1a2b3c4d5e6f"]
    assert report["project"]["config"] == "alembic.ini"
    assert report["database"]["backend"] == "embedded"
    assert report["database"]["server_version"].startswith("15")
    assert [c["id"] for c in report["checks"]] == CORE.split(",")
    assert all(c["status"] == "passed" for c in report["checks"])
    assert report["findings"] == []


def test_async_env_reading_url_from_app_settings(project: Any) -> None:
    proj: Path = project("async_good")
    # stepwise too, through each driver (the fast walk on SQLAlchemy's asyncpg adapter
    # for an async env.py: test_version_rows checks what its UPDATE returns there)
    checks = CORE + ",stepwise"
    for driver in ("psycopg", "asyncpg"):
        r = run_cli(
            "verify",
            ".",
            "--database",
            "embedded",
            "--checks",
            checks,
            "--url-env",
            "APP_DATABASE_URL",
            "--driver",
            driver,
            cwd=proj,
        )
        assert r.code == 0, driver + r.stdout + r.stderr
        assert {c["id"]: c["status"] for c in r.report["checks"]} == dict.fromkeys(
            checks.split(","), "passed"
        )
        (walk,) = (c for c in r.report["checks"] if c["id"] == "stepwise")
        assert walk["note"].startswith("2 of 2 revisions walked"), walk


def test_async_env_without_its_variable_is_a_finding_not_a_traceback(project: Any) -> None:
    proj: Path = project("async_good")
    r = run_cli("verify", ".", "--database", "embedded", "--checks", "upgrade", cwd=proj)
    assert r.code == 1
    (f,) = r.findings("env-failed")
    assert "APP_DATABASE_URL" in f["message"]
    assert f["file"] == "app/core/settings.py"
    assert f["line"] == 11
    assert "Traceback" not in r.stderr


def test_drift_reports_each_difference_in_words(project: Any) -> None:
    proj: Path = project("drift")
    r = run_cli("verify", ".", "--database", "embedded", "--checks", "upgrade,drift", cwd=proj)
    assert r.code == 1
    messages = sorted(f["message"] for f in r.findings("model-drift"))
    assert messages == [
        "column `customers.name` is NOT NULL in the database but nullable in the models",
        "column `orders.note` is in the models but no migration creates it",
        "table `invoices` is in the models but no migration creates it",
    ]
    note = next(f for f in r.findings("model-drift") if "orders.note" in f["message"])
    assert (note["file"], note["line"]) == ("app/models.py", 34)
    assert r.check("drift")["status"] == "failed"
    assert r.check("upgrade")["status"] == "passed"


def test_drift_of_what_only_the_database_has_points_at_the_revision_that_made_it(
    project: Any,
) -> None:
    # issue 16: "in the database but not in the models" pointed at the head file's line 1
    proj: Path = project("drift")
    models = proj / "app" / "models.py"
    models.write_text(
        models.read_text()
        .replace('sa.ForeignKey("customers.id"), index=True', 'sa.ForeignKey("customers.id")')
        .replace('    total_cents: Mapped[int] = mapped_column(server_default="0")\n', "")
    )
    r = run_cli("verify", ".", "--database", "embedded", "--checks", "upgrade,drift", cwd=proj)
    versions = proj / "migrations" / "versions"
    orders = versions / "2b3c4d5e6f70_create_orders.py"
    total = versions / "3c4d5e6f7081_add_order_status_and_total.py"
    found = {
        f["message"].split(" is in the database")[0]: (f["file"], f["line"])
        for f in r.findings("model-drift")
        if "is in the database but not in the models" in f["message"]
    }
    assert found == {
        "index `ix_orders_customer_id` on `orders` (customer_id)": (
            "migrations/versions/" + orders.name,
            line_of(orders, 'op.f("ix_orders_customer_id")'),
        ),
        "column `orders.total_cents`": (
            "migrations/versions/" + total.name,
            line_of(total, '"total_cents"'),
        ),
    }


def test_drift_skipped_without_target_metadata(project: Any) -> None:
    proj: Path = project("sync_good")
    env_py = proj / "migrations" / "env.py"
    env_py.write_text(
        env_py.read_text().replace("target_metadata = Base.metadata", "target_metadata = None")
    )
    r = run_cli("verify", ".", "--database", "embedded", "--checks", "drift", cwd=proj)
    assert r.code == 0, r.stderr
    drift = r.check("drift")
    assert drift["status"] == "skipped"
    assert drift["note"] == "env.py sets no target_metadata: nothing to compare the schema with"


def test_enum_left_behind_fails_roundtrip_in_words(project: Any) -> None:
    proj: Path = project("enum_left_behind")
    r = run_cli("verify", ".", "--database", "embedded", "--checks", CORE, cwd=proj)
    assert r.code == 1
    (base,) = r.findings("base-not-empty")
    assert base["message"] == "downgrade to base leaves type `order_status` (enum)"
    (again,) = r.findings("reupgrade-failed")
    assert again["revision"] == "3c4d5e6f7081"
    assert again["file"] == "migrations/versions/3c4d5e6f7081_add_order_status_and_total.py"
    assert again["line"] == 25  # order_status.create(op.get_bind())
    assert 'type "order_status" already exists' in again["message"]
    assert "CREATE TYPE order_status" in again["detail"]


def test_failing_upgrade_names_revision_line_and_statement(project: Any) -> None:
    proj: Path = project("sync_good")
    rev = proj / "migrations" / "versions" / "2b3c4d5e6f70_create_orders.py"
    text = rev.read_text().replace(
        'op.create_index(op.f("ix_orders_customer_id"), "orders", ["customer_id"], unique=False)',
        'op.create_index(op.f("ix_orders_customer_id"), "orders", ["customer"], unique=False)',
    )
    rev.write_text(text)
    r = run_cli("verify", ".", "--database", "embedded", "--checks", "upgrade", cwd=proj)
    assert r.code == 1
    (f,) = r.findings("migration-failed")
    assert f["revision"] == "2b3c4d5e6f70"
    assert f["file"] == "migrations/versions/2b3c4d5e6f70_create_orders.py"
    assert f["line"] == 32
    assert 'column "customer" does not exist' in f["message"]
    assert "CREATE INDEX ix_orders_customer_id" in f["detail"]


def test_env_import_error_points_at_env_py(project: Any) -> None:
    proj: Path = project("env_import_error")
    r = run_cli("verify", ".", "--database", "embedded", "--checks", CORE, cwd=proj)
    assert r.code == 1
    (f,) = r.findings("env-failed")
    assert (f["file"], f["line"]) == ("migrations/env.py", 22)
    assert "No module named 'app.reporting'" in f["message"]
    assert "Traceback" not in r.stderr


def test_missing_alembic_ini_is_a_usage_error(tmp_path: Path) -> None:
    r = run_cli("verify", str(tmp_path), cwd=tmp_path)
    assert r.code == 2
    assert "alembic.ini" in r.stderr and str(tmp_path) in r.stderr
    assert "Traceback" not in r.stderr
    assert r.report is None


def test_unknown_setting_names_key_and_file(project: Any) -> None:
    proj: Path = project("sync_good")
    (proj / ".alembic-preflight.yml").write_text("checks: [graph]\nstepwize: true\n")
    r = run_cli("verify", ".", cwd=proj)
    assert r.code == 2
    assert "stepwize" in r.stderr and ".alembic-preflight.yml" in r.stderr


def test_settings_from_pyproject_and_flags_override(project: Any) -> None:
    proj: Path = project("drift")
    (proj / "pyproject.toml").write_text(
        '[tool.alembic-preflight]\nchecks = ["graph", "upgrade", "drift"]\ndatabase = "embedded"\n'
    )
    r = run_cli("verify", ".", cwd=proj)
    assert [c["id"] for c in r.report["checks"]] == ["graph", "upgrade", "drift"]
    assert r.code == 1
    r = run_cli("verify", ".", "--skip", "drift", cwd=proj)
    assert [c["id"] for c in r.report["checks"]] == ["graph", "upgrade"]
    assert r.code == 0


def test_no_server_binaries_is_exit_3(project: Any, tmp_path: Path) -> None:
    proj: Path = project("sync_good")
    r = run_cli(
        "verify",
        ".",
        "--database",
        "embedded",
        "--pg-bin",
        str(tmp_path),
        "--checks",
        "upgrade",
        cwd=proj,
    )
    assert r.code == 3
    assert "--pg-bin" in r.stderr
    assert r.report is not None and r.check("upgrade")["status"] == "error"


def _tcp_less_url(server: Server, user: str, password: str, db: str) -> str:
    # through the embedded server's private socket, where any password is accepted (trust)
    return f"postgresql://{user}:{password}@/{db}?host={server.socket_dir}&port={server.port}"


def test_url_backend_uses_its_own_database_and_drops_it(project: Any, pg_server: Server) -> None:
    proj: Path = project("sync_good")
    url = _tcp_less_url(pg_server, "postgres", "s3cr3t-pw", "postgres")
    r = run_cli("verify", ".", "--database-url", url, "--checks", CORE, cwd=proj)
    assert r.code == 0, r.stdout + r.stderr
    assert r.report["database"]["backend"] == "url"
    assert "s3cr3t-pw" not in r.stdout + r.stderr
    with psycopg.connect(pg_server.conninfo()) as c:
        left = c.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'preflight_%'"
        ).fetchall()
        tables = c.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
    assert left == []
    assert tables == (0,)


def test_url_backend_refuses_a_database_that_holds_tables(project: Any, pg_server: Server) -> None:
    proj: Path = project("sync_good")
    with psycopg.connect(pg_server.conninfo(), autocommit=True) as c:
        c.execute("DROP DATABASE IF EXISTS appdb")
        c.execute("DROP ROLE IF EXISTS app")
        c.execute("CREATE ROLE app LOGIN NOCREATEDB")
        c.execute("CREATE DATABASE appdb OWNER app")
    with psycopg.connect(pg_server.conninfo("appdb"), user="app", autocommit=True) as c:
        c.execute("CREATE TABLE precious (id int)")
        c.execute("INSERT INTO precious VALUES (1)")
    url = _tcp_less_url(pg_server, "app", "pw", "appdb")
    r = run_cli("verify", ".", "--database-url", url, "--checks", "upgrade", cwd=proj)
    assert r.code == 2, r.stdout + r.stderr
    assert "refusing" in r.stderr and "--allow-non-empty" in r.stderr
    with psycopg.connect(pg_server.conninfo("appdb")) as c:
        assert c.execute("SELECT count(*) FROM precious").fetchone() == (1,)
        assert c.execute("SELECT count(*) FROM pg_tables WHERE schemaname='public'").fetchone() == (
            1,
        )


def test_example_project_in_repo_passes() -> None:
    r = run_cli("verify", "examples/project", "--database", "embedded", cwd=ROOT)
    assert r.code == 0, r.stdout + r.stderr
    assert r.report["project"]["config"] == "examples/project/alembic.ini"


def test_sigterm_removes_everything(tmp_path: Path) -> None:
    """CI cancels a job with SIGTERM: the run ends with 130 and leaves no process behind."""
    import os
    import signal
    import subprocess
    import sys
    import time
    import uuid

    from tests.conftest import processes_with as _processes_with

    marker = uuid.uuid4().hex
    env = {**os.environ, "PREFLIGHT_TEST_MARK": marker, "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "alembic_preflight",
            "verify",
            str(ROOT / "tests/fixtures/sleeps"),
            "--database",
            "embedded",
            "--checks",
            "stepwise",
            "--step-timeout",
            "600",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # wait until the server is up and a migration hangs
    time.sleep(1)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any("postgres" in p for p in _processes_with(marker)):
        time.sleep(0.2)
    time.sleep(4)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert "Traceback" not in err
    time.sleep(0.5)
    assert _processes_with(marker) == []


def test_async_template_wrapping_a_sync_engine_works_without_flags(project: Any) -> None:
    # issue 16: AsyncEngine(engine_from_config(...)), Alembic's async template before 1.8,
    # refused the psycopg URL we hand out ("the loaded 'psycopg' is not async")
    proj: Path = project("async_engine_wrapper")
    r = run_cli("verify", ".", "--database", "embedded", cwd=proj)
    assert r.code == 0, r.stdout + r.stderr
    statuses = {c["id"]: c["status"] for c in r.report["checks"]}
    assert statuses["upgrade"] == statuses["roundtrip"] == statuses["stepwise"] == "passed"
