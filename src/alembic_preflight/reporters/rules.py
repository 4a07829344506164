"""Short descriptions and help for each rule, shared by SARIF and the job summary.

Keyed by "check/rule" because rule ids repeat across checks (`downgrade-failed` in both
roundtrip and stepwise). Checks are written independently of this table, so an unknown
rule gets a generic text rather than an error.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RuleText:
    short: str  # one line, no trailing period: SARIF shortDescription, summary headings
    help: str  # a few sentences: why it matters and how to fix it


RULES: dict[str, RuleText] = {
    # graph
    "graph/multiple-heads": RuleText(
        "The revision history has more than one head",
        "Two branches of migrations were created from the same parent, so `alembic upgrade "
        "head` is ambiguous. Create a merge revision with `alembic merge heads`.",
    ),
    "graph/multiple-bases": RuleText(
        "The revision history has more than one base",
        "More than one revision has no parent. Unless the project uses independent branches "
        "on purpose, point the stray base's `down_revision` at the revision it follows.",
    ),
    "graph/missing-parent": RuleText(
        "A revision names a parent that does not exist",
        "`down_revision` refers to a revision id no file defines, often after a rebase or "
        "a deleted file. Point it at an existing revision.",
    ),
    "graph/duplicate-revision": RuleText(
        "Two files define the same revision id",
        "Revision ids must be unique. Give one of the files a new id (and update revisions "
        "that name it as a parent).",
    ),
    "graph/syntax-error": RuleText(
        "A revision file cannot be imported",
        "Alembic could not load the file. Fix the Python error shown in the detail.",
    ),
    "graph/cycle": RuleText(
        "The revision graph contains a cycle",
        "A revision is its own ancestor. Fix the `down_revision` links that close the loop.",
    ),
    # upgrade
    "upgrade/migration-failed": RuleText(
        "A migration failed to upgrade",
        "`alembic upgrade` raised an error on a fresh database. Fix the migration; the detail "
        "shows the SQL error and the statement.",
    ),
    "upgrade/env-failed": RuleText(
        "env.py failed before any migration ran",
        "The project's env.py raised an error. Check imports, the database URL handling and "
        "anything env.py reads from the environment. Said once, by the first database check "
        "that runs; the others are skipped.",
    ),
    "upgrade/env-did-not-migrate": RuleText(
        "env.py did not run the migrations on the database it was handed",
        "env.py returned without calling context.run_migrations() on a connection to the "
        "URL it was handed (it does nothing, returns early, or runs offline), or after "
        "`upgrade head` the database's version table does not name the heads. Nothing was "
        "verified. Configure the context with a connection to that URL and run the "
        "migrations, as `alembic init` writes env.py.",
    ),
    "upgrade/url-env-inferred": RuleText(
        "env.py read its URL from a variable of its own",
        "env.py ignored the URL it was handed and read another database's address from an "
        "environment variable (or a .env entry): the verifier refused that connection, set "
        "the variable to its own disposable database and ran again. Name the variable with "
        "`url-env:` (or --url-env) so the retry is not needed.",
    ),
    # drift
    "drift/model-drift": RuleText(
        "The models and the migrated schema differ",
        "After upgrading to head, autogenerate still finds differences: a migration is "
        "missing or does not match the models. Run `alembic revision --autogenerate` and "
        "review the result.",
    ),
    # roundtrip
    "roundtrip/downgrade-failed": RuleText(
        "Downgrading from head to base failed",
        "A downgrade raised an error. Fix the revision's `downgrade()`, or mark it "
        "irreversible on purpose.",
    ),
    "roundtrip/roundtrip-differs": RuleText(
        "Upgrade, downgrade, upgrade gives a different schema",
        "A downgrade does not undo its upgrade exactly, so the second upgrade produced a "
        "different schema. Make `downgrade()` the inverse of `upgrade()`.",
    ),
    "roundtrip/base-not-empty": RuleText(
        "Objects remain after downgrading to base",
        "Downgrading everything should leave an empty schema. Drop what the upgrades created "
        "(types, sequences, extensions included).",
    ),
    # stepwise
    "stepwise/downgrade-leaves-behind": RuleText(
        "A downgrade leaves objects its upgrade created",
        "After upgrade then downgrade of this one revision the schema is not what it was. "
        "Drop in `downgrade()` what `upgrade()` creates.",
    ),
    "stepwise/downgrade-failed": RuleText(
        "A revision's downgrade failed",
        "Downgrading this single revision raised an error. Fix its `downgrade()`.",
    ),
    "stepwise/irreversible": RuleText(
        "A revision cannot be downgraded by design",
        "Its `downgrade()` is empty or raises on purpose. That is allowed, but it means a "
        "deploy cannot be rolled back past it.",
    ),
    "stepwise/fails-with-rows": RuleText(
        "A migration fails when tables hold rows",
        "The migration works on an empty database but fails with data present, for example "
        "adding a NOT NULL column without a default. Backfill or add a server default.",
    ),
    "stepwise/upgrade-not-committed": RuleText(
        "A migration's changes are not committed",
        "The upgrade reported success, but the version table does not name it: the "
        "migration ended Alembic's transaction (op.get_bind().commit()) and the rest ran in "
        "one nobody commits. Use transaction_per_migration and autocommit_block().",
    ),
    "stepwise/step-timeout": RuleText(
        "A migration step took longer than the step timeout",
        "The step did not finish in time; it may wait on a lock or do heavy work. Split it, "
        "or raise --step-timeout if it is expected.",
    ),
    # lint
    "lint/empty-downgrade": RuleText(
        "The downgrade function is empty",
        "`downgrade()` does nothing, so the revision cannot be rolled back. Write it, or "
        "raise NotImplementedError to say it is irreversible on purpose.",
    ),
    "lint/unnamed-constraint": RuleText(
        "A constraint is created without a name",
        "PostgreSQL generates a name, which a later migration cannot rely on. Name it, or set "
        "a naming_convention on the MetaData.",
    ),
    "lint/unnamed-drop-constraint": RuleText(
        "A constraint is dropped without a name",
        "`drop_constraint` needs the constraint's name; without one the downgrade cannot work.",
    ),
    "lint/constraint-prefix": RuleText(
        "A constraint name does not follow the naming prefixes",
        "Constraint names should start with the configured prefix for their kind "
        "(fk_, ix_, uq_, ck_ by default) so they are predictable.",
    ),
    "lint/not-null-without-server-default": RuleText(
        "A NOT NULL column is added without a server default",
        "Adding it fails on a table that holds rows. Add a server_default, or add the column "
        "nullable, backfill, then set NOT NULL.",
    ),
    "lint/python-side-default": RuleText(
        "A column uses a Python-side default in a migration",
        "`default=` only applies to inserts made through SQLAlchemy; existing rows and other "
        "clients do not get it. Use server_default.",
    ),
    "lint/mixed-data-and-schema": RuleText(
        "A revision mixes data changes and schema changes",
        "Data migrations and DDL in one revision are hard to roll back and can hold locks "
        "long. Split them into separate revisions.",
    ),
    "lint/vague-message": RuleText(
        "The revision message says little",
        "Messages like 'update' or 'fix' make the history hard to read. Say what changes.",
    ),
    "lint/file-name-template": RuleText(
        "The revision file name does not follow the template",
        "The file name differs from alembic.ini's file_template; rename it to match.",
    ),
    "lint/destructive-upgrade": RuleText(
        "An upgrade drops a table or column",
        "Dropping data is not undone by a downgrade. Check that it is intended and that "
        "deployed code no longer uses it.",
    ),
    "lint/concurrently-in-transaction": RuleText(
        "CONCURRENTLY used inside a transaction",
        "PostgreSQL refuses CREATE/DROP INDEX CONCURRENTLY in a transaction block. Wrap it in "
        "`with op.get_context().autocommit_block():`.",
    ),
    "lint/irreversible": RuleText(
        "A revision is marked irreversible",
        "Its downgrade raises on purpose. Allowed, but a deploy cannot be rolled back past it.",
    ),
}


# The probe of env.py is reported by the first database check that runs (checks/common.py)
for _check in ("drift", "roundtrip", "stepwise"):
    for _rule in ("env-failed", "env-did-not-migrate", "url-env-inferred"):
        RULES.setdefault(f"{_check}/{_rule}", RULES[f"upgrade/{_rule}"])


def describe(check: str, rule: str) -> RuleText:
    found = RULES.get(f"{check}/{rule}")
    if found is not None:
        return found
    words = rule.replace("-", " ").replace("_", " ")
    return RuleText(
        f"{check}: {words}",
        f"Reported by the `{check}` check. See the finding's message and detail for what "
        "went wrong and how to fix it.",
    )
