"""Deploy compatibility: the base branch's models (the running release) against the schema
this branch's migrations build, in a real git repository built per test and a real
embedded PostgreSQL."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.checks.histories import line_of
from tests.conftest import FIXTURES, git, run_cli

HEAD = "3c4d5e6f7081"  # sync_good's head on main
NEW = "4d5e6f708192"  # the branch's revision

REVISION = '''"""{message}

Revision ID: {rev}
Revises: {down}
Create Date: 2026-11-30 20:00:00

"""
from alembic import op
import sqlalchemy as sa

revision = "{rev}"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
{upgrade}


def downgrade() -> None:
    pass
'''

# what each branch's revision does, and the rule it must fail with (None: quiet), at
# the line holding the text given
BRANCHES: dict[str, tuple[str, str | None, str | None]] = {
    "drop": ('    op.drop_column("customers", "name")', "column-dropped-in-use", '"name"'),
    "drop-table": ('    op.drop_table("orders")', "table-dropped-in-use", '"orders"'),
    "rename-table": (
        '    op.rename_table("orders", "purchases")',
        "table-dropped-in-use",
        '"orders"',
    ),
    "rename": (
        '    op.alter_column(\n        "customers", "name", new_column_name="full_name"\n    )',
        "column-renamed-in-use",
        '"name", new_column_name',
    ),
    "not-null": (
        '    op.add_column("orders", sa.Column("currency", sa.String(3), nullable=False))',
        "not-null-unknown-to-running-code",
        '"currency"',
    ),
    "narrow": (
        '    op.alter_column(\n        "customers",\n        "name",\n'
        "        type_=sa.String(50),\n        existing_type=sa.String(100),\n    )",
        "type-changed-in-use",
        '"name"',
    ),
    "enum-label": (
        '    op.execute("ALTER TABLE orders ALTER COLUMN status DROP DEFAULT")\n'
        '    op.execute("ALTER TYPE order_status RENAME TO order_status_old")\n'
        "    op.execute(\"CREATE TYPE order_status AS ENUM ('new', 'paid')\")\n"
        '    op.execute(\n        "ALTER TABLE orders ALTER COLUMN status TYPE order_status"\n'
        '        " USING status::text::order_status"\n    )\n'
        "    op.execute(\"ALTER TABLE orders ALTER COLUMN status SET DEFAULT 'new'\")\n"
        '    op.execute("DROP TYPE order_status_old")',
        "enum-value-removed-in-use",
        "ALTER TYPE order_status RENAME",
    ),
    "additive": (
        '    op.add_column("orders", sa.Column("note", sa.Text(), nullable=True))\n'
        "    op.add_column(\n"
        '        "orders",\n'
        '        sa.Column("paid", sa.Boolean(), server_default="false", nullable=False),\n'
        "    )\n"
        '    op.create_table("invoices", sa.Column("id", sa.Integer(), primary_key=True))\n'
        '    op.alter_column("customers", "name", type_=sa.String(200))\n'
        '    op.create_index("ix_orders_note", "orders", ["note"])',
        None,
        None,
    ),
}


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """main: sync_good (models and three revisions), committed."""
    for var in ("GITHUB_WORKSPACE", "CI_PROJECT_DIR"):
        monkeypatch.delenv(var, raising=False)
    dest = tmp_path / "repo"
    shutil.copytree(FIXTURES / "sync_good", dest, ignore=shutil.ignore_patterns("__pycache__"))
    (dest / ".gitignore").write_text("__pycache__/\n.alembic-preflight/\n")
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", ".")
    git(dest, "commit", "-q", "-m", "main")
    return dest


def branch(repo: Path, name: str, upgrade: str) -> Path:
    """A branch off main whose one revision's upgrade() is `upgrade`; its file."""
    git(repo, "checkout", "-q", "-b", name)
    path = repo / "migrations" / "versions" / f"{NEW}_{name.replace('-', '_')}.py"
    path.write_text(REVISION.format(message=name, rev=NEW, down=HEAD, upgrade=upgrade))
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", name)
    return path


def verify(repo: Path, *extra: str) -> Any:
    return run_cli("verify", ".", "--database", "embedded", "--checks", "compat", *extra, cwd=repo)


@pytest.mark.parametrize("name", sorted(BRANCHES))
def test_each_breaking_change_fails_at_its_revision_and_line(repo: Path, name: str) -> None:
    upgrade, rule, at = BRANCHES[name]
    path = branch(repo, name, upgrade)
    r = verify(repo, "--base-ref", "main")
    assert r.report is not None, r.stderr
    check = r.check("compat")
    if rule is None:
        assert check["status"] == "passed", (check, r.findings())
        assert r.findings() == []
        return
    assert r.code == 1, r.stdout + r.stderr
    assert check["status"] == "failed"
    assert [f["rule"] for f in r.findings()] == [rule], r.findings()
    (f,) = r.findings()
    assert f["revision"] == NEW
    assert (f["file"], f["line"]) == (f"migrations/versions/{path.name}", line_of(path, at))
    assert "base ref main" in f["message"]
    assert "expand, deploy, contract (base ref main → this branch)" in f["fix"]
    models = repo / "app" / "models.py"
    if name in ("drop", "rename", "narrow"):
        assert f"app/models.py:{line_of(models, '    name: Mapped')}" in f["message"]
    if name == "rename":
        assert "`full_name`" in f["message"]
    if name == "enum-label":
        assert "'shipped'" in f["message"]
        assert f"app/models.py:{line_of(models, '    status: Mapped')}" in f["message"]
    if name in ("drop-table", "rename-table"):
        assert f"app/models.py:{line_of(models, 'class Order')}" in f["message"]
    if name == "rename-table":
        assert "(renamed to `purchases`)" in f["message"]
    if name == "not-null":
        assert f"app/models.py:{line_of(models, 'class Order')}" in f["message"]


def test_skipped_with_a_notice_without_a_base_ref(repo: Path) -> None:
    branch(repo, "drop", BRANCHES["drop"][0])
    r = verify(repo)
    assert r.code == 0, r.stdout + r.stderr
    check = r.check("compat")
    assert check["status"] == "skipped"
    assert "no base ref" in check["note"]


def test_skipped_when_the_base_refs_env_py_has_no_target_metadata(repo: Path) -> None:
    env_py = repo / "migrations" / "env.py"
    env_py.write_text(
        env_py.read_text().replace("target_metadata = Base.metadata", "target_metadata = None")
    )
    git(repo, "commit", "-q", "-am", "no metadata")
    branch(repo, "drop", BRANCHES["drop"][0])
    r = verify(repo, "--base-ref", "main")
    assert r.code == 0, r.stdout + r.stderr
    check = r.check("compat")
    assert check["status"] == "skipped"
    assert "sets no target_metadata" in check["note"]


def test_skipped_when_the_base_refs_models_map_no_table(repo: Path) -> None:
    # zero work is never a pass: empty models would have "still fit the schema"
    env_py = repo / "migrations" / "env.py"
    env_py.write_text(
        env_py.read_text().replace(
            "target_metadata = Base.metadata",
            "from sqlalchemy import MetaData\n\ntarget_metadata = MetaData()",
        )
    )
    git(repo, "commit", "-q", "-am", "empty metadata")
    branch(repo, "drop", BRANCHES["drop"][0])
    check = verify(repo, "--base-ref", "main").check("compat")
    assert check["status"] == "skipped"
    assert "maps no table" in check["note"]


def test_the_job_summary_has_a_deploy_compatibility_section(repo: Path, tmp_path: Path) -> None:
    path = branch(repo, "drop", BRANCHES["drop"][0])
    summary = tmp_path / "summary.md"
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(repo),
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_OUTPUT": str(tmp_path / "output.txt"),
        "RUNNER_TEMP": str(tmp_path / "runner-temp"),
    }
    r = run_cli(
        "verify",
        ".",
        "--database",
        "embedded",
        "--checks",
        "compat",
        "--base-ref",
        "main",
        cwd=repo,
        env=env,
        report=False,
    )
    assert r.code == 1, r.stdout + r.stderr
    text = summary.read_text()
    section = text.split("### Deploy compatibility\n\n", 1)[1].split("\n\n###", 1)[0]
    assert section.startswith("base ref main → this branch: 1 change(s)")
    line = line_of(path, '"name"')
    assert f"{NEW}" in section and f"drop.py:{line}</code>" in section
    assert "column-dropped-in-use" in section


# -- the pure parts: types, renames -----------------------------------------------------
@pytest.mark.parametrize(
    ("old", "new", "breaks"),
    [
        ("VARCHAR(100)", "character varying(50)", "narrower"),
        ("VARCHAR(100)", "character varying(200)", None),
        ("VARCHAR(100)", "text", None),
        ("TEXT", "character varying(255)", "narrower"),
        ("BIGINT", "integer", "narrower"),
        ("INTEGER", "bigint", None),
        ("NUMERIC(10, 2)", "numeric(12,2)", None),
        ("NUMERIC(10, 2)", "numeric(10,1)", "narrower"),
        ("INTEGER", "text", "incompatible"),
        ("VARCHAR(20)", "integer", "incompatible"),
        ("TIMESTAMP WITHOUT TIME ZONE", "timestamp with time zone", None),
        ("JSON", "jsonb", None),
        ("BOOLEAN", "boolean", None),
        ("some_custom_type", "integer", None),  # a type we cannot judge stays quiet
    ],
)
def test_type_changes_the_old_release_cannot_write(old: str, new: str, breaks: str | None) -> None:
    from alembic_preflight.catalog.columns import LiveColumn
    from alembic_preflight.checks.compat import _type_break
    from alembic_preflight.worker.protocol import ModelColumn

    why = _type_break(ModelColumn("c", old, True, False), LiveColumn("c", new, False, False))
    assert (why.split()[0] if why else None) == {
        None: None,
        "narrower": "narrower",
        "incompatible": "a",
    }[breaks]


def test_a_rename_is_read_from_alter_column_batch_ops_and_sql(tmp_path: Path) -> None:
    from alembic_preflight.checks.compat import _renamed_column, _renamed_table
    from alembic_preflight.project.history import parse_revision_file

    body = (
        "    with op.batch_alter_table('customers') as batch_op:\n"
        "        batch_op.alter_column('name', new_column_name='full_name')\n"
        "    op.execute('ALTER TABLE orders RENAME COLUMN note TO remark')\n"
        "    op.rename_table('orders', 'purchases')"
    )
    text = REVISION.format(message="m", rev=NEW, down=HEAD, upgrade=body)
    f = parse_revision_file(tmp_path / f"{NEW}_m.py", text.encode())
    assert _renamed_column(f, "name") == "full_name"
    assert _renamed_column(f, "note") == "remark"
    assert _renamed_column(f, "email") is None
    assert _renamed_table(f, "orders") == "purchases"


def test_skipped_when_the_base_ref_imports_models_from_outside_its_files(
    repo: Path, tmp_path: Path
) -> None:
    # an installed package (or a sys.path entry ahead of the checkout) is what the branch
    # has, not what production runs: comparing with it would be quiet
    outside = tmp_path / "site"
    shutil.copytree(repo / "app", outside / "app")
    env_py = repo / "migrations" / "env.py"
    env_py.write_text(
        env_py.read_text().replace(
            "from app.models import Base",
            f"import sys\nsys.path.insert(0, {str(outside)!r})\nfrom app.models import Base",
        )
    )
    git(repo, "commit", "-q", "-am", "models from elsewhere")
    branch(repo, "drop", BRANCHES["drop"][0])
    r = verify(repo, "--base-ref", "main")
    assert r.code == 0, r.stdout + r.stderr
    check = r.check("compat")
    assert check["status"] == "skipped"
    assert "outside the base ref's files" in check["note"]


def test_a_base_env_py_that_connects_even_offline_reaches_no_database(repo: Path) -> None:
    # env.py run only online: the base worker's one allowed database does not exist
    env_py = repo / "migrations" / "env.py"
    env_py.write_text(env_py.read_text().replace("if context.is_offline_mode():", "if False:"))
    git(repo, "commit", "-q", "-am", "online only")
    branch(repo, "drop", BRANCHES["drop"][0])
    r = verify(repo, "--base-ref", "main")
    assert r.code == 0, r.stdout + r.stderr
    check = r.check("compat")
    assert check["status"] == "skipped"
    assert "could not read the models of base ref main" in check["note"]
    assert "does not exist" in check["note"]


def test_every_check_with_stepwise_beside_on_other_lanes(repo: Path) -> None:
    # compat runs on lane 0 among the other checks while stepwise walks beside them
    branch(repo, "rename", BRANCHES["rename"][0])
    r = run_cli("verify", ".", "--database", "embedded", "--base-ref", "main", "-j", "2", cwd=repo)
    assert r.report is not None, r.stderr
    statuses = {c["id"]: c["status"] for c in r.report["checks"]}
    assert statuses["compat"] == "failed", r.check("compat")
    assert statuses["stepwise"] == "failed"  # the rename's downgrade does nothing
    assert [f["rule"] for f in r.findings() if f["check"] == "compat"] == ["column-renamed-in-use"]
