"""Generate an Alembic project with N correct, realistic revisions for benchmarks.

    python bench/generate.py DIR --revisions 200 [--seed 7]

The project is what `alembic init` makes (generic template, sync env.py) plus a
`benchapp/models.py` that matches head exactly, so `alembic check` is clean. Revisions
create tables (columns with server defaults, primary keys, unique constraints, foreign
keys), add columns, indexes and foreign keys, create enum types and use them, rename
columns and tables, widen columns, change server defaults and update data, each with a
downgrade that undoes it exactly. Every few dozen revisions the history branches into
two revisions and merges them again. The same seed gives the same project, byte for byte.

Importable: `generate(path, n, seed=...)` returns a `Generated` summary, so other
generators (a "long real-looking" mode) can reuse the pieces.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import re
import shutil
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Generated", "generate"]

# --- the project around the revisions ------------------------------------------------

ALEMBIC_INI = """\
# A generic, single database configuration (as `alembic init` writes it, trimmed).

[alembic]
script_location = %(here)s/migrations
prepend_sys_path = .
path_separator = os

# env.py prefers the DATABASE_URL environment variable over this
sqlalchemy.url = postgresql+psycopg://postgres@localhost/bench


[loggers]
keys = root,sqlalchemy,alembic

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console
qualname =

[logger_sqlalchemy]
level = WARNING
handlers =
qualname = sqlalchemy.engine

[logger_alembic]
level = INFO
handlers =
qualname = alembic

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
datefmt = %H:%M:%S
"""

ENV_PY = '''\
import os
from logging.config import fileConfig

from sqlalchemy import Connection
from sqlalchemy import engine_from_config
from sqlalchemy import pool

from alembic import context

# this is the Alembic Config object, which provides
# access to the values within the .ini file in use.
config = context.config

# Interpret the config file for Python logging.
# This line sets up loggers basically.
if config.config_file_name is not None:
    fileConfig(config.config_file_name)

# add your model's MetaData object here
# for 'autogenerate' support
from benchapp.models import metadata

target_metadata = metadata


def get_url() -> str:
    return os.environ.get("DATABASE_URL") or config.get_main_option("sqlalchemy.url")


def run_migrations_offline() -> None:
    """Run migrations in 'offline' mode."""
    context.configure(
        url=get_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )

    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run migrations in 'online' mode.

    An engine or connection handed in through config.attributes (the Alembic
    cookbook's "sharing a connection", which pytest-alembic uses) is used as it is.
    """
    connectable = config.attributes.get("connection", None)
    if connectable is None:
        section = config.get_section(config.config_ini_section, {})
        section["sqlalchemy.url"] = get_url()
        connectable = engine_from_config(section, prefix="sqlalchemy.", poolclass=pool.NullPool)

    if isinstance(connectable, Connection):
        run_with(connectable)
    else:  # an Engine, or pytest-alembic's WrappingConnection
        with connectable.connect() as connection:
            run_with(connection)


def run_with(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)

    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
'''

SCRIPT_MAKO = '''\
"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
${imports if imports else ""}

# revision identifiers, used by Alembic.
revision: str = ${repr(up_revision)}
down_revision: Union[str, Sequence[str], None] = ${repr(down_revision)}
branch_labels: Union[str, Sequence[str], None] = ${repr(branch_labels)}
depends_on: Union[str, Sequence[str], None] = ${repr(depends_on)}


def upgrade() -> None:
    """Upgrade schema."""
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    """Downgrade schema."""
    ${downgrades if downgrades else "pass"}
'''

REVISION = '''\
"""{message}

Revision ID: {revision}
Revises: {revises}
Create Date: {date}

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


# revision identifiers, used by Alembic.
revision: str = {revision!r}
down_revision: Union[str, Sequence[str], None] = {down!r}
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
{upgrade}


def downgrade() -> None:
    """Downgrade schema."""
{downgrade}
'''

CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

TABLE_WORDS = [
    "customers",
    "orders",
    "invoices",
    "payments",
    "products",
    "suppliers",
    "shipments",
    "warehouses",
    "employees",
    "departments",
    "projects",
    "tasks",
    "tickets",
    "comments",
    "accounts",
    "addresses",
    "carts",
    "coupons",
    "reviews",
    "categories",
    "tags",
    "sessions",
    "devices",
    "events",
    "subscriptions",
    "plans",
    "refunds",
    "deliveries",
    "vendors",
    "contracts",
    "assets",
    "licenses",
    "teams",
    "roles",
    "permissions",
    "notes",
    "attachments",
    "messages",
    "threads",
    "channels",
    "reports",
    "audits",
    "budgets",
    "expenses",
]
COLUMN_WORDS = [
    "title",
    "label",
    "code",
    "status_note",
    "description",
    "quantity",
    "price",
    "amount",
    "balance",
    "score",
    "rank",
    "priority",
    "weight",
    "height",
    "width",
    "rating",
    "total",
    "discount",
    "tax",
    "level",
    "version",
    "retries",
    "attempts",
    "visits",
    "position",
    "region",
    "country",
    "city",
    "phone",
    "email_address",
    "reference",
    "external_id",
    "color",
    "size",
    "notes",
    "summary",
    "source",
    "medium",
    "campaign",
]
ENUM_VALUES = (
    ("draft", "active", "archived"),
    ("new", "paid", "shipped", "cancelled"),
    ("low", "medium", "high"),
    ("pending", "approved", "rejected"),
    ("bronze", "silver", "gold", "platinum"),
)


# --- the schema the revisions build, in memory ------------------------------------------


@dataclass(frozen=True)
class ColType:
    """A column type: its source in a revision, in the models, and what a default is."""

    code: str  # sa.String(length=100)
    kind: str  # int | str | bool | ts | num | text | enum
    default: str | None  # server_default source, e.g. '"0"', or None for none


@dataclass
class Column:
    name: str
    type: ColType
    nullable: bool = True
    server_default: str | None = None
    enum: str | None = None  # name of the enum type this column uses
    plain: bool = True  # no index, constraint or enum on it: safe to rename


@dataclass
class Table:
    name: str
    columns: list[Column]
    indexes: dict[str, str] = field(default_factory=dict)  # name -> column
    uniques: dict[str, str] = field(default_factory=dict)  # name -> column
    fks: dict[str, tuple[str, str, str]] = field(
        default_factory=dict
    )  # name -> (column, table, ondelete)
    order: int = 0  # creation order: foreign keys only point at older tables (no cycles)

    @property
    def pk(self) -> str:
        return f"pk_{self.name}"

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


@dataclass
class Schema:
    tables: dict[str, Table] = field(default_factory=dict)
    enums: dict[str, tuple[str, ...]] = field(default_factory=dict)
    sequences: dict[str, str] = field(default_factory=dict)  # table -> its id sequence
    names: set[str] = field(default_factory=set)  # relations, types: one namespace here


@dataclass(frozen=True)
class Revision:
    revision: str
    down: str | tuple[str, ...] | None
    message: str
    upgrade: list[str]
    downgrade: list[str]


@dataclass(frozen=True)
class Generated:
    path: Path
    revisions: int
    heads: tuple[str, ...]
    tables: int
    enums: int
    merges: int


def _types(rng: random.Random) -> ColType:
    n = rng.choice((50, 100, 200))
    return rng.choice(
        (
            ColType("sa.Integer()", "int", '"0"'),
            ColType("sa.BigInteger()", "int", '"0"'),
            ColType(f"sa.String(length={n})", "str", "\"''\""),
            ColType("sa.Text()", "text", None),
            ColType("sa.Boolean()", "bool", 'sa.text("false")'),
            ColType("sa.DateTime(timezone=True)", "ts", 'sa.text("now()")'),
            ColType("sa.Numeric(precision=12, scale=2)", "num", '"0"'),
        )
    )


class _Builder:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.schema = Schema()
        self.revisions: list[Revision] = []
        self.merges = 0

    # names ----------------------------------------------------------------------------
    def _rev_id(self) -> str:
        return f"{self.rng.getrandbits(48):012x}"

    def _unique(self, base: str) -> str:
        name, k = base, 2
        while name in self.schema.names:
            name, k = f"{base}_{k}", k + 1
        self.schema.names.add(name)
        return name

    def _column_name(self, table: Table, base: str | None = None) -> str:
        taken = {c.name for c in table.columns}
        base = base or self.rng.choice(COLUMN_WORDS)
        name, k = base, 2
        while name in taken:
            name, k = f"{base}_{k}", k + 1
        return name

    # operations: each returns (message, upgrade lines, downgrade lines) or None --------
    def op_create_table(
        self, exclude: frozenset[str] = frozenset()
    ) -> tuple[str, list[str], list[str]]:
        rng, s = self.rng, self.schema
        name = self._unique(rng.choice(TABLE_WORDS))
        s.names.add(f"{name}_id_seq")
        s.names.add(f"pk_{name}")
        s.sequences[name] = f"{name}_id_seq"
        table = Table(
            name,
            [Column("id", ColType("sa.Integer()", "int", None), False, plain=False)],
            order=len(s.names),
        )
        up: list[str] = []
        down: list[str] = [f'op.drop_table("{name}")']
        for _ in range(rng.randint(2, 4)):
            t = _types(rng)
            col = Column(self._column_name(table), t)
            if t.default is not None and rng.random() < 0.6:
                col.server_default, col.nullable = t.default, False
            table.columns.append(col)
        if rng.random() < 0.4:
            col = Column(
                self._column_name(table, "code"), ColType("sa.String(length=40)", "str", None)
            )
            col.plain = False
            table.columns.append(col)
            table.uniques[self._unique(f"uq_{name}_{col.name}")] = col.name
        parents = [t for t in s.tables if t not in exclude]
        if parents and rng.random() < 0.6:
            ref = rng.choice(parents)
            col = Column(
                self._column_name(table, f"{ref}_id"), ColType("sa.Integer()", "int", None)
            )
            col.plain = False
            table.columns.append(col)
            table.fks[f"fk_{name}_{col.name}_{ref}"] = (col.name, ref, "CASCADE")
            table.indexes[self._unique(f"ix_{name}_{col.name}")] = col.name
        enum_up: list[str] = []
        if rng.random() < 0.2:
            col_name = self._column_name(table, "state")
            enum = self._unique(f"{name}_{col_name}")
            values = rng.choice(ENUM_VALUES)
            s.enums[enum] = values
            col = Column(col_name, ColType("", "enum", None), False, repr(values[0]), enum, False)
            table.columns.append(col)
            enum_up = [
                f"sa.Enum({', '.join(map(repr, values))}, name={enum!r}).create(op.get_bind())"
            ]
            down.append(f"sa.Enum(name={enum!r}).drop(op.get_bind())")
        args = [f'"{name}"'] + [_column_source(c) for c in table.columns]
        args.append(f'sa.PrimaryKeyConstraint("id", name="pk_{name}")')
        for fk, (col_name, ref, _) in table.fks.items():
            args.append(
                f'sa.ForeignKeyConstraint(["{col_name}"], ["{ref}.id"], name="{fk}", '
                'ondelete="CASCADE")'
            )
        for uq, col_name in table.uniques.items():
            args.append(f'sa.UniqueConstraint("{col_name}", name="{uq}")')
        up = [*enum_up, "op.create_table(", *(f"    {a}," for a in args), ")"]
        for ix, col_name in table.indexes.items():
            up.append(f'op.create_index("{ix}", "{name}", ["{col_name}"], unique=False)')
        s.tables[name] = table
        return f"create {name} table", up, down

    def op_add_column(self) -> tuple[str, list[str], list[str]] | None:
        table = self._pick_table()
        t = _types(self.rng)
        col = Column(self._column_name(table), t)
        if t.default is not None and self.rng.random() < 0.7:
            col.server_default, col.nullable = t.default, False
        table.columns.append(col)
        return (
            f"add {col.name} to {table.name}",
            [f'op.add_column("{table.name}", {_column_source(col)})'],
            [f'op.drop_column("{table.name}", "{col.name}")'],
        )

    def op_add_index(self) -> tuple[str, list[str], list[str]] | None:
        options = [
            (t, c)
            for t in self.schema.tables.values()
            for c in t.columns
            if c.plain and c.type.kind in {"int", "str", "ts", "bool"} and c.name != "id"
        ]
        if not options:
            return None
        table, col = self.rng.choice(options)
        ix = self._unique(f"ix_{table.name}_{col.name}")
        col.plain = False
        table.indexes[ix] = col.name
        return (
            f"index {table.name}.{col.name}",
            [f'op.create_index("{ix}", "{table.name}", ["{col.name}"], unique=False)'],
            [f'op.drop_index("{ix}", table_name="{table.name}")'],
        )

    def op_add_foreign_key(self) -> tuple[str, list[str], list[str]] | None:
        table = self._pick_table()
        # only older tables: a cycle of foreign keys is legal but leaves tables that no
        # INSERT can fill first (seeded rows, fixtures), which real schemas avoid
        older = [t.name for t in self.schema.tables.values() if t.order < table.order]
        if not older:
            return None
        ref = self.rng.choice(older)
        col = Column(self._column_name(table, f"{ref}_id"), ColType("sa.Integer()", "int", None))
        col.plain = False
        table.columns.append(col)
        fk = f"fk_{table.name}_{col.name}_{ref}"
        ix = self._unique(f"ix_{table.name}_{col.name}")
        table.fks[fk] = (col.name, ref, "SET NULL")
        table.indexes[ix] = col.name
        return (
            f"link {table.name} to {ref}",
            [
                f'op.add_column("{table.name}", {_column_source(col)})',
                f'op.create_foreign_key("{fk}", "{table.name}", "{ref}", ["{col.name}"], '
                '["id"], ondelete="SET NULL")',
                f'op.create_index("{ix}", "{table.name}", ["{col.name}"], unique=False)',
            ],
            [
                f'op.drop_index("{ix}", table_name="{table.name}")',
                f'op.drop_constraint("{fk}", "{table.name}", type_="foreignkey")',
                f'op.drop_column("{table.name}", "{col.name}")',
            ],
        )

    def op_add_enum_column(self) -> tuple[str, list[str], list[str]] | None:
        table = self._pick_table()
        col_name = self._column_name(table, self.rng.choice(("status", "tier", "stage", "kind")))
        enum = self._unique(f"{table.name}_{col_name}")
        values = self.rng.choice(ENUM_VALUES)
        self.schema.enums[enum] = values
        col = Column(col_name, ColType("", "enum", None), False, repr(values[0]), enum, False)
        table.columns.append(col)
        return (
            f"add {col_name} ({enum}) to {table.name}",
            [
                f"{enum} = sa.Enum({', '.join(map(repr, values))}, name={enum!r})",
                f"{enum}.create(op.get_bind())",
                f'op.add_column("{table.name}", {_column_source(col)})',
            ],
            [
                f'op.drop_column("{table.name}", "{col_name}")',
                f"sa.Enum(name={enum!r}).drop(op.get_bind())",
            ],
        )

    def op_update_data(self) -> tuple[str, list[str], list[str]] | None:
        options = [
            (t, c)
            for t in self.schema.tables.values()
            for c in t.columns
            if c.name != "id" and c.type.kind in {"int", "bool", "str"} and c.plain
        ]
        if not options:
            return None
        table, col = self.rng.choice(options)
        t, c = table.name, col.name
        if col.type.kind == "bool":
            up = [f'op.execute("UPDATE {t} SET {c} = NOT {c}")']
            down = list(up)
            what = f"flip {t}.{c}"
        elif col.type.kind == "int":
            up = [f'op.execute("UPDATE {t} SET {c} = {c} + 1 WHERE {c} < 1000000")']
            down = [f'op.execute("UPDATE {t} SET {c} = {c} - 1 WHERE {c} <= 1000000")']
            what = f"bump {t}.{c}"
        else:
            up = [f"op.execute(\"UPDATE {t} SET {c} = 'n/a' WHERE {c} IS NULL\")"]
            down = [f"op.execute(\"UPDATE {t} SET {c} = NULL WHERE {c} = 'n/a'\")"]
            what = f"backfill {t}.{c}"
        return what, up, down

    def op_rename_column(self) -> tuple[str, list[str], list[str]] | None:
        options = [
            (t, c)
            for t in self.schema.tables.values()
            for c in t.columns
            if c.plain and c.name != "id"
        ]
        if not options:
            return None
        table, col = self.rng.choice(options)
        old = col.name
        new = self._column_name(table)
        col.name = new
        return (
            f"rename {table.name}.{old} to {new}",
            [f'op.alter_column("{table.name}", "{old}", new_column_name="{new}")'],
            [f'op.alter_column("{table.name}", "{new}", new_column_name="{old}")'],
        )

    def op_rename_table(self) -> tuple[str, list[str], list[str]] | None:
        s = self.schema
        referenced = {fk[1] for t in s.tables.values() for fk in t.fks.values()}
        options = [
            t
            for t in s.tables.values()
            if not t.indexes and not t.uniques and not t.fks and t.name not in referenced
        ]
        if not options:
            return None
        table = self.rng.choice(options)
        old, old_pk, old_seq = table.name, table.pk, s.sequences[table.name]
        new = self._unique(self.rng.choice(TABLE_WORDS))
        new_seq = self._unique(f"{new}_id_seq")
        s.names.add(f"pk_{new}")
        table.name = new
        del s.tables[old]
        s.tables[new] = table
        del s.sequences[old]
        s.sequences[new] = new_seq
        return (
            f"rename {old} to {new}",
            [
                f'op.rename_table("{old}", "{new}")',
                f'op.execute("ALTER TABLE {new} RENAME CONSTRAINT {old_pk} TO {table.pk}")',
                f'op.execute("ALTER SEQUENCE {old_seq} RENAME TO {new_seq}")',
            ],
            [
                f'op.execute("ALTER SEQUENCE {new_seq} RENAME TO {old_seq}")',
                f'op.execute("ALTER TABLE {new} RENAME CONSTRAINT {table.pk} TO {old_pk}")',
                f'op.rename_table("{new}", "{old}")',
            ],
        )

    def op_widen_column(self) -> tuple[str, list[str], list[str]] | None:
        options = [
            (t, c)
            for t in self.schema.tables.values()
            for c in t.columns
            if c.type.kind == "str" and c.type.code.startswith("sa.String(length=") and c.plain
        ]
        if not options:
            return None
        table, col = self.rng.choice(options)
        old = col.type
        length = int(old.code.split("=")[1].rstrip(")"))
        col.type = ColType(f"sa.String(length={length * 2})", "str", old.default)
        nullable = f", existing_nullable={col.nullable}"
        return (
            f"widen {table.name}.{col.name} to {length * 2} characters",
            [
                f'op.alter_column("{table.name}", "{col.name}", existing_type={old.code}, '
                f"type_={col.type.code}{nullable})"
            ],
            [
                f'op.alter_column("{table.name}", "{col.name}", existing_type={col.type.code}, '
                f"type_={old.code}{nullable})"
            ],
        )

    def op_change_default(self) -> tuple[str, list[str], list[str]] | None:
        options = [
            (t, c)
            for t in self.schema.tables.values()
            for c in t.columns
            if c.type.kind in {"int", "num"}
            and c.name != "id"
            and c.enum is None
            and not c.name.endswith("_id")
        ]
        if not options:
            return None
        table, col = self.rng.choice(options)
        old = col.server_default
        new = f'"{self.rng.randint(1, 9)}"'
        if new == old:
            return None
        col.server_default = new
        return (
            f"default {table.name}.{col.name} to {new.strip(chr(34))}",
            [
                f'op.alter_column("{table.name}", "{col.name}", existing_type={col.type.code}, '
                f"server_default={new}, existing_nullable={col.nullable})"
            ],
            [
                f'op.alter_column("{table.name}", "{col.name}", existing_type={col.type.code}, '
                f"server_default={old}, existing_nullable={col.nullable})"
            ],
        )

    def _pick_table(self) -> Table:
        # recent tables are touched more often, as in real histories
        tables = list(self.schema.tables.values())
        recent = tables[-8:]
        return self.rng.choice(recent if self.rng.random() < 0.7 else tables)

    # the history ------------------------------------------------------------------------
    def build(self, n: int, branches: bool = True) -> list[Revision]:
        ops: list[tuple[float, Callable[[], tuple[str, list[str], list[str]] | None]]] = [
            (0.16, self.op_create_table),
            (0.18, self.op_add_column),
            (0.11, self.op_add_index),
            (0.10, self.op_add_foreign_key),
            (0.08, self.op_add_enum_column),
            (0.12, self.op_update_data),
            (0.08, self.op_rename_column),
            (0.05, self.op_rename_table),
            (0.06, self.op_widen_column),
            (0.06, self.op_change_default),
        ]
        head: str | None = None
        while len(self.revisions) < n:
            left = n - len(self.revisions)
            if (
                branches
                and len(self.schema.tables) >= 2
                and left >= 3
                and len(self.revisions) % 40 == 20
            ):
                # a branch and its merge: two create-table revisions on one parent
                existing = frozenset(self.schema.tables)
                a = self._revision(head, *self.op_create_table())
                created = frozenset(self.schema.tables) - existing
                b = self._revision(head, *self.op_create_table(exclude=created))
                head = self._revision((a, b), f"merge {a} and {b}", [], [])
                self.merges += 1
                continue
            step: tuple[str, list[str], list[str]] | None = None
            if not self.schema.tables:
                step = self.op_create_table()
            else:
                while step is None:
                    fn = self.rng.choices([f for _, f in ops], [w for w, _ in ops])[0]
                    step = fn()
            head = self._revision(head, *step)
        return self.revisions

    def _revision(
        self, down: str | tuple[str, ...] | None, message: str, up: list[str], downgrade: list[str]
    ) -> str:
        rev = self._rev_id()
        self.revisions.append(Revision(rev, down, message, up, downgrade))
        return rev

    # rendering --------------------------------------------------------------------------
    def models(self) -> str:
        lines = [
            '"""The application\'s tables, as the migrations leave them at head."""',
            "",
            "import sqlalchemy as sa",
            "",
            f"convention = {CONVENTION!r}",
            "",
            "metadata = sa.MetaData(naming_convention=convention)",
            "",
        ]
        for enum, values in self.schema.enums.items():
            lines.append(f"{enum} = sa.Enum({', '.join(map(repr, values))}, name={enum!r})")
        for table in self.schema.tables.values():
            lines += ["", f"{table.name} = sa.Table(", f'    "{table.name}",', "    metadata,"]
            for c in table.columns:
                if c.name == "id":
                    lines.append('    sa.Column("id", sa.Integer(), primary_key=True),')
                else:
                    lines.append(f"    {_column_source(c, model=True)},")
            for fk, (col_name, ref, ondelete) in table.fks.items():
                lines.append(
                    f'    sa.ForeignKeyConstraint(["{col_name}"], ["{ref}.id"], name="{fk}", '
                    f"ondelete={ondelete!r}),"
                )
            for uq, col_name in table.uniques.items():
                lines.append(f'    sa.UniqueConstraint("{col_name}", name="{uq}"),')
            for ix, col_name in table.indexes.items():
                lines.append(f'    sa.Index("{ix}", "{col_name}"),')
            lines.append(")")
        return "\n".join(lines) + "\n"


def _column_source(c: Column, model: bool = False) -> str:
    if c.enum is not None:
        type_code = c.enum if model else f"postgresql.ENUM(name={c.enum!r}, create_type=False)"
    else:
        type_code = c.type.code
    parts = [f'"{c.name}"', type_code]
    if c.name == "id":
        parts.append("nullable=False")
        return f"sa.Column({', '.join(parts)})"
    if c.server_default is not None:
        parts.append(f"server_default={c.server_default}")
    parts.append(f"nullable={c.nullable}")
    return f"sa.Column({', '.join(parts)})"


def _body(lines: list[str]) -> str:
    return textwrap.indent("\n".join(lines) or "pass", "    ")


def generate(path: Path | str, n: int, seed: int = 7, branches: bool = True) -> Generated:
    """Write an Alembic project with `n` revisions (merges included) into `path`.

    `path` is replaced if it exists. The same (n, seed) always writes the same files.
    branches=False: a linear history (no branch and merge every 40 revisions)."""
    if n < 1:
        raise ValueError("n must be at least 1")
    path = Path(path)
    if path.exists():
        shutil.rmtree(path)
    versions = path / "migrations" / "versions"
    versions.mkdir(parents=True)
    (path / "benchapp").mkdir()
    builder = _Builder(seed)
    revisions = builder.build(n, branches=branches)
    (path / "alembic.ini").write_text(ALEMBIC_INI)
    (path / "migrations" / "env.py").write_text(ENV_PY)
    (path / "migrations" / "script.py.mako").write_text(SCRIPT_MAKO)
    (path / "migrations" / "README").write_text("Generic single-database configuration.\n")
    (path / "benchapp" / "__init__.py").write_text("")
    (path / "benchapp" / "models.py").write_text(builder.models())
    start = dt.datetime(2024, 1, 8, 9, 30, 0)
    for i, r in enumerate(revisions):
        revises = ", ".join(r.down) if isinstance(r.down, tuple) else (r.down or "")
        slug = re.sub(r"[^a-z0-9]+", "_", r.message.lower())[:40].strip("_")
        text = REVISION.format(
            message=r.message,
            revision=r.revision,
            revises=revises,
            date=(start + dt.timedelta(hours=7 * i, minutes=13 * i)).strftime(
                "%Y-%m-%d %H:%M:%S.000000"
            ),
            down=r.down,
            upgrade=_body(r.upgrade),
            downgrade=_body(r.downgrade),
        )
        (versions / f"{r.revision}_{slug}.py").write_text(text)
    children = {
        d for r in revisions for d in ((r.down,) if isinstance(r.down, str) else r.down or ())
    }
    heads = tuple(r.revision for r in revisions if r.revision not in children)
    return Generated(
        path=path,
        revisions=len(revisions),
        heads=heads,
        tables=len(builder.schema.tables),
        enums=len(builder.schema.enums),
        merges=builder.merges,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--revisions", "-n", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--linear", action="store_true", help="no branch and merge")
    args = parser.parse_args(argv)
    g = generate(args.path, args.revisions, seed=args.seed, branches=not args.linear)
    print(
        f"{g.path}: {g.revisions} revisions ({g.merges} merges), {g.tables} tables, "
        f"{g.enums} enum types, head {', '.join(g.heads)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
