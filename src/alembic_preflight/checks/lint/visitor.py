"""The syntax-tree walk behind most lint rules: operations matched by method name on any
receiver (`op`, `batch_op`, a bound connection), as revision files use all three."""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from alembic_preflight.settings import PREFIX_KINDS

SCHEMA_OPS = frozenset(
    {
        "add_column",
        "alter_column",
        "batch_alter_table",
        "create_check_constraint",
        "create_exclude_constraint",
        "create_foreign_key",
        "create_index",
        "create_primary_key",
        "create_table",
        "create_table_comment",
        "create_unique_constraint",
        "drop_column",
        "drop_constraint",
        "drop_index",
        "drop_table",
        "drop_table_comment",
        "rename_table",
        # alembic_utils (views, functions, triggers) and alembic-postgresql-enum
        "create_entity",
        "drop_entity",
        "replace_entity",
        "sync_enum_values",
    }
)


# execute(<one of these>(...)): SQLAlchemy's DDL elements, as revisions pass them
_DDL_ELEMENTS = frozenset(
    {
        "DDL",
        "AddConstraint",
        "CreateColumn",
        "CreateIndex",
        "CreateSchema",
        "CreateSequence",
        "CreateTable",
        "DropColumnComment",
        "DropConstraint",
        "DropIndex",
        "DropSchema",
        "DropSequence",
        "DropTable",
        "DropTableComment",
        "SetColumnComment",
        "SetTableComment",
        "CreateEnumType",
        "DropEnumType",
        "CreateDomainType",
        "DropDomainType",
    }
)


# X(...).create(bind): schema objects that create or drop themselves
_SCHEMA_OBJECTS = frozenset({"Enum", "ENUM", "DOMAIN", "Index", "Sequence", "Table"})


_DML = re.compile(r"^\s*(?:WITH\b.*?\b)?(UPDATE|INSERT|DELETE|MERGE|TRUNCATE)\b", re.I | re.S)


# at a statement's start: the first, after a `;` (SET lock_timeout ...; ALTER ...), or
# after BEGIN in a DO block (DO $$ BEGIN CREATE TYPE ... EXCEPTION ... END $$)
_DDL = re.compile(r"(?:^|;|\bBEGIN\b)\s*(CREATE|ALTER|DROP|COMMENT\s+ON)\b", re.I)


_SETVAL = re.compile(r"^\s*SELECT\b.*\bsetval\s*\(", re.I | re.S)


_CONCURRENTLY = re.compile(
    r"\b(?:CREATE\s+(?:UNIQUE\s+)?INDEX|DROP\s+INDEX|REINDEX\s+\w+)\s+CONCURRENTLY\b", re.I
)


_DESTRUCTIVE_SQL = re.compile(r"\bDROP\s+(TABLE|COLUMN)\b", re.I)


@dataclass(frozen=True)
class Facts:
    """What the rules need to know about the project, beyond the file itself."""

    prefixes: Mapping[str, str] = field(
        default_factory=lambda: {"fk": "fk_", "ix": "ix_", "uq": "uq_", "ck": "ck_"}
    )
    naming_convention: bool = False  # target_metadata has one: unnamed constraints get names
    file_template: str | None = None  # None: alembic.ini sets none, file names are free
    version_locations: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Hit:
    rule: str
    line: int
    column: int  # 1-based
    message: str
    fix: str
    end_line: int | None = None  # an ignore comment anywhere on line..end_line counts


@dataclass(frozen=True)
class _Scope:
    function: str | None  # the top-level function we are in: upgrade, downgrade, ...
    autocommit: bool = False  # inside `with op.get_context().autocommit_block():`
    table_op: bool = False  # inside op.create_table(...) / add_column(...)


def _hit(rule: str, node: ast.expr | ast.stmt | ast.keyword, message: str, fix: str) -> Hit:
    return Hit(
        rule, node.lineno, node.col_offset + 1, message, fix, getattr(node, "end_lineno", None)
    )


class _Visitor:
    def __init__(self, facts: Facts) -> None:
        self.facts = facts
        self.hits: list[Hit] = []
        self.data: dict[str, list[ast.Call]] = {}  # DML statements (mixed-data-and-schema)
        self.changes: dict[str, set[str]] = {}  # "schema", "data": what a function is seen to do
        self.calls: dict[str, set[str]] = {}  # plain names a function calls: f()

    def changed(self, func: str) -> set[str]:
        """What `func` is seen to change, with the functions of the file it calls (an
        imported helper or an execute() of built SQL is not seen: it adds nothing)."""
        seen: set[str] = set()
        found: set[str] = set()
        todo = [func]
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                found |= self.changes.get(name, set())
                todo.extend(self.calls.get(name, ()))
        return found

    def visit_stmt(self, node: ast.AST, scope: _Scope) -> None:
        if isinstance(node, ast.With | ast.AsyncWith) and any(
            _callee(item.context_expr) == "autocommit_block" for item in node.items
        ):
            for item in node.items:
                self.visit_stmt(item.context_expr, scope)
            inner = _Scope(scope.function, True, scope.table_op)
            for stmt in node.body:
                self.visit_stmt(stmt, inner)
            return
        if isinstance(node, ast.Call):
            self.visit_call(node, scope)
            name = _callee(node)
            if name in {"create_table", "add_column"}:
                scope = _Scope(scope.function, scope.autocommit, True)
        for child in ast.iter_child_nodes(node):
            self.visit_stmt(child, scope)

    def visit_call(self, call: ast.Call, scope: _Scope) -> None:
        name = _callee(call)
        if name is None:
            return
        sql = _sql_text(call) if name == "execute" else None
        if scope.function is not None:
            self._effects(call, name, sql, scope.function)
        self._names(call, name, scope)
        self._columns(call, name, scope)
        self._destructive(call, name, sql, scope)
        self._concurrently(call, name, sql, scope)

    # empty-downgrade, data-not-undone, mixed-data-and-schema
    def _effects(self, call: ast.Call, name: str, sql: str | None, func: str) -> None:
        changes = self.changes.setdefault(func, set())
        if isinstance(call.func, ast.Name):
            self.calls.setdefault(func, set()).add(name)
        if _changes_schema(call, name, sql):
            changes.add("schema")
        dml = name == "execute" and (
            (sql is not None and _DML.match(sql) is not None) or _is_dml_expression(call)
        )
        if dml or name == "bulk_insert":
            changes.add("data")
            self.data.setdefault(func, []).append(call)
        elif sql is not None and _SETVAL.match(sql):  # data, but instant: not worth mixing
            changes.add("data")

    # unnamed-constraint, unnamed-drop-constraint, constraint-prefix
    def _names(self, call: ast.Call, name: str, scope: _Scope) -> None:
        create = {
            "create_index": ("ix", "index_name"),
            "create_foreign_key": ("fk", "constraint_name"),
            "create_unique_constraint": ("uq", "constraint_name"),
            "create_check_constraint": ("ck", "constraint_name"),
            "create_primary_key": ("pk", "constraint_name"),
        }
        if name in create:
            kind, kw = create[name]
            arg = _arg(call, 0, kw)
            if arg is not None and _is_none(arg):
                if kind != "pk":
                    self._unnamed(arg, f"{name}(None, ...)", kind)
            elif arg is not None:
                self._prefix(arg, kind, unique=name == "create_index" and _true(call, "unique"))
        if name == "drop_constraint":
            arg = _arg(call, 0, "constraint_name")
            if arg is not None and _is_none(arg):
                self.hits.append(
                    _hit(
                        "unnamed-drop-constraint",
                        arg,
                        "drop_constraint(None, ...) can never run: Alembic needs the "
                        "constraint's name to drop it",
                        "look the name up in the database (\\d table in psql) and pass it",
                    )
                )
        if not scope.table_op:
            return
        objects = {
            "ForeignKey": ("fk", 3),
            "ForeignKeyConstraint": ("fk", None),
            "UniqueConstraint": ("uq", None),
            "CheckConstraint": ("ck", 1),
            "PrimaryKeyConstraint": ("pk", None),
            "Index": ("ix", 0),
        }
        if name in objects:
            kind, pos = objects[name]
            arg = _arg(call, pos, "name")
            if arg is None or _is_none(arg):
                if kind not in {"pk", "ix"}:
                    self._unnamed(call, f"{name}() without name=", kind)
            else:
                self._prefix(arg, kind, unique=name == "Index" and _true(call, "unique"))
        if name == "Column":
            for keyword in call.keywords:
                # index=True is not flagged: SQLAlchemy names it ix_<table>_<column>.
                if keyword.arg == "unique" and _is_true(keyword.value):
                    self._unnamed(keyword, "Column(unique=True)", "uq")

    def _unnamed(self, node: ast.expr | ast.keyword, what: str, kind: str) -> None:
        if self.facts.naming_convention:
            return
        prefix = self.facts.prefixes.get(kind, f"{kind}_")
        extra = (
            " SQLAlchemy's default ix_<table>_<first column> collides with any other index "
            "on the same first column"
            if kind == "ix"
            else " the database picks the name, so later revisions cannot rely on it"
        )
        self.hits.append(
            _hit(
                "unnamed-constraint",
                node,
                f"{what} creates an unnamed {_KINDS[kind]}:{extra}",
                f'name it explicitly, e.g. "{prefix}<table>_<column>" (a naming_convention '
                "on target_metadata is for a new project, or must come with a migration that "
                "renames the existing constraints)",
            )
        )

    def _prefix(self, arg: ast.expr, kind: str, unique: bool = False) -> None:
        value = _name_literal(arg)
        if value is None or kind not in self.facts.prefixes:
            return
        wanted = [self.facts.prefixes[kind]]
        if unique and "uq" in self.facts.prefixes:  # a unique index may use either prefix
            wanted.append(self.facts.prefixes["uq"])
        if any(value.startswith(p) for p in wanted):
            return
        self.hits.append(
            _hit(
                "constraint-prefix",
                arg,
                f"{_KINDS[kind]} name {value!r} does not start with "
                f"{' or '.join(repr(p) for p in wanted)}",
                f'rename it to "{wanted[0]}{value}" (not in a revision that already ran '
                "anywhere: suppress it there)",
            )
        )

    # not-null-without-server-default, python-side-default
    def _columns(self, call: ast.Call, name: str, scope: _Scope) -> None:
        if name == "add_column":
            for col in (a for a in call.args if _callee(a) == "Column"):
                assert isinstance(col, ast.Call)
                nullable = _kw(col, "nullable")
                has_server_default = not _missing_or_none(_kw(col, "server_default"))
                if (
                    nullable is not None
                    and _is_false(nullable)
                    and not has_server_default
                    and not _fills_rows(col)
                ):
                    col_name = _name_literal(col.args[0]) if col.args else None
                    self.hits.append(
                        _hit(
                            "not-null-without-server-default",
                            next(k for k in col.keywords if k.arg == "nullable"),
                            f"adding NOT NULL column {col_name or ''} without server_default "
                            "fails on any table that already has rows",
                            "add server_default=..., or add it nullable, backfill, then "
                            "alter_column(nullable=False)",
                        )
                    )
        if name == "Column" and scope.table_op:
            default = next((k for k in call.keywords if k.arg == "default"), None)
            if default is not None and _missing_or_none(_kw(call, "server_default")):
                self.hits.append(
                    _hit(
                        "python-side-default",
                        default,
                        "default= is applied by SQLAlchemy models on insert, never by the "
                        "database: existing rows and raw SQL inserts do not get it",
                        'use server_default= (e.g. sa.text("now()")) in the migration',
                    )
                )

    def _destructive(self, call: ast.Call, name: str, sql: str | None, scope: _Scope) -> None:
        if scope.function != "upgrade":
            return
        what = None
        if name in {"drop_table", "drop_column"}:
            what = "table" if name == "drop_table" else "column"
        elif sql is not None and (m := _DESTRUCTIVE_SQL.search(sql)):
            what = m.group(1).lower()
        if what is None:
            return
        self.hits.append(
            _hit(
                "destructive-upgrade",
                call,
                f"upgrade() drops a {what}: its data is lost on deploy, and a downgrade "
                "cannot bring it back",
                f"back up the data first, or remove the {what} in two steps: stop using it in "
                "one release, drop it in a later one",
            )
        )

    def _concurrently(self, call: ast.Call, name: str, sql: str | None, scope: _Scope) -> None:
        if scope.autocommit:
            return
        flagged = name in {"create_index", "drop_index"} and _true(call, "postgresql_concurrently")
        flagged = flagged or (sql is not None and _CONCURRENTLY.search(sql) is not None)
        if flagged:
            self.hits.append(
                _hit(
                    "concurrently-in-transaction",
                    call,
                    "CONCURRENTLY cannot run inside a transaction block, and Alembic runs "
                    "each migration in one on PostgreSQL",
                    "wrap it in `with op.get_context().autocommit_block():`",
                )
            )


# PostgreSQL's own spellings: SQLAlchemy has no such types, projects define them
_SERIAL_TYPES = frozenset({"SERIAL", "SERIAL2", "SERIAL4", "SERIAL8", "SMALLSERIAL", "BIGSERIAL"})


_INTEGER_TYPES = frozenset(
    {"Integer", "BigInteger", "SmallInteger", "INTEGER", "BIGINT", "SMALLINT", "INT"}
)


def _fills_rows(col: ast.Call) -> bool:
    """Whether PostgreSQL gives an added column a value on the rows a table holds by
    itself: IDENTITY, a generated column, a SERIAL type, or an integer key SQLAlchemy
    makes SERIAL (checked against PostgreSQL in tests/checks/test_lint.py)."""
    names = _argument_names(col)
    if names & {"Identity", "Computed"} or {n.upper() for n in names} & _SERIAL_TYPES:
        return True
    return bool(names & _INTEGER_TYPES) and _becomes_serial(col, names)


def _becomes_serial(col: ast.Call, names: set[str]) -> bool:
    """An integer primary key with autoincrement left "auto" (or set) compiles to SERIAL,
    in add_column too (its table holds that one column); a default, a Sequence, or a
    foreign key (unless autoincrement=True or "ignore_fk") keeps it a plain integer."""
    if not _true(col, "primary_key"):
        return False
    autoincrement = _kw(col, "autoincrement")
    if autoincrement is not None and _is_false(autoincrement):
        return False
    if "Sequence" in names or not _missing_or_none(_kw(col, "default")):
        return False
    forced = isinstance(autoincrement, ast.Constant) and autoincrement.value in {True, "ignore_fk"}
    return forced or "ForeignKey" not in names


def _argument_names(col: ast.Call) -> set[str]:
    """The last names of a Column's positional arguments and type_=, as written:
    sa.Integer() and sa.Integer are Integer, postgresql.BIGSERIAL is BIGSERIAL (the
    column's own name may be a variable, so the type is not told by its position)."""
    names = set()
    for node in [*col.args, *(k.value for k in col.keywords if k.arg == "type_")]:
        if isinstance(node, ast.Call):
            node = node.func
        if isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.Name):
            names.add(node.id)
    return names


_KINDS = {
    "fk": "foreign key",
    "ix": "index",
    "uq": "unique constraint",
    "ck": "check constraint",
    "pk": "primary key",
}


assert set(_KINDS) == set(PREFIX_KINDS)  # what `lint.prefixes` may name


def _callee(node: ast.AST) -> str | None:
    if not isinstance(node, ast.Call):
        return None
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    if isinstance(node.func, ast.Name):
        return node.func.id
    return None


def _arg(call: ast.Call, pos: int | None, kw: str) -> ast.expr | None:
    value = _kw(call, kw)
    if value is not None:
        return value
    if pos is not None and len(call.args) > pos and not isinstance(call.args[pos], ast.Starred):
        return call.args[pos]
    return None


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _is_true(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _is_false(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is False


def _true(call: ast.Call, kw: str) -> bool:
    value = _kw(call, kw)
    return value is not None and _is_true(value)


def _missing_or_none(node: ast.expr | None) -> bool:
    return node is None or _is_none(node)


def _name_literal(node: ast.expr) -> str | None:
    """A constraint name as written: "x", op.f("x") or conv("x")."""
    if isinstance(node, ast.Call) and _callee(node) in {"f", "conv"} and node.args:
        node = node.args[0]
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _sql_text(call: ast.Call) -> str | None:
    """The SQL an execute() call runs when it is written out: "..." or sa.text("...")
    (an f-string counts by its literal parts)."""
    if not call.args:
        return None
    node = call.args[0]
    if isinstance(node, ast.Call) and _callee(node) == "text" and node.args:
        node = node.args[0]
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else "x"
            for v in node.values
        )
    return None


def _changes_schema(call: ast.Call, name: str, sql: str | None) -> bool:
    """An Alembic schema operation, execute() of DDL text or a DDL element, or a schema
    object's create()/drop(): sa.Enum(...).create(bind), my_enum.drop(bind, checkfirst=True),
    metadata.create_all(bind)."""
    if name in SCHEMA_OPS or name in {"create_all", "drop_all"}:
        return True
    if name == "execute":
        if sql is not None:
            return _DDL.search(sql) is not None
        return bool(call.args) and _callee(call.args[0]) in _DDL_ELEMENTS
    if name not in {"create", "drop"} or not isinstance(call.func, ast.Attribute):
        return False
    if _callee(call.func.value) in _SCHEMA_OBJECTS:
        return True
    # a bind and maybe checkfirst, as SchemaItem.create takes them (not a data call's
    # keyword arguments, as in Model.create(name=...))
    keywords = {k.arg for k in call.keywords}
    one_bind = len(call.args) + ("bind" in keywords) == 1
    return one_bind and keywords <= {"bind", "checkfirst"}


def _is_dml_expression(call: ast.Call) -> bool:
    """execute(sa.update(t)...), execute(t.insert()...), execute(sa.delete(t))."""
    if not call.args:
        return False
    return any(_callee(n) in {"update", "insert", "delete"} for n in ast.walk(call.args[0]))
