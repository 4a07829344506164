"""Small real Alembic projects written on the fly: one revision file per step, and a long
correct history generated from a few patterns (each with its exact downgrade)."""

from __future__ import annotations

import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

ENV_PY = """\
from logging.config import fileConfig

from alembic import context
from sqlalchemy import engine_from_config, pool

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name)

target_metadata = None


def run_migrations_online() -> None:
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
"""

TEMPLATE = '''\
"""{message}

Revision ID: {rev}
Revises: {down_text}
"""
{imports}from alembic import op
import sqlalchemy as sa

revision = {rev!r}
down_revision = {down!r}
branch_labels = None
depends_on = {depends!r}


def upgrade() -> None:
{upgrade}


def downgrade() -> None:
{downgrade}
'''


@dataclass(frozen=True)
class Rev:
    rev: str
    down: str | tuple[str, ...] | None
    upgrade: str
    downgrade: str
    message: str = "step"
    depends_on: str | tuple[str, ...] | None = None
    imports: str = ""


def write_project(root: Path, revisions: list[Rev]) -> Path:
    """alembic.ini and env.py as `alembic init` makes them (no models), plus the revisions."""
    (root / "migrations" / "versions").mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / "sync_good" / "alembic.ini", root / "alembic.ini")
    (root / "migrations" / "env.py").write_text(ENV_PY)
    for r in revisions:
        down_text = ", ".join(r.down) if isinstance(r.down, tuple) else (r.down or "")
        (root / "migrations" / "versions" / f"{r.rev}_{r.message.replace(' ', '_')}.py").write_text(
            TEMPLATE.format(
                message=r.message,
                rev=r.rev,
                down=r.down,
                down_text=down_text,
                depends=r.depends_on,
                imports=r.imports,
                upgrade=textwrap.indent(textwrap.dedent(r.upgrade).strip(), "    "),
                downgrade=textwrap.indent(textwrap.dedent(r.downgrade).strip(), "    "),
            )
        )
    return root


def line_of(path: Path, text: str) -> int:
    """1-based line of the first line containing `text`."""
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if text in line:
            return i
    raise AssertionError(f"{text!r} not in {path}")


def long_history(n: int) -> list[Rev]:
    """n revisions on a straight line, cycling through what long-lived projects do: tables,
    NOT NULL columns with server defaults, indexes, foreign keys, enum types, unique and
    check constraints, data updates; every downgrade exact."""
    revs: list[Rev] = []
    tables: list[str] = []
    for i in range(n):
        rev = f"r{i:04d}"
        down = revs[-1].rev if revs else None
        kind = i % 8 if tables else 0
        t = tables[-1] if tables else ""
        if kind == 0:
            t = f"t{i:04d}"
            tables.append(t)
            up = f"""
                op.create_table(
                    "{t}",
                    sa.Column("id", sa.Integer(), primary_key=True),
                    sa.Column("name", sa.String(40), nullable=False),
                    sa.Column("created_at", sa.DateTime(), server_default=sa.text("now()")),
                )
            """
            dn = f'op.drop_table("{t}")'
        elif kind == 1:
            up = f'op.add_column("{t}", sa.Column("qty_{i}", sa.Integer(), '
            up += 'nullable=False, server_default="0"))'
            dn = f'op.drop_column("{t}", "qty_{i}")'
        elif kind == 2:
            up = f'op.create_index("ix_{t}_name", "{t}", ["name"])'
            dn = f'op.drop_index("ix_{t}_name", table_name="{t}")'
        elif kind == 3 and len(tables) > 1:
            parent = tables[-2]
            up = f"""
                op.add_column("{t}", sa.Column("{parent}_id", sa.Integer(), nullable=True))
                op.create_foreign_key("fk_{t}_{parent}", "{t}", "{parent}", ["{parent}_id"], ["id"],
                                      ondelete="SET NULL")
            """
            dn = f"""
                op.drop_constraint("fk_{t}_{parent}", "{t}", type_="foreignkey")
                op.drop_column("{t}", "{parent}_id")
            """
        elif kind == 4:
            e = f"status_{i:04d}"
            up = f"""
                status = sa.Enum("new", "done", name="{e}")
                status.create(op.get_bind())
                op.add_column("{t}", sa.Column("status", status, nullable=False,
                                               server_default="new"))
            """
            dn = f"""
                op.drop_column("{t}", "status")
                sa.Enum(name="{e}").drop(op.get_bind())
            """
        elif kind in (3, 5):  # 3: no second table to point a foreign key at yet
            up = f'op.execute("UPDATE {t} SET name = upper(name)")'
            dn = f'op.execute("UPDATE {t} SET name = lower(name)")'
        elif kind == 6:
            up = f'op.create_unique_constraint("uq_{t}_name", "{t}", ["name"])'
            dn = f'op.drop_constraint("uq_{t}_name", "{t}", type_="unique")'
        else:
            up = f'op.create_check_constraint("ck_{t}_name", "{t}", "length(name) > 0")'
            dn = f'op.drop_constraint("ck_{t}_name", "{t}", type_="check")'
        revs.append(Rev(rev, down, up, dn, message=f"step {i}"))
    return revs
