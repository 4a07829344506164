"""How the URL and the configuration reach a project, and pull-request focus, via the CLI."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import run_cli


def test_env_py_reading_x_dburl(project: Any) -> None:
    proj: Path = project("sync_good")
    env_py = proj / "migrations" / "env.py"
    text = env_py.read_text()
    # this env.py ignores sqlalchemy.url and DATABASE_URL: only -x dburl reaches it
    text = text.replace(
        "def run_migrations_online() -> None:",
        "config.set_main_option('sqlalchemy.url', context.get_x_argument(as_dictionary=True)"
        "['dburl'])\n\n\ndef run_migrations_online() -> None:",
    )
    env_py.write_text(text)
    (proj / "alembic.ini").write_text(
        (proj / "alembic.ini")
        .read_text()
        .replace("sqlalchemy.url = driver://user:pass@localhost/dbname", "sqlalchemy.url = nope://")
    )
    r = run_cli(
        "verify",
        ".",
        "--database",
        "embedded",
        "--checks",
        "upgrade,roundtrip",
        "--url-env",
        "UNUSED_URL",
        cwd=proj,
    )
    assert r.code == 0, r.stdout + r.stderr


def test_config_elsewhere_and_another_section(project: Any) -> None:
    proj: Path = project("sync_good")
    ini = (proj / "alembic.ini").read_text()
    (proj / "alembic.ini").unlink()
    (proj / "deploy").mkdir()
    (proj / "deploy" / "migrations.ini").write_text(
        ini.replace("[alembic]", "[tenant_db]").replace(
            "script_location = %(here)s/migrations", "script_location = %(here)s/../migrations"
        )
    )
    r = run_cli("verify", ".", "--database", "embedded", "--checks", "graph,upgrade", cwd=proj)
    assert r.code == 2 and "alembic.ini" in r.stderr
    r = run_cli(
        "verify",
        ".",
        "-c",
        "deploy/migrations.ini",
        "--database",
        "embedded",
        "--checks",
        "graph,upgrade",
        cwd=proj,
    )
    assert r.code == 2 and "[alembic]" in r.stderr and "--name" in r.stderr
    r = run_cli(
        "verify",
        ".",
        "-c",
        "deploy/migrations.ini",
        "--name",
        "tenant_db",
        "--database",
        "embedded",
        "--checks",
        "graph,upgrade",
        cwd=proj,
    )
    assert r.code == 0, r.stdout + r.stderr
    assert r.report["project"]["config"] == "deploy/migrations.ini"


def git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


NEW_REVISION = '''"""fix"""
from alembic import op
import sqlalchemy as sa

revision = "4d5e6f708192"
down_revision = "3c4d5e6f7081"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("note", sa.Text(), nullable=False))


def downgrade() -> None:
    pass
'''


def test_changed_since_lints_only_the_new_revision(project: Any) -> None:
    proj: Path = project("sync_good")
    old = proj / "migrations" / "versions" / "1a2b3c4d5e6f_create_customers.py"
    old.write_text(old.read_text().replace('    op.drop_table("customers")', "    pass"))
    git(proj, "init", "-q", "-b", "main")
    git(proj, "add", ".")
    git(proj, "commit", "-qm", "history")
    (proj / "migrations" / "versions" / "4d5e6f708192_fix.py").write_text(NEW_REVISION)
    r = run_cli("verify", ".", "--checks", "lint", cwd=proj)
    assert {f["revision"] for f in r.findings()} == {"1a2b3c4d5e6f", "4d5e6f708192"}
    r = run_cli("verify", ".", "--checks", "lint", "--changed-since", "main", cwd=proj)
    assert r.code == 1
    assert {f["revision"] for f in r.findings()} == {"4d5e6f708192"}
    rules = {f["rule"] for f in r.findings()}
    assert {"empty-downgrade", "not-null-without-server-default", "vague-message"} <= rules
    r = run_cli("verify", ".", "--checks", "lint", "--changed-since", "nosuchref", cwd=proj)
    assert r.code == 2 and "nosuchref" in r.stderr
