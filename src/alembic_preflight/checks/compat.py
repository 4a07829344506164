"""Will the deploy break the running release? The base ref's models (what production runs
while the migration does) against the schema this branch's migrations build.

Why: a deploy runs the migration first, while the previous release still serves traffic.
A revision that drops or renames a column that release maps, narrows a type it writes,
adds a NOT NULL column its INSERTs do not fill, or removes an enum label it still uses
breaks production for minutes, even when every migration is correct. Fix: expand, deploy,
contract: make the additive change in one release, deploy the code that no longer needs
the old shape, and remove it in a later release.

The base ref's models are read from a copy of that commit (`git archive`) by a worker
started there, which runs env.py offline only to read its target_metadata: no database
is touched. Each finding is placed at the branch revision whose upgrade() names what it
changed, and says where the running release maps it."""

from __future__ import annotations

import ast
import math
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from alembic_preflight.catalog.columns import Columns, LiveColumn
from alembic_preflight.checks.base import CheckContext, CheckSkipped
from alembic_preflight.checks.failures import ensure_head
from alembic_preflight.errors import ConfigError
from alembic_preflight.findings import Finding, RuleText, Severity
from alembic_preflight.project.gitrefs import changed_revisions, export_tree, in_tree
from alembic_preflight.project.history import RevisionFile
from alembic_preflight.project.source import upgrade_strings
from alembic_preflight.worker.protocol import ModelColumn, ModelTable

ID = "compat"
NEEDS_DB = True

NO_BASE_REF = "no base ref (--base-ref): the release running during the deploy is unknown"


class Place(NamedTuple):
    """The branch revision that made a change, at the line naming it."""

    revision: str
    file: RevisionFile
    line: int


class Releases(NamedTuple):
    """How a finding names the two releases: `base ref main` → `this branch`."""

    base: str
    model_root: Path  # the exported tree standing for the repository's top
    repo_root: Path


class Gone(NamedTuple):
    """A mapped column no longer there, and its new name when a rename took it."""

    finding: Finding
    new_name: str | None


def run(ctx: CheckContext) -> Iterator[Finding]:
    ref = ctx.settings.base_ref
    if not ref:
        raise CheckSkipped(NO_BASE_REF)
    bench = ctx.bench
    assert bench is not None
    project = ctx.project
    try:
        changed = changed_revisions(project.repo_root, project, ref)
    except ConfigError as e:
        raise CheckSkipped(f"cannot read base ref {ref!r}: {e}") from None
    if not changed:
        raise CheckSkipped(f"this branch changes no revision since {ref}: nothing to deploy")
    with tempfile.TemporaryDirectory(prefix="alembic-preflight-base-") as tmp:
        tree = Path(tmp)
        try:
            export_tree(project.repo_root, ref, tree)
            base_dir = in_tree(project.repo_root, project.directory, tree)
            base_ini = in_tree(project.repo_root, project.ini_path, tree)
        except (ConfigError, ValueError) as e:
            raise CheckSkipped(f"cannot check base ref {ref!r} out: {e}") from None
        if not base_ini.is_file():
            raise CheckSkipped(f"base ref {ref} has no {ctx.rel(project.ini_path)}")
        outcome = bench.read_models(base_dir, base_ini, tree)
        if not outcome.ok:
            failure = outcome.failure
            assert failure is not None
            first = (failure.message.splitlines() or [""])[0]
            raise CheckSkipped(
                f"could not read the models of base ref {ref} (env.py run offline there): "
                f"{failure.error_type}: {first}"
            )
        if not outcome.has_metadata:
            raise CheckSkipped(
                f"env.py at base ref {ref} sets no target_metadata: the running release's "
                "models are unknown"
            )
        if outcome.data is None:
            raise CheckSkipped(
                f"env.py at base ref {ref} does not run offline (context.is_offline_mode()): "
                "its target_metadata could not be read without a database"
            )
        models: tuple[ModelTable, ...] = outcome.data
        if not models:
            # nothing compared is never a pass
            raise CheckSkipped(
                f"target_metadata at base ref {ref} maps no table: nothing to compare"
            )
        elsewhere = sorted({t.file for t in models if t.file and not _under(t.file, tree)})
        if elsewhere:
            # an installed package, or a sys.path entry env.py adds after ours: what the
            # branch has, not what production runs; comparing it would be quiet
            raise CheckSkipped(
                f"env.py at base ref {ref} imported its models from {elsewhere[0]}, outside "
                f"the base ref's files (an installed package?): the running release's models "
                "are unknown"
            )
        if ensure_head(ctx, ID) is not None:
            raise CheckSkipped("upgrade head fails, so there is no schema to compare (see upgrade)")
        live = bench.live_columns()
        releases = Releases(ref, tree, project.repo_root)
        found = list(compare(ctx, models, live, Branch.of(ctx, changed), releases))
    ctx.note = (
        f"base ref {ref} → this branch: {len(found)} change(s) the running release breaks on"
        if found
        else f"base ref {ref} → this branch: the running release's models still fit the schema"
    )
    yield from found


def compare(
    ctx: CheckContext,
    models: tuple[ModelTable, ...],
    live: Columns,
    branch: Branch,
    releases: Releases,
) -> Iterator[Finding]:
    """What the running release maps against what the schema now has."""
    for table in models:
        qual = f"{table.schema}.{table.name}" if table.schema else table.name
        where = _model_place(ctx, table.file, table.line, releases)
        have = live.get((None if table.schema == "public" else table.schema, table.name))
        if have is None:
            place = _made_by(branch, (table.name,))
            if place is None:
                continue  # not this branch's doing (drift's business)
            renamed = _renamed_table(place.file, table.name)
            said = f" (renamed to `{renamed}`)" if renamed else ""
            yield _finding(
                ctx,
                "table-dropped-in-use",
                place,
                f"table `{qual}` is gone{said} while base ref {releases.base} still maps it "
                f"({where}): every query of the running release on it fails until the "
                "deploy ends",
                _fix_drop(f"table `{qual}`", releases, renamed),
            )
            continue
        # a mapped column renamed is that column still: not a new one the release lacks
        known = {c.name for c in table.columns}
        for col in table.columns:
            cwhere = _model_place(ctx, table.file, col.line or table.line, releases)
            now = have.get(col.name)
            if now is None:
                gone = _column_gone(ctx, table, qual, col, have, cwhere, branch, releases)
                if gone is not None:
                    known.add(gone.new_name or col.name)
                    yield gone.finding
                continue
            yield from _column_changed(ctx, table, qual, col, now, cwhere, branch, releases)
        for name, now in have.items():
            if name in known or not now.not_null or now.has_default:
                continue
            place = _made_by(branch, (table.name, name))
            if place is None:
                continue
            yield _finding(
                ctx,
                "not-null-unknown-to-running-code",
                place,
                f"column `{qual}.{name}` is NOT NULL without a server default, and base ref "
                f"{releases.base} does not know it ({where}): the running release's INSERTs "
                f"into `{qual}` fail until the deploy ends",
                f"expand, deploy, contract (base ref {releases.base} → this branch): add "
                f"`{name}` nullable or with a server_default, deploy code that writes it, "
                "then make it NOT NULL in a later release",
            )


def _column_gone(
    ctx: CheckContext,
    table: ModelTable,
    qual: str,
    col: ModelColumn,
    have: dict[str, LiveColumn],
    where: str,
    branch: Branch,
    releases: Releases,
) -> Gone | None:
    place = _made_by(branch, (table.name, col.name))
    if place is None:
        return None
    renamed = _renamed_column(place.file, col.name)
    if renamed is not None and renamed in have:
        found = _finding(
            ctx,
            "column-renamed-in-use",
            place,
            f"column `{qual}.{col.name}` is renamed to `{renamed}` while base ref "
            f"{releases.base} still maps `{col.name}` ({where}): the running release's "
            f"queries of `{qual}` fail until the deploy ends",
            f"expand, deploy, contract (base ref {releases.base} → this branch): add "
            f"`{renamed}` beside `{col.name}`, write both (a trigger or the code), deploy, "
            f"and drop `{col.name}` a release later",
        )
        return Gone(found, renamed)
    found = _finding(
        ctx,
        "column-dropped-in-use",
        place,
        f"column `{qual}.{col.name}` is dropped while base ref {releases.base} still maps "
        f"it ({where}): the running release's SELECTs of `{qual}` fail until the deploy ends",
        _fix_drop(f"column `{qual}.{col.name}`", releases, None),
    )
    return Gone(found, None)


def _column_changed(
    ctx: CheckContext,
    table: ModelTable,
    qual: str,
    col: ModelColumn,
    now: LiveColumn,
    where: str,
    branch: Branch,
    releases: Releases,
) -> Iterator[Finding]:
    if col.enum_labels is not None and now.enum_labels is not None:
        removed = [label for label in col.enum_labels if label not in now.enum_labels]
        if removed:
            place = (
                _made_by(branch, (removed[0],))
                or _made_by(branch, (now.type.rpartition(".")[2],))
                or _made_by(branch, (table.name, col.name))
            )
            if place is not None:
                labels = ", ".join(f"'{label}'" for label in removed)
                yield _finding(
                    ctx,
                    "enum-value-removed-in-use",
                    place,
                    f"enum `{now.type}` of `{qual}.{col.name}` no longer has {labels}, which "
                    f"base ref {releases.base} still uses ({where}): the running release's "
                    "writes of it fail until the deploy ends",
                    f"expand, deploy, contract (base ref {releases.base} → this branch): "
                    f"deploy models without {labels} first, move the rows off it, and "
                    "remove the label a release later",
                )
        return
    why = _type_break(col, now)
    if why is None:
        return
    place = _made_by(branch, (table.name, col.name))
    if place is None:
        return
    yield _finding(
        ctx,
        "type-changed-in-use",
        place,
        f"column `{qual}.{col.name}` is now {now.type}, {why} base ref {releases.base} maps "
        f"({col.type}, {where}): the running release's writes (or reads) of it can fail "
        "until the deploy ends",
        f"expand, deploy, contract (base ref {releases.base} → this branch): add a new "
        f"column of the new type, write both, deploy, and drop `{col.name}` a release later "
        "(or only widen a type while the old release runs)",
    )


# -- types: what a release wrote can still be written ---------------------------------------
_INTS = {"smallint": 2, "integer": 4, "int": 4, "bigint": 8}
_FLOATS = {"real": 4, "float": 8, "double precision": 8}
_PLAIN = {
    "boolean": "boolean",
    "date": "date",
    "uuid": "uuid",
    "json": "json",
    "jsonb": "json",
    "bytea": "bytea",
    "interval": "interval",
    "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamp",
    "timestamp": "timestamp",
    "time without time zone": "time",
    "time with time zone": "time",
    "time": "time",
}
_STRING = re.compile(r"(varchar|character varying|char|character|bpchar)(?:\((\d+)\))?")
_NUMERIC = re.compile(r"(numeric|decimal)(?:\((\d+)(?:,(\d+))?\))?")


def _kind(type_: str) -> tuple[str, tuple[float, ...]] | None:
    """A type as (family, sizes): sizes only grow when a type widens; None: unknown."""
    t = re.sub(r"\(\s*(\d+)\s*,\s*(\d+)\s*\)", r"(\1,\2)", type_.strip().lower())
    t = re.sub(r"\(\d+\)(?= with| without|$)", "", t) if t.startswith(("timestamp", "time")) else t
    if t == "text":
        return "string", (math.inf,)
    m = _STRING.fullmatch(t)
    if m:
        size = int(m[2]) if m[2] else (1 if m[1] in ("char", "character") else math.inf)
        return "string", (size,)
    m = _NUMERIC.fullmatch(t)
    if m:
        if not m[2]:
            return "numeric", (math.inf, math.inf)
        precision, scale = int(m[2]), int(m[3] or 0)
        return "numeric", (precision - scale, scale)
    if t in _INTS:
        return "integer", (_INTS[t],)
    if t in _FLOATS:
        return "float", (_FLOATS[t],)
    if t in _PLAIN:
        return _PLAIN[t], ()
    return None


def _type_break(old: ModelColumn, now: LiveColumn) -> str | None:
    """Why values the old models write no longer fit `now`; None when they do (or when
    either type is one we cannot judge: an extension's, an array, a domain)."""
    was, has = _kind(old.type), _kind(now.type)
    if was is None or has is None:
        return None
    if was[0] != has[0]:
        return "a type incompatible with the one"
    if any(n < o for n, o in zip(has[1], was[1], strict=True)):
        return "narrower than the type"
    return None


# -- where: the revision that made a change, the model that maps it ------------------------
class Branch(NamedTuple):
    """The revisions this branch adds or changes, latest first, with the strings their
    upgrade() holds (read once: a schema of many tables asks often)."""

    revisions: tuple[tuple[str, RevisionFile, dict[str, int]], ...]

    @classmethod
    def of(cls, ctx: CheckContext, changed: set[str]) -> Branch:
        history = ctx.project.history
        found = []
        for rev in reversed(history.topological_order()):
            file = history.revisions.get(rev)
            if rev in changed and file is not None:
                found.append((rev, file, upgrade_strings(file)))
        return cls(tuple(found))


def _made_by(branch: Branch, names: tuple[str, ...]) -> Place | None:
    """The latest revision of this branch whose upgrade() names all of `names`, at the
    line of the last one."""
    for rev, file, strings in branch.revisions:
        if all(n in strings for n in names):
            return Place(rev, file, strings[names[-1]])
    return None


def _upgrade_calls(file: RevisionFile) -> Iterator[ast.Call]:
    if file.module is None:
        return
    for node in file.module.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "upgrade":
            yield from (n for n in ast.walk(node) if isinstance(n, ast.Call))


def _text(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _renamed_column(file: RevisionFile, column: str) -> str | None:
    """The new name an upgrade gives `column`: alter_column(..., new_column_name=...), or
    ALTER TABLE ... RENAME COLUMN in SQL text."""
    sql = re.compile(rf'RENAME\s+COLUMN\s+"?{re.escape(column)}"?\s+TO\s+"?(\w+)"?', re.I)
    for call in _upgrade_calls(file):
        kw = {k.arg: k.value for k in call.keywords}
        new = _text(kw.get("new_column_name"))
        if new is not None:
            named = {_text(a) for a in call.args} | {_text(kw.get("column_name"))}
            if column in named:
                return new
        for arg in (*call.args, *kw.values()):
            m = sql.search(_text(arg) or "")
            if m:
                return m[1]
    return None


def _renamed_table(file: RevisionFile, table: str) -> str | None:
    for call in _upgrade_calls(file):
        name = call.func.attr if isinstance(call.func, ast.Attribute) else None
        if name == "rename_table" and len(call.args) >= 2 and _text(call.args[0]) == table:
            return _text(call.args[1])
    return None


def _model_place(ctx: CheckContext, file: str | None, line: int | None, releases: Releases) -> str:
    """`app/models.py:22 in base ref main`, the path as the working tree has it."""
    if file is None:
        return f"in base ref {releases.base}'s models"
    try:
        rel = Path(file).resolve().relative_to(releases.model_root.resolve())
        shown = ctx.rel(releases.repo_root / rel)
    except ValueError:
        shown = file
    return f"{shown}:{line}" if line else shown


def _fix_drop(what: str, releases: Releases, renamed: str | None) -> str:
    first = f"add `{renamed}` and write both, " if renamed else ""
    return (
        f"expand, deploy, contract (base ref {releases.base} → this branch): {first}release "
        f"models that no longer use {what}, deploy them, and drop it in a later release"
    )


def _under(file: str, tree: Path) -> bool:
    try:
        Path(file).resolve().relative_to(tree.resolve())
    except ValueError:
        return False
    return True


def _finding(ctx: CheckContext, rule: str, place: Place, message: str, fix: str) -> Finding:
    return Finding(
        check=ID,
        rule=rule,
        severity=Severity.ERROR,
        message=message,
        revision=place.revision,
        file=ctx.rel(place.file.path),
        line=place.line,
        fix=fix,
    )


# what each rule means and how to fix it (SARIF, the job summary): said once, here
_EXPAND = (
    " Fix: expand, deploy, contract: the additive change in one release, the code that no "
    "longer needs the old shape deployed, the removal in a later release."
)
RULES: dict[str, RuleText] = {
    "column-dropped-in-use": RuleText(
        "A column the running release maps is dropped",
        "The base ref's models map a column this branch's migrations drop: while the "
        "migration has run and the new release is not yet serving, every SELECT of the "
        "running release on that table fails." + _EXPAND,
    ),
    "table-dropped-in-use": RuleText(
        "A table the running release maps is dropped",
        "The base ref's models map a table this branch's migrations drop (or rename): the "
        "running release's queries on it fail until the deploy ends." + _EXPAND,
    ),
    "column-renamed-in-use": RuleText(
        "A column the running release maps is renamed",
        "The base ref's models map a column by its old name: after the rename the running "
        "release's queries fail. Fix: add the new column, write both, deploy, and drop the "
        "old one a release later.",
    ),
    "type-changed-in-use": RuleText(
        "A column's type changed in a way the running release cannot write",
        "The column is narrowed (a shorter varchar, a smaller integer, less precision) or "
        "changed to an incompatible type: values the running release writes fail, or what "
        "it reads no longer maps. Quiet for widening changes." + _EXPAND,
    ),
    "not-null-unknown-to-running-code": RuleText(
        "A NOT NULL column without a default the running release does not know",
        "The running release's INSERTs do not name the new column, so they fail on its NOT "
        "NULL. Quiet when the column is nullable or has a server default. Fix: add it "
        "nullable (or with a server_default), deploy code that writes it, then set NOT NULL "
        "in a later release.",
    ),
    "enum-value-removed-in-use": RuleText(
        "An enum label the running release still uses is removed",
        "The base ref's models still have the label: the running release's writes of it "
        "fail until the deploy ends." + _EXPAND,
    ),
}
