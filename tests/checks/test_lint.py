"""The lint check, run on small real Alembic projects."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

from alembic_preflight.checks import lint
from alembic_preflight.checks.base import CheckContext
from alembic_preflight.checks.lint.rules import DEFAULT_SEVERITY as RULES
from alembic_preflight.checks.lint.rules import file_name_pattern, hits
from alembic_preflight.checks.lint.visitor import Facts
from alembic_preflight.database.base import Server
from alembic_preflight.findings import Finding, Severity
from alembic_preflight.project import load_project
from alembic_preflight.project.history import parse_revision_file
from alembic_preflight.settings import LintSettings, build_settings

FIXTURES = Path(__file__).parent.parent / "fixtures"
LINT_RULES = FIXTURES / "lint_rules"
VERSIONS = "tests/fixtures/lint_rules/migrations/versions/"


def findings(project_dir: Path, **flags: Any) -> list[Finding]:
    settings = build_settings(project_dir, flags)
    return list(lint.run(CheckContext(settings, load_project(settings))))


def where(found: list[Finding]) -> list[tuple[str, int | None, int | None, str]]:
    """(file name's first 14 characters, line, column, rule): enough to tell them apart."""
    return [(Path(f.file or "").name[:14], f.line, f.column, f.rule) for f in found]


EXPECTED = [
    ("aa0000000002_a", 26, 1, "empty-downgrade"),
    ("aa0000000003_c", 26, 44, "unnamed-constraint"),  # sa.ForeignKey("users.id")
    ("aa0000000003_c", 27, 40, "unnamed-constraint"),  # unique=True
    ("aa0000000003_c", 30, 9, "unnamed-constraint"),  # sa.UniqueConstraint(...)
    ("aa0000000003_c", 31, 9, "unnamed-constraint"),  # sa.CheckConstraint(...)
    ("aa0000000003_c", 33, 21, "unnamed-constraint"),  # create_index(None, ...)
    ("aa0000000003_c", 34, 33, "unnamed-constraint"),
    ("aa0000000003_c", 35, 27, "unnamed-constraint"),
    ("aa0000000003_c", 36, 32, "unnamed-constraint"),
    ("aa0000000004_d", 23, 24, "unnamed-drop-constraint"),  # op.drop_constraint(None, ...)
    ("aa0000000004_d", 25, 50, "unnamed-drop-constraint"),  # batch_op, constraint_name=None
    ("aa0000000005_a", 23, 27, "constraint-prefix"),
    ("aa0000000005_a", 24, 21, "constraint-prefix"),
    ("aa0000000005_a", 25, 49, "constraint-prefix"),
    ("aa0000000005_a", 26, 32, "constraint-prefix"),
    ("aa0000000006_a", 23, 64, "not-null-without-server-default"),
    ("aa0000000006_a", 27, 62, "not-null-without-server-default"),  # batch_op.add_column
    ("aa0000000007_a", 23, 66, "python-side-default"),
    ("aa0000000008_b", 24, 5, "mixed-data-and-schema"),  # op.execute("UPDATE ...")
    ("aa0000000008_b", 26, 5, "mixed-data-and-schema"),  # op.bulk_insert
    ("aa0000000009_u", 1, 1, "vague-message"),
    ("aa0000000011_d", 23, 5, "destructive-upgrade"),  # drop_column
    ("aa0000000011_d", 24, 5, "destructive-upgrade"),  # drop_table
    ("aa0000000011_d", 25, 5, "destructive-upgrade"),  # op.execute("DROP TABLE ...")
    ("aa0000000012_i", 23, 5, "concurrently-in-transaction"),
    ("aa0000000012_i", 24, 5, "concurrently-in-transaction"),
    ("aa0000000012_i", 34, 5, "concurrently-in-transaction"),  # in downgrade()
    ("aa0000000013_r", 25, 5, "destructive-upgrade"),  # the one line not suppressed
    ("aa0000000015_r", 26, 1, "data-not-undone"),  # an UPDATE, and downgrade() is pass
    ("add_phone_to_u", 15, 1, "file-name-template"),
]


def test_every_rule_at_its_line_and_column() -> None:
    found = findings(LINT_RULES)
    assert where(found) == EXPECTED
    for f in found:
        assert f.check == "lint"
        assert f.severity is RULES[f.rule]
        assert f.fix and "\n" not in f.fix
        assert f.file is not None and f.file.startswith(VERSIONS)
    assert {f.rule for f in found} == set(RULES) - {"irreversible"}


def test_clean_and_file_suppressed_revisions_stay_quiet() -> None:
    files = {Path(f.file or "").name for f in findings(LINT_RULES)}
    assert "aa0000000001_create_users_and_accounts.py" not in files
    assert "aa0000000014_legacy_revision_with_unnamed_index.py" not in files


def test_messages_say_what_and_where() -> None:
    found = {(Path(f.file or "").name[:14], f.line): f for f in findings(LINT_RULES)}
    assert "'accounts_user_fkey'" in found["aa0000000005_a", 23].message
    assert "'fk_'" in found["aa0000000005_a", 23].message
    assert "status" in found["aa0000000006_a", 23].message
    assert "data is lost" in found["aa0000000011_d", 23].message
    assert "'update'" in found["aa0000000009_u", 1].message
    assert found["aa0000000009_u", 1].revision == "aa0000000009"


def test_other_fixtures_are_clean() -> None:
    assert findings(FIXTURES / "branches_merges") == []
    assert findings(FIXTURES / "several_heads") == []


@pytest.mark.parametrize(
    ("setting", "severity"),
    [("warn", Severity.WARNING), ("error", Severity.ERROR), ("allow", None)],
)
def test_irreversible_by_design(setting: str, severity: Severity | None) -> None:
    found = findings(FIXTURES / "irreversible", irreversible=setting)
    irreversible = [
        (Path(f.file or "").name[:12], f.line, f.severity)
        for f in found
        if f.rule == "irreversible"
    ]
    if severity is None:
        assert irreversible == []
    else:
        assert irreversible == [
            ("2b2b2b2b2b2b", 28, severity),  # raise NotImplementedError(), no docstring
            ("3c3c3c3c3c3c", 28, severity),  # RuntimeError("Cannot undelete data!")
            ("4d4d4d4d4d4d", 28, severity),  # bare raise ValueError
        ]
    # never reported as an empty downgrade
    assert not [f for f in found if f.rule == "empty-downgrade"]


def test_disable_and_severity_settings() -> None:
    settings = LintSettings(
        disable=("unnamed-constraint", "vague-message"),
        severity={"destructive-upgrade": Severity.ERROR},
    )
    found = findings(LINT_RULES, lint=settings)
    rules = {f.rule for f in found}
    assert "unnamed-constraint" not in rules and "vague-message" not in rules
    assert {f.severity for f in found if f.rule == "destructive-upgrade"} == {Severity.ERROR}
    assert len(found) == len(EXPECTED) - 9


def test_unknown_rule_in_settings_is_reported() -> None:
    found = findings(LINT_RULES, lint=LintSettings(disable=("no-such-rule",)))
    (unknown,) = [f for f in found if f.rule == "unknown-rule"]
    assert "'no-such-rule'" in unknown.message


def test_an_unknown_rule_in_the_settings_file_is_placed_at_its_line(tmp_path: Path) -> None:
    """The warning points at the settings file's line that names the rule (an annotation
    there in a pull request), as a bad value in that file is."""
    proj = tmp_path / "lint_rules"
    shutil.copytree(LINT_RULES, proj, ignore=shutil.ignore_patterns("__pycache__"))
    (proj / ".alembic-preflight.yml").write_text(
        "lint:\n  disable: [vague-message]\n  severity:\n    destructive-upgrade: error\n"
        "    no-such-rule: warning\n  enable:\n    - other-rule\n"
    )
    unknown = [f for f in findings(proj) if f.rule == "unknown-rule"]
    found = sorted((f.message, Path(f.file or "").name, f.line) for f in unknown)
    assert found == [
        ("lint settings name an unknown rule 'no-such-rule'", ".alembic-preflight.yml", 5),
        ("lint settings name an unknown rule 'other-rule'", ".alembic-preflight.yml", 6),
    ]


def test_configured_prefixes() -> None:
    prefixes = {"fk": "fk_", "ix": "idx_", "uq": "uq_", "ck": "ck_", "pk": "pk_"}
    found = findings(LINT_RULES, lint=LintSettings(prefixes=prefixes))
    prefix = [x for x in where(found) if x[3] == "constraint-prefix"]
    assert prefix == [
        # the clean revision's op.f("ix_accounts_user_id") and "ix_users_created_at"
        ("aa0000000001_c", 40, 21, "constraint-prefix"),
        ("aa0000000001_c", 43, 25, "constraint-prefix"),
        ("aa0000000005_a", 23, 27, "constraint-prefix"),
        ("aa0000000005_a", 24, 21, "constraint-prefix"),
        ("aa0000000005_a", 25, 49, "constraint-prefix"),
        ("aa0000000005_a", 26, 32, "constraint-prefix"),
        # pk only when configured; the unique index "uq_users_lower_email" may use uq_
        ("aa0000000005_a", 28, 27, "constraint-prefix"),
        ("aa0000000012_i", 23, 21, "constraint-prefix"),
    ]


def test_naming_convention_in_imported_models_quiets_unnamed_constraints(
    tmp_path: Path,
) -> None:
    shutil.copytree(LINT_RULES, tmp_path, dirs_exist_ok=True)
    (tmp_path / "myapp").mkdir()
    (tmp_path / "myapp" / "__init__.py").write_text("")
    (tmp_path / "myapp" / "models.py").write_text(
        "import sqlalchemy as sa\n\n"
        'metadata = sa.MetaData(naming_convention={"uq": "uq_%(table_name)s_%(column_0_name)s"})\n'
    )
    env = tmp_path / "migrations" / "env.py"
    env.write_text(
        env.read_text().replace(
            "target_metadata = None",
            "from myapp.models import metadata\ntarget_metadata = metadata",
        )
    )
    rules = [f.rule for f in findings(tmp_path)]
    assert "unnamed-constraint" not in rules
    # a drop without a name cannot run whatever the convention
    assert rules.count("unnamed-drop-constraint") == 2


def test_unnamed_constraint_advice_makes_no_drift() -> None:
    # a naming_convention added on an existing database names the models' constraints
    # differently from those the database has: only with a migration renaming them
    fixes = [f.fix for f in findings(LINT_RULES) if f.rule == "unnamed-constraint"]
    for text in [*fixes, lint.RULES["unnamed-constraint"].help]:
        assert text and "name it explicitly" in text.lower(), text
        assert "new project" in text and "renames the existing constraints" in text, text


def test_naming_convention_in_a_comment_does_not_count(tmp_path: Path) -> None:
    shutil.copytree(LINT_RULES, tmp_path, dirs_exist_ok=True)
    env = tmp_path / "migrations" / "env.py"
    env.write_text("# TODO: naming_convention\n" + env.read_text())
    assert [f.rule for f in findings(tmp_path)].count("unnamed-constraint") == 8


# lint_rules' alembic.ini sets Alembic's default template explicitly
EXPLICIT_TEMPLATE = "file_template = %%(rev)s_%%(slug)s\n"


def test_file_template_from_alembic_ini(tmp_path: Path) -> None:
    shutil.copytree(LINT_RULES, tmp_path, dirs_exist_ok=True)
    ini = tmp_path / "alembic.ini"
    ini.write_text(
        ini.read_text().replace(
            EXPLICIT_TEMPLATE, "file_template = %%(year)d_%%(month).2d_%%(rev)s_%%(slug)s\n"
        )
    )
    versions = tmp_path / "migrations" / "versions"
    dated = "2026_01_aa0000000009_update.py"
    (versions / "aa0000000009_update.py").rename(versions / dated)
    files = {Path(f.file or "").name for f in findings(tmp_path) if f.rule == "file-name-template"}
    assert len(files) == 14  # every file but the renamed one lacks the date
    assert dated not in files


def test_file_names_are_not_judged_without_a_file_template(tmp_path: Path) -> None:
    # Alembic's default then names new files; how older files were named is no
    # convention the team chose
    shutil.copytree(LINT_RULES, tmp_path, dirs_exist_ok=True)
    ini = tmp_path / "alembic.ini"
    assert EXPLICIT_TEMPLATE in ini.read_text()
    ini.write_text(ini.read_text().replace(EXPLICIT_TEMPLATE, ""))
    assert [f for f in findings(tmp_path) if f.rule == "file-name-template"] == []


def test_file_name_pattern_tokens() -> None:
    default = file_name_pattern("%(rev)s_%(slug)s", "ab12")
    assert default.fullmatch("ab12_add_email")
    assert default.fullmatch("ab12_")  # no message: empty slug
    assert not default.fullmatch("cd34_add_email")
    dated = file_name_pattern(
        "%%(year)d/%%(month).2d/%%(day).2d_%%(hour).2d%%(minute).2d_%%(second).2d_%%(rev)s_%%(slug)s",
        "ab12",
    )
    assert dated.fullmatch("2026/01/05_1030_59_ab12_add_email")
    assert not dated.fullmatch("2026_01_05_1030_59_ab12_add_email")
    escaped = file_name_pattern("%(epoch)s%%_%(rev)s", "ab12")
    assert escaped.fullmatch("1700000000%_ab12")
    assert not escaped.fullmatch("1700000000_ab12")


def rule_hits(body: str, facts: Facts | None = None) -> list[tuple[str, int, int]]:
    source = f'"""add things"""\nrevision = "ab12"\ndown_revision = None\n{body}'
    f = parse_revision_file(Path("ab12_add_things.py"), source.encode())
    return [(h.rule, h.line, h.column) for h in hits(f, facts or Facts())]


def test_data_statements_in_their_various_spellings() -> None:
    body = (
        "def upgrade():\n"  # line 4
        "    op.add_column('t', sa.Column('c', sa.Integer()))\n"
        "    conn = op.get_bind()\n"
        "    conn.execute(sa.text('update t set c = 1'))\n"  # line 7
        "    op.execute(f'DELETE FROM {TABLE} WHERE c IS NULL')\n"
        "    op.execute(t.insert().values(c=2))\n"
        "    op.execute('SELECT 1')\n"  # neither schema nor data
        "\n"
        "def downgrade():\n"
        "    op.execute('UPDATE t SET c = NULL')\n"  # data only: fine
        "    op.drop_column('t', 'c')\n"
    )
    assert rule_hits(body) == [
        ("mixed-data-and-schema", 7, 5),
        ("mixed-data-and-schema", 8, 5),
        ("mixed-data-and-schema", 9, 5),
        ("mixed-data-and-schema", 13, 5),
    ]


def test_mixing_data_and_schema_gives_the_real_reasons() -> None:
    # PostgreSQL's DDL is transactional and Alembic runs the revision in a transaction:
    # a failure half-way leaves nothing to redo; the locks and the length are the cost
    texts = [f.message for f in findings(LINT_RULES) if f.rule == "mixed-data-and-schema"]
    texts.append(lint.RULES["mixed-data-and-schema"].help)
    for text in texts:
        assert "redo" not in text and "hard to roll back" not in text
        assert "ACCESS EXCLUSIVE" in text and "re-run" in text, text


def test_schema_by_raw_ddl_counts_for_mixing() -> None:
    body = (
        "def upgrade():\n"
        "    op.execute('ALTER TABLE t ADD COLUMN c int')\n"
        "    op.execute('UPDATE t SET c = 1')\n"
        "\n"
        "def downgrade():\n"
        "    op.execute('ALTER TABLE t DROP COLUMN c')\n"
    )
    assert rule_hits(body) == [("mixed-data-and-schema", 6, 5)]


def test_merge_revision_and_no_op_revision_need_no_downgrade() -> None:
    merge = 'down_revision = ("a", "b")\ndef upgrade():\n    pass\ndef downgrade():\n    pass\n'
    assert rule_hits(merge) == []
    missing = "def upgrade():\n    op.drop_index('ix_t_c')\n"
    assert rule_hits(missing) == [("empty-downgrade", 2, 1)]


# upgrade() bodies, and what an empty downgrade() beside them is: an error only where
# upgrade() visibly changes the schema
UPGRADES = [
    # data only: a notice
    ("op.execute(\"UPDATE accounts SET plan = 'basic'\")", "data-not-undone"),
    ("op.bulk_insert(plans, [{'name': 'pro'}])", "data-not-undone"),
    ("op.execute(\"SELECT setval('plans_id_seq', 42)\")", "data-not-undone"),
    ("op.get_bind().execute(sa.update(t).values(c=1))", "data-not-undone"),
    ("seed_plans(op.get_bind())\n    op.execute('DELETE FROM plans')", "data-not-undone"),
    # nothing to undo, or nothing seen: quiet (the database checks see what runs)
    ("n = op.get_bind().execute(sa.text('SELECT count(*) FROM t')).scalar()\n    assert n", None),
    ("if not context.is_offline_mode():\n        return", None),
    ("if context.get_x_argument(as_dictionary=True).get('skip'):\n        pass", None),
    ("seed_plans(op.get_bind())", None),  # imported: cannot tell
    ("op.execute(SQL)", None),
    ("op.execute(sa.text(build_sql()))", None),
    # the schema: an error
    ("op.create_table('t', sa.Column('id', sa.Integer(), primary_key=True))", "empty-downgrade"),
    ("sa.Enum('a', 'b', name='mood').create(op.get_bind())", "empty-downgrade"),
    ("mood.create(op.get_bind(), checkfirst=True)", "empty-downgrade"),
    ("op.execute(sa.schema.CreateSequence(sa.Sequence('s')))", "empty-downgrade"),
    ("op.execute('CREATE EXTENSION IF NOT EXISTS pgcrypto')", "empty-downgrade"),
    ("op.execute(\"SET lock_timeout = '5s'; ALTER TABLE t ADD c int\")", "empty-downgrade"),
    (
        "op.execute(\"DO $$ BEGIN CREATE TYPE mood AS ENUM ('a'); \"\n"
        '               "EXCEPTION WHEN duplicate_object THEN null; END $$")',
        "empty-downgrade",
    ),
    (
        "if context.is_offline_mode():\n        return\n    op.drop_index('ix_t_c')",
        "empty-downgrade",
    ),
    ("_add_column()", "empty-downgrade"),  # a function of the same file
    (
        "op.execute('UPDATE t SET c = 1')\n    op.alter_column('t', 'c', nullable=False)",
        "empty-downgrade",
    ),
]


@pytest.mark.parametrize(("upgrade", "rule"), UPGRADES)
def test_an_empty_downgrade_is_an_error_only_after_schema_changes(
    upgrade: str, rule: str | None
) -> None:
    body = (
        "from myapp.seeds import SQL, build_sql, seed_plans\n"
        "def _add_column():\n"
        "    op.add_column('t', sa.Column('c', sa.Text()))\n"
        f"def upgrade():\n    {upgrade}\n"
        "def downgrade():\n    pass\n"
    )
    found = [h[0] for h in rule_hits(body) if h[0] in {"empty-downgrade", "data-not-undone"}]
    assert found == ([rule] if rule else [])
    if rule is not None:
        assert RULES[rule] is (Severity.ERROR if rule == "empty-downgrade" else Severity.NOTICE)


@pytest.mark.parametrize("upgrade", ["pass", "op.execute('UPDATE t SET c = 1')", "seed(op)"])
def test_a_missing_downgrade_is_an_error_whatever_upgrade_does(upgrade: str) -> None:
    # Alembic looks module.downgrade up to step down through a revision: AttributeError
    assert rule_hits(f"def upgrade():\n    {upgrade}\n") == [("empty-downgrade", 2, 1)]


def _serial(name: str) -> type:
    # SQLAlchemy has no SERIAL types: projects write their own, named as PostgreSQL's
    spec = {"cache_ok": True, "get_col_spec": lambda self, **kw: name}
    return type(name, (sa.types.UserDefinedType,), spec)


SERIALS = {n: _serial(n) for n in ("SERIAL", "BIGSERIAL", "SMALLSERIAL")}
NAMESPACE = {"sa": sa, "postgresql": SimpleNamespace(**SERIALS), **SERIALS}

# an added NOT NULL column without server_default, and whether it fills the rows a
# table already holds (Alembic's add_column makes an integer primary key SERIAL)
ADDED_COLUMNS = [
    ("sa.Column('c', sa.Integer(), nullable=False)", False),
    ("sa.Column('c', BIGSERIAL(), nullable=False)", True),
    ("sa.Column('c', postgresql.SERIAL(), nullable=False)", True),
    ("sa.Column('c', postgresql.SMALLSERIAL, nullable=False)", True),
    ("sa.Column('c', sa.Integer(), sa.Identity(), nullable=False)", True),
    # persisted: SQLAlchemy 2.1 renders no STORED without it, which PostgreSQL < 18 refuses
    ("sa.Column('c', sa.Integer(), sa.Computed('x + 1', persisted=True), nullable=False)", True),
    ("sa.Column('c', sa.Integer(), primary_key=True, nullable=False)", True),
    ("sa.Column('c', sa.BigInteger, primary_key=True, autoincrement=True, nullable=False)", True),
    ("sa.Column('c', type_=sa.SmallInteger(), primary_key=True, nullable=False)", True),
    (
        "sa.Column('c', sa.Integer(), sa.ForeignKey('u.id'), primary_key=True, "
        "autoincrement=True, nullable=False)",
        True,
    ),
    ("sa.Column('c', sa.Integer(), autoincrement=True, nullable=False)", False),  # not a key
    ("sa.Column('c', sa.Integer(), primary_key=True, autoincrement=False, nullable=False)", False),
    (
        "sa.Column('c', sa.Integer(), sa.ForeignKey('u.id'), primary_key=True, nullable=False)",
        False,
    ),
    ("sa.Column('c', sa.Integer(), sa.Sequence('c_seq'), primary_key=True, nullable=False)", False),
    ("sa.Column('c', sa.Integer(), primary_key=True, default=1, nullable=False)", False),
    ("sa.Column('c', sa.String(), primary_key=True, nullable=False)", False),
]


@pytest.mark.parametrize(("column", "fills_rows"), ADDED_COLUMNS)
def test_columns_that_fill_themselves_need_no_server_default(column: str, fills_rows: bool) -> None:
    body = f"def upgrade():\n    op.add_column('t', {column})\n"
    body += "def downgrade():\n    op.drop_column('t', 'c')\n"
    flagged = [h for h in rule_hits(body) if h[0] == "not-null-without-server-default"]
    assert bool(flagged) is not fills_rows


@pytest.mark.parametrize(("column", "fills_rows"), ADDED_COLUMNS)
def test_added_columns_as_postgresql_takes_them(
    pg_server: Server, column: str, fills_rows: bool
) -> None:
    """What the previous test expects is what PostgreSQL does with the DDL Alembic emits
    for the column, on a table that holds rows."""
    sql = io.StringIO()
    context = MigrationContext.configure(
        dialect_name="postgresql", opts={"as_sql": True, "output_buffer": sql}
    )
    Operations(context).add_column("t", eval(column, dict(NAMESPACE)))
    with psycopg.connect(pg_server.conninfo()) as conn, conn.transaction(force_rollback=True):
        conn.execute("CREATE TEMP TABLE u (id int PRIMARY KEY); INSERT INTO u VALUES (1), (2)")
        conn.execute("CREATE TEMP TABLE t (x int); INSERT INTO t VALUES (1), (2)")
        try:
            with conn.transaction():
                conn.execute(sql.getvalue())
        except psycopg.errors.NotNullViolation:
            assert not fills_rows, sql.getvalue()
        else:
            assert fills_rows, sql.getvalue()
