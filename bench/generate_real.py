"""Generate a "long real-looking" Alembic history: hundreds of revisions mixing the
patterns long-lived projects contain (issue 8), with the findings the verifier must
report known in advance.

    python bench/generate_real.py DIR --revisions 300

Mostly correct revisions (tables, columns with server defaults, named indexes and check
constraints, data updates, an autocommit_block index, a branch point merged back, a
labelled branch left open with a depends_on across), and among them:

- downgrades that raise on purpose (RuntimeError after a docstring, bare ValueError,
  NotImplementedError with a message): one lint warning each, the run still passes them;
- downgrades that raise NotImplementedError only when run (behind an `if` lint cannot
  decide): stepwise's irreversible warning, the walk goes on;
- downgrades that fail when run (a misspelt index or column name): stepwise errors;
- upgrades that fail only with rows in the table: a NOT NULL column without a default
  (an error), a unique index on a column a backfill gave one value (a warning);
- `drop_constraint(None, ...)` (plain and in batch_alter_table): lint errors, and the
  stepwise downgrade fails on them;
- downgrades that leave an enum type, a sequence, a function, a trigger or an extension;
- a downgrade that drops a referenced table first (drop order);
- `op.get_bind().commit()` mid-migration: its changes are lost when it runs last.

`generate()` returns the expected findings as (check, rule, revision) triples, so a test
or the benchmark can compare the report with them. The same arguments give the same
project, byte for byte.
"""

# ruff: noqa: E501  (revision source in strings is written as a project would write it)
from __future__ import annotations

import argparse
import shutil
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ENV_PY = """\
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import engine_from_config, pool

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name)

target_metadata = None


def run_migrations_online() -> None:
    section = config.get_section(config.config_ini_section, {})
    # DATABASE_URL over the ini's placeholder, as deployed projects do (and bench/run.py)
    section["sqlalchemy.url"] = os.environ.get("DATABASE_URL", section["sqlalchemy.url"])
    connectable = engine_from_config(
        section,
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with connectable.connect() as connection:
        # one transaction per revision, as Alembic's docs advise with autocommit blocks
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            transaction_per_migration=True,
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
"""

ALEMBIC_INI = """\
[alembic]
script_location = %(here)s/migrations
prepend_sys_path = .
path_separator = os
sqlalchemy.url = driver://user:pass@localhost/dbname

[loggers]
keys = root

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console

[handler_console]
class = StreamHandler
args = (sys.stderr,)
formatter = generic

[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
"""

TEMPLATE = '''\
"""{message}

Revision ID: {rev}
Revises: {revises}
"""
from alembic import op
import sqlalchemy as sa

revision = {rev!r}
down_revision = {down!r}
branch_labels = {labels!r}
depends_on = {depends!r}


def upgrade() -> None:
{upgrade}


def downgrade() -> None:
{downgrade}
'''

Expected = tuple[str, str, str]  # (check, rule, revision)


@dataclass(frozen=True)
class Revision:
    rev: str
    down: str | tuple[str, ...] | None
    message: str
    upgrade: str
    downgrade: str
    labels: tuple[str, ...] | None = None
    depends: str | None = None
    expected: tuple[tuple[str, str], ...] = ()  # (check, rule) this revision must get


@dataclass
class Generated:
    path: Path
    revisions: int
    expected: list[Expected] = field(default_factory=list)

    def counts(self) -> Counter[tuple[str, str]]:
        return Counter((check, rule) for check, rule, _ in self.expected)


def rev_id(i: int) -> str:
    return f"{i:04d}ea1f00d5"


# --- the patterns -----------------------------------------------------------------------
# Each takes the revision number and the name of a table that exists at that point, and
# returns (message, upgrade, downgrade, expected (check, rule) pairs).

Pattern = tuple[str, str, str, tuple[tuple[str, str], ...]]


def create_table(i: int, t: str) -> Pattern:
    up = f"""
        op.create_table(
            "{t}",
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("name", sa.String(60), nullable=False, server_default=""),
            sa.Column("parent_id", sa.Integer(), nullable=True),
        )
    """
    return f"create {t}", up, f'op.drop_table("{t}")', ()


def correct(i: int, t: str) -> Pattern:
    kind = i % 5
    if kind == 0:
        up = f'op.add_column("{t}", sa.Column("qty_{i}", sa.Integer(), nullable=False, server_default="0"))'
        return f"add qty {i} to {t}", up, f'op.drop_column("{t}", "qty_{i}")', ()
    if kind == 1:
        up = f'op.create_index("ix_{t}_name_{i}", "{t}", ["name"])'
        dn = f'op.drop_index("ix_{t}_name_{i}", table_name="{t}")'
        return f"index {t} names", up, dn, ()
    if kind == 2:
        up = f'op.create_check_constraint("ck_{t}_name_{i}", "{t}", "length(name) < 60")'
        dn = f'op.drop_constraint("ck_{t}_name_{i}", "{t}", type_="check")'
        return f"limit {t} name length", up, dn, ()
    if kind == 3:
        up = f'op.execute("UPDATE {t} SET name = trim(name)")'
        dn = f'op.execute("UPDATE {t} SET name = name")'
        return f"trim {t} names", up, dn, ()
    up = f"""
        with op.get_context().autocommit_block():
            op.create_index("ix_{t}_parent_{i}", "{t}", ["parent_id"], postgresql_concurrently=True)
    """
    dn = f"""
        with op.get_context().autocommit_block():
            op.drop_index("ix_{t}_parent_{i}", table_name="{t}", postgresql_concurrently=True)
    """
    return f"index {t} parents concurrently", up, dn, ()


IRREVERSIBLE_BODIES = (
    '"""Deleted rows cannot come back."""\nraise RuntimeError("Cannot undelete data!")',
    "raise ValueError",
    'raise NotImplementedError("the old values are gone")',
)


def irreversible(i: int, t: str) -> Pattern:
    up = f"op.execute(\"DELETE FROM {t} WHERE name = 'obsolete {i}'\")"
    body = IRREVERSIBLE_BODIES[i % len(IRREVERSIBLE_BODIES)]
    return f"purge obsolete {t} rows", up, body, (("lint", "irreversible"),)


def irreversible_when_run(i: int, t: str) -> Pattern:
    # the raise is behind an `if`: no static test calls it irreversible, the walk finds out
    up = f'op.execute("UPDATE {t} SET name = lower(name) WHERE name <> lower(name)")'
    dn = """
        if op.get_context().dialect.name == "postgresql":
            raise NotImplementedError("the original case of the names is gone")
        op.execute("SELECT 1")
    """
    return f"lowercase {t} names", up, dn, (("stepwise", "irreversible"),)


def misspelt_drop(i: int, t: str) -> Pattern:
    # downgrade() names what upgrade() never made: it fails when run, lint cannot tell
    if i % 2:
        up = f'op.create_index("ix_{t}_parent_name_{i}", "{t}", ["parent_id", "name"])'
        dn = f'op.drop_index("ix_{t}_name_parent_{i}", table_name="{t}")'
        return f"index {t} by parent and name", up, dn, (("stepwise", "downgrade-failed"),)
    up = f'op.add_column("{t}", sa.Column("label_{i}", sa.String(30), nullable=True))'
    dn = f'op.drop_column("{t}", "lable_{i}")'
    return f"add label {i} to {t}", up, dn, (("stepwise", "downgrade-failed"),)


def fails_with_rows(i: int, t: str) -> Pattern:
    if i % 2:
        # passes on an empty table; on one with rows, the rows have no value for it
        up = f'op.add_column("{t}", sa.Column("owner_{i}", sa.Integer(), nullable=False))'
        dn = f'op.drop_column("{t}", "owner_{i}")'
        expected = (
            ("lint", "not-null-without-server-default"),
            ("stepwise", "fails-with-rows"),
        )
        return f"add owner {i} to {t}", up, dn, expected
    # a backfill gives every existing row the same code: the unique index fails on two
    # rows (a value-dependent failure: a warning, real data may differ)
    up = f"""
        op.add_column("{t}", sa.Column("code_{i}", sa.String(20), nullable=True))
        op.execute("UPDATE {t} SET code_{i} = 'none'")
        op.create_index("uq_{t}_code_{i}", "{t}", ["code_{i}"], unique=True)
    """
    dn = f"""
        op.drop_index("uq_{t}_code_{i}", table_name="{t}")
        op.drop_column("{t}", "code_{i}")
    """
    expected = (("lint", "mixed-data-and-schema"), ("stepwise", "fails-with-synthetic-rows"))
    return f"add unique code {i} to {t}", up, dn, expected


def unnamed_drop(i: int, t: str) -> Pattern:
    # a check constraint rather than a foreign key: the same failure (SQLAlchemy cannot
    # emit DROP CONSTRAINT without a name), and no foreign key for synthetic rows to break
    if i % 2:
        up = f'op.create_check_constraint(None, "{t}", "length(name) < {i + 100}")'
        dn = f'op.drop_constraint(None, "{t}", type_="check")'
    else:
        up = f"""
            with op.batch_alter_table("{t}") as batch_op:
                batch_op.create_check_constraint(None, "length(name) < {i + 100}")
        """
        dn = f"""
            with op.batch_alter_table("{t}") as batch_op:
                batch_op.drop_constraint(None, type_="check")
        """
    expected = (
        ("lint", "unnamed-constraint"),
        ("lint", "unnamed-drop-constraint"),
        ("stepwise", "downgrade-failed"),
    )
    return f"limit {t} name length again", up, dn, expected


def left_behind(i: int, t: str, kind: str) -> Pattern:
    leaves = (("stepwise", "downgrade-leaves-behind"),)
    if kind == "enum":
        up = f"""
            state = sa.Enum("open", "closed", name="state_{i}")
            state.create(op.get_bind())
            op.add_column("{t}", sa.Column("state_{i}", state, nullable=False, server_default="open"))
        """
        return f"add {t} state", up, f'op.drop_column("{t}", "state_{i}")', leaves
    if kind == "sequence":
        up = f'op.execute("CREATE SEQUENCE numbers_{i} START 1000")'
        dn = f'op.execute("DROP SEQUENCE IF EXISTS number_{i}")'
        return f"number sequence {i}", up, dn, leaves
    if kind == "function":
        up = f"op.execute(\"CREATE FUNCTION label_{i}(n integer) RETURNS text LANGUAGE sql AS $$ SELECT 'n' || n $$\")"
        dn = f'op.execute("DROP FUNCTION IF EXISTS label_{i}(bigint)")'
        return f"label function {i}", up, dn, leaves
    if kind == "trigger":
        up = f"""
            op.execute(
                "CREATE FUNCTION touch_{i}() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN NEW.name := trim(NEW.name); RETURN NEW; END $$"
            )
            op.execute(
                "CREATE TRIGGER {t}_touch_{i} BEFORE UPDATE ON {t} "
                "FOR EACH ROW EXECUTE FUNCTION touch_{i}()"
            )
        """
        dn = f'op.execute("DROP TRIGGER IF EXISTS {t}_touch ON {t}")'
        return f"trim {t} names on update", up, dn, leaves
    # an extension from PostgreSQL's contrib, created once per history
    up = f'op.execute("CREATE EXTENSION IF NOT EXISTS {kind}")'
    return f"enable {kind}", up, 'op.execute("SELECT 1")', leaves


def drop_order(i: int, t: str) -> Pattern:
    a, b = f"groups_{i}", f"members_{i}"
    up = f"""
        op.create_table("{a}", sa.Column("id", sa.Integer(), primary_key=True))
        op.create_table(
            "{b}",
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("group_id", sa.Integer(), sa.ForeignKey("{a}.id", name="fk_{b}_group_id"), nullable=True),
        )
    """
    dn = f"""
        op.drop_table("{a}")
        op.drop_table("{b}")
    """
    return f"create {a} and {b}", up, dn, (("stepwise", "downgrade-failed"),)


def commit_mid(i: int, t: str) -> Pattern:
    up = f"""
        op.get_bind().commit()
        op.add_column("{t}", sa.Column("note_{i}", sa.String(40), nullable=True))
    """
    return (
        f"add {t} note",
        up,
        f'op.drop_column("{t}", "note_{i}")',
        (("stepwise", "upgrade-not-committed"),),
    )


LEFT_KINDS = ("enum", "sequence", "function", "trigger")
EXTENSIONS = ("citext", "pg_trgm")


def plan(n: int, *, defects: bool = True) -> list[Revision]:
    """The revisions in file order. A branch point near 1/3 merged back, a labelled branch
    near 1/2 left open (its last revision depends_on a trunk revision). `defects=False`:
    the mix before issue 21 (fewer failures: 6 downgrades that fail, 12 irreversible, 15
    leftovers per 300), which tests of the console's layout were sized for."""
    revs: list[Revision] = []
    trunk: str | None = None
    tables: list[str] = []
    branch_at = n // 3 if n >= 30 else None
    label_at = n // 2 if n >= 40 else None
    commit_at = (2 * n) // 3 if n >= 30 else None
    drop_orders = {n // 5, (4 * n) // 5} if n >= 20 else set()
    left_count = 0
    ext_left = list(EXTENSIONS)
    i = 0

    def add(down: str | tuple[str, ...] | None, p: Pattern, **kw: object) -> str:
        nonlocal i
        message, up, dn, expected = p
        rev = rev_id(i)
        revs.append(
            Revision(rev, down, message, up, dn, expected=expected, **kw)  # type: ignore[arg-type]
        )
        i += 1
        return rev

    while i < n:
        if not tables or i % 12 == 0:
            t = f"t{i:04d}"
            tables.append(t)
            trunk = add(trunk, create_table(i, t))
            continue
        t = tables[-1]
        if branch_at is not None and i == branch_at and n - i > 6:
            # two branches from one revision, merged again: each branch creates its own table
            point = trunk
            left = add(point, create_table(i, f"ba{i:04d}"))
            left = add(left, create_table(i, f"bb{i:04d}"))
            right = add(point, create_table(i, f"bc{i:04d}"))
            trunk = add((left, right), ("merge branches", "pass", "pass", ()))
            continue
        if label_at is not None and i == label_at and n - i > 6:
            # a labelled branch off the trunk, still separate at the end
            first = add(trunk, create_table(i, f"rp{i:04d}"), labels=("reporting",))
            anchor = trunk
            assert anchor is not None
            add(first, create_table(i, f"rq{i:04d}"), depends=anchor)
            continue
        if i % 25 == 5 or (defects and i % 100 == 62):
            trunk = add(trunk, irreversible(i, t))
        elif defects and i % 25 == 20:
            trunk = add(trunk, irreversible_when_run(i, t))
        elif defects and i % 19 == 9:
            trunk = add(trunk, misspelt_drop(i, t))
        elif defects and i % 150 in (41, 114):
            trunk = add(trunk, fails_with_rows(i, t))
        elif i % 75 == 10:
            trunk = add(trunk, unnamed_drop(i, t))
        elif i in drop_orders:
            trunk = add(trunk, drop_order(i, t))
        elif commit_at is not None and i == commit_at:
            trunk = add(trunk, commit_mid(i, t))
        elif i % 19 == 17 or (defects and i % 50 in (31, 44)):
            kind = ext_left.pop(0) if left_count % 6 == 5 and ext_left else None
            kind = kind or LEFT_KINDS[left_count % len(LEFT_KINDS)]
            left_count += 1
            trunk = add(trunk, left_behind(i, t, kind))
        else:
            trunk = add(trunk, correct(i, t))
    return revs


def generate(path: Path, revisions: int = 300, *, defects: bool = True) -> Generated:
    if path.exists():
        shutil.rmtree(path)
    versions = path / "migrations" / "versions"
    versions.mkdir(parents=True)
    (path / "alembic.ini").write_text(ALEMBIC_INI)
    (path / "migrations" / "env.py").write_text(ENV_PY)
    revs = plan(revisions, defects=defects)
    for r in revs:
        revises = ", ".join(r.down) if isinstance(r.down, tuple) else (r.down or "")
        slug = "_".join(r.message.split())
        (versions / f"{r.rev}_{slug}.py").write_text(
            TEMPLATE.format(
                message=r.message,
                rev=r.rev,
                revises=revises,
                down=r.down,
                labels=r.labels,
                depends=r.depends,
                upgrade=_body(r.upgrade),
                downgrade=_body(r.downgrade),
            )
        )
    expected = [(check, rule, r.rev) for r in revs for check, rule in r.expected]
    heads = _heads(revs)
    if len(heads) > 1:  # the labelled branch: a notice naming the first head in file order
        expected.append(("graph", "multiple-heads", min(heads)))
    return Generated(path=path, revisions=len(revs), expected=sorted(expected))


def _heads(revs: list[Revision]) -> list[str]:
    parents = {p for r in revs for p in (r.down if isinstance(r.down, tuple) else (r.down,)) if p}
    return [r.rev for r in revs if r.rev not in parents]


def _body(text: str) -> str:
    return textwrap.indent(textwrap.dedent(text).strip(), "    ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--revisions", type=int, default=300)
    args = parser.parse_args()
    generated = generate(args.directory, args.revisions)
    print(
        f"{generated.revisions} revisions in {generated.path}; "
        f"{len(generated.expected)} expected findings:"
    )
    for (check, rule), count in sorted(generated.counts().items()):
        print(f"  {count:>4}  {check}/{rule}")


if __name__ == "__main__":
    main()
