"""Revision files follow the habits that keep migrations safe to deploy and to undo.

Why: many migration failures are visible in the source: a NOT NULL column added without
a server default fails on a table with rows; an unnamed constraint gets a name a later
migration has to guess; CREATE INDEX CONCURRENTLY fails inside Alembic's transaction; a
downgrade that is `pass` after a schema change reports success and leaves the change in
place. This check reads each file with `ast` only (nothing is imported or run) and
reports every rule's hits (lint/rules.py, lint/visitor.py). Errors are for what the
file shows; what it cannot show (an imported helper, SQL built at run time) is left to
the database checks, which run it.

How to fix: each finding's `fix` says what to change. A deliberate exception is silenced
with `# preflight: ignore[rule-id]` on its line (several: `ignore[a,b]`), or for a whole
file with `# preflight: ignore-file[rule-id]` in the comments before the docstring.
Settings `lint.disable`, `lint.enable` and `lint.severity` choose rules and severities.

`unnamed-constraint` stays quiet when target_metadata has a naming convention, found
statically (best effort): `naming_convention` appears in env.py's code or in a module of
the project that env.py imports, followed up to three imports deep.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

from alembic_preflight.checks.base import CheckContext
from alembic_preflight.checks.lint.rules import DEFAULT_OFF, DEFAULT_SEVERITY, WHOLE_HISTORY, hits
from alembic_preflight.checks.lint.visitor import Facts, Hit
from alembic_preflight.findings import Finding, RuleText, Severity
from alembic_preflight.project import Project
from alembic_preflight.project.history import RevisionFile

ID = "lint"
NEEDS_DB = False

_IGNORE = re.compile(r"#\s*preflight:\s*ignore\[([^\]]*)\]")
_IGNORE_FILE = re.compile(r"#\s*preflight:\s*ignore-file\[([^\]]*)\]")


def run(ctx: CheckContext) -> Iterator[Finding]:
    lint = ctx.settings.lint
    configured = {*lint.disable, *lint.enable, *lint.severity}
    for rule in sorted(configured - set(DEFAULT_SEVERITY)):
        # at the settings file's line that names it, when a file did
        part = (
            ("severity", rule)
            if rule in lint.severity
            else (("disable",) if rule in lint.disable else ("enable",))
        )
        place = ctx.settings.place_of("lint", part)
        yield Finding(
            check=ID,
            rule="unknown-rule",
            severity=Severity.WARNING,
            message=f"lint settings name an unknown rule {rule!r}",
            fix=f"use one of: {', '.join(sorted(DEFAULT_SEVERITY))}",
            file=ctx.rel(place[0].resolve()) if place else None,
            line=place[1] if place else None,
        )
    active = {r for r in DEFAULT_SEVERITY if (r not in DEFAULT_OFF or r in lint.enable)} - set(
        lint.disable
    )
    facts = Facts(
        prefixes=lint.prefixes,
        naming_convention=has_naming_convention(ctx.project),
        file_template=ctx.project.file_template,
        version_locations=ctx.project.version_locations,
    )
    only = ctx.settings.files  # the files a commit touches (the pre-commit hook)
    for f in ctx.project.history.files:
        if only is not None and f.path.resolve() not in only:
            continue
        scope = active if ctx.in_focus(f.revision) else active & WHOLE_HISTORY
        yield from _file_findings(ctx, f, facts, scope)


def _file_findings(
    ctx: CheckContext, f: RevisionFile, facts: Facts, active: set[str]
) -> Iterator[Finding]:
    line_ignores, file_ignores = suppressions(f.source)
    for hit in sorted(hits(f, facts), key=lambda h: (h.line, h.column, h.rule)):
        if hit.rule not in active or hit.rule in file_ignores:
            continue
        span = range(hit.line, (hit.end_line or hit.line) + 1)
        if any(hit.rule in line_ignores.get(n, ()) for n in span):
            continue
        severity = _severity(ctx, hit)
        if severity is None:
            continue
        yield Finding(
            check=ID,
            rule=hit.rule,
            severity=severity,
            message=hit.message,
            revision=f.revision,
            file=ctx.rel(f.path),
            line=hit.line,
            column=hit.column,
            fix=hit.fix,
        )


def _severity(ctx: CheckContext, hit: Hit) -> Severity | None:
    if hit.rule in ctx.settings.lint.severity:
        return ctx.settings.lint.severity[hit.rule]
    if hit.rule == "irreversible":
        return {"warn": Severity.WARNING, "error": Severity.ERROR}.get(ctx.settings.irreversible)
    return DEFAULT_SEVERITY[hit.rule]


def suppressions(source: str) -> tuple[dict[int, set[str]], set[str]]:
    """`ignore[...]` comments by line, and `ignore-file[...]` rules from the comments that
    lead the file (before its docstring or first statement)."""
    by_line: dict[int, set[str]] = {}
    whole_file: set[str] = set()
    if "preflight:" not in source:  # in both comments; tokenizing was half of lint's time
        return by_line, whole_file
    leading = True
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return by_line, whole_file
    for tok in tokens:
        if tok.type == tokenize.COMMENT:
            if leading and (m := _IGNORE_FILE.search(tok.string)):
                whole_file.update(_rule_list(m.group(1)))
            elif m := _IGNORE.search(tok.string):
                by_line.setdefault(tok.start[0], set()).update(_rule_list(m.group(1)))
        elif tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.ENCODING):
            leading = False
    return by_line, whole_file


def _rule_list(text: str) -> set[str]:
    return {r.strip() for r in text.split(",") if r.strip()}


def has_naming_convention(project: Project, max_depth: int = 3) -> bool:
    """Whether env.py, or a project module it imports, mentions `naming_convention` in
    code (not comments). Best effort: a convention set up dynamically is not seen, and
    then unnamed-constraint may report names the convention would give."""
    roots = _import_roots(project)
    queue = [(project.script_location / "env.py", 0)]
    seen: set[Path] = set()
    while queue:
        path, depth = queue.pop(0)
        if path in seen or len(seen) > 100:
            continue
        seen.add(path)
        try:
            tree = ast.parse(path.read_bytes(), filename=str(path))
        except (OSError, SyntaxError, ValueError):
            continue
        if _mentions_naming_convention(tree):
            return True
        if depth < max_depth:
            queue.extend((p, depth + 1) for p in _imported_files(tree, roots))
    return False


def _import_roots(project: Project) -> list[Path]:
    # where `prepend_sys_path = .` and common src layouts put the user's packages
    candidates = [
        project.directory,
        project.directory / "src",
        project.repo_root,
        project.repo_root / "src",
        project.script_location,
    ]
    return [p for p in dict.fromkeys(c.resolve() for c in candidates) if p.is_dir()]


def _mentions_naming_convention(tree: ast.Module) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "naming_convention":
            return True
        if isinstance(node, ast.Name) and node.id == "naming_convention":
            return True
        if isinstance(node, ast.Attribute) and node.attr == "naming_convention":
            return True
    return False


def _imported_files(tree: ast.Module, roots: list[Path]) -> Iterator[Path]:
    for node in ast.walk(tree):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from pkg import models` may name a submodule as well as an attribute
            modules = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        for module in modules:
            parts = module.split(".")
            for root in roots:
                for candidate in (
                    root.joinpath(*parts).with_suffix(".py"),
                    root.joinpath(*parts, "__init__.py"),
                ):
                    if candidate.is_file():
                        yield candidate.resolve()


# what each rule means and how to fix it (SARIF, the job summary): said once, here
RULES: dict[str, RuleText] = {
    "empty-downgrade": RuleText(
        "The downgrade function is empty, or missing",
        "An error when `downgrade()` is only pass, `...` or a docstring while upgrade() is "
        "seen to change the schema: an Alembic operation (create_table, add_column, "
        "create_index, ...), execute() of DDL text or of a DDL element, a type's or "
        "table's create()/drop(), also in a function of the same file that upgrade() "
        "calls; `alembic downgrade` then reports success and leaves the change in place. "
        "Quiet when upgrade() changes only data (that is data-not-undone), changes "
        "nothing, or does what cannot be read from the file (an imported helper, "
        "execute() of SQL built at run time): the database checks run it and see what "
        "it leaves. A revision with no downgrade() at all is always an error, whatever "
        "upgrade() does: `alembic downgrade` stops at it. Write the downgrade, or raise "
        "NotImplementedError to say it is irreversible on purpose.",
    ),
    "data-not-undone": RuleText(
        "The downgrade function leaves data changes in place",
        "A notice when `downgrade()` is empty and upgrade() changes only data (UPDATE, "
        "INSERT, DELETE, bulk_insert, SELECT setval(...)): `alembic downgrade` steps "
        "past it and the rows stay as upgrade() left them. Quiet when upgrade() also "
        "changes the schema (then it is empty-downgrade) or only reads. Undo the change "
        "if a rollback needs the data as it was; if not, suppress it on the def line.",
    ),
    "unnamed-constraint": RuleText(
        "A constraint is created without a name",
        "Fires on create_foreign_key, create_unique_constraint, create_check_constraint "
        "and create_index given None as the name, and inside create_table or add_column "
        "on ForeignKey(), ForeignKeyConstraint(), UniqueConstraint() or CheckConstraint() "
        "without name= and on Column(unique=True): PostgreSQL then picks the name, which "
        "a later migration cannot rely on. Quiet on an unnamed primary key (PostgreSQL "
        "names it <table>_pkey), on Column(index=True) (SQLAlchemy names it "
        "ix_<table>_<column>), and when target_metadata has a naming_convention (found in "
        "env.py or a module it imports). Name it explicitly. A naming_convention on "
        "target_metadata is for a new project, or must come with a migration that renames "
        "the existing constraints: otherwise the models name them differently from the "
        "database.",
    ),
    "unnamed-drop-constraint": RuleText(
        "A constraint is dropped without a name",
        "`drop_constraint` needs the constraint's name; without one the downgrade cannot work.",
    ),
    "constraint-prefix": RuleText(
        "A constraint name does not follow the naming prefixes",
        "Constraint names should start with the configured prefix for their kind (fk_, "
        "ix_, uq_, ck_ by default) so they are predictable.",
    ),
    "not-null-without-server-default": RuleText(
        "A NOT NULL column is added without a server default",
        "`add_column` of a column with nullable=False and no server_default fails on a "
        "table that holds rows. Quiet when PostgreSQL fills the rows itself: Identity(), "
        "Computed(), a SERIAL, BIGSERIAL or SMALLSERIAL type, or an integer primary key "
        "SQLAlchemy makes SERIAL (autoincrement not False, no default or Sequence, no "
        "foreign key unless autoincrement=True); quiet in create_table (a new table is "
        "empty). Add a server_default, or add the column nullable, backfill, then set "
        "NOT NULL.",
    ),
    "python-side-default": RuleText(
        "A column uses a Python-side default in a migration",
        "`default=` only applies to inserts made through SQLAlchemy; existing rows and "
        "other clients do not get it. Use server_default.",
    ),
    "mixed-data-and-schema": RuleText(
        "A revision mixes data changes and schema changes",
        "A warning at each data statement (execute() of UPDATE, INSERT, DELETE, MERGE or "
        "TRUNCATE, an update()/insert()/delete() expression, bulk_insert) in a function "
        "that also changes the schema. On PostgreSQL Alembic runs the revision in one "
        "transaction, so a failure undoes both; the cost is elsewhere: the schema "
        "change's locks (ACCESS EXCLUSIVE for most ALTER TABLE) are held until commit, "
        "through the data step, so the application waits on those tables; a big table "
        "makes it one long transaction; and the data step cannot be re-run or done in "
        "batches apart from the DDL. Quiet for SELECT setval(...) and in a function that "
        "changes no schema. Split them into separate revisions.",
    ),
    "vague-message": RuleText(
        "The revision message says little",
        "Messages like 'update' or 'fix' make the history hard to read. Say what changes.",
    ),
    "file-name-template": RuleText(
        "The revision file name does not follow the template",
        "The file name differs from the file_template that alembic.ini sets, so it does "
        "not sort or read like the files `alembic revision` makes. Quiet when alembic.ini "
        "sets no file_template (Alembic's default names new files then, and older names "
        "are no convention the team chose). Rename the file to match.",
    ),
    "destructive-upgrade": RuleText(
        "An upgrade drops a table or column",
        "Dropping data is not undone by a downgrade. Check that it is intended and that "
        "deployed code no longer uses it.",
    ),
    "concurrently-in-transaction": RuleText(
        "CONCURRENTLY used inside a transaction",
        "PostgreSQL refuses CREATE/DROP INDEX CONCURRENTLY in a transaction block. Wrap "
        "it in `with op.get_context().autocommit_block():`.",
    ),
    "irreversible": RuleText(
        "A revision is marked irreversible",
        "Its downgrade raises on purpose. Allowed, but a deploy cannot be rolled back past it.",
    ),
    "unknown-rule": RuleText(
        "The lint settings name a rule that does not exist",
        "`lint.disable`, `lint.enable` or `lint.severity` names no rule of this check, so "
        "the setting does nothing. Use one of the rule ids the message lists.",
    ),
}
