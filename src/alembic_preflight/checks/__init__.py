"""The registry of checks, in the order they run, and the documentation of their rules."""

from __future__ import annotations

from alembic_preflight.checks import (
    compat,
    drift,
    graph,
    lint,
    locks,
    roundtrip,
    stepwise,
    upgrade,
)
from alembic_preflight.checks.base import COMMON_RULES, Check
from alembic_preflight.checks.failures import DATABASE_RULES
from alembic_preflight.findings import RuleText
from alembic_preflight.settings import ALL_CHECKS, DATABASE_CHECKS

CHECKS: dict[str, Check] = {
    "graph": graph,
    "lint": lint,
    "upgrade": upgrade,
    "drift": drift,
    "compat": compat,
    "roundtrip": roundtrip,
    "locks": locks,
    "stepwise": stepwise,
}


# the names settings.py validates (it cannot import the checks): the same, in order
assert tuple(CHECKS) == ALL_CHECKS, (tuple(CHECKS), ALL_CHECKS)
assert {c for c, check in CHECKS.items() if check.NEEDS_DB} == DATABASE_CHECKS


def rule_docs() -> dict[str, RuleText]:
    """ "check/rule" -> its text, for every rule any check reports (the reporters' source)."""
    docs: dict[str, RuleText] = {}
    for check_id, check in CHECKS.items():
        shared = {**COMMON_RULES, **(DATABASE_RULES if check.NEEDS_DB else {})}
        for rule, text in {**shared, **check.RULES}.items():
            docs[f"{check_id}/{rule}"] = text
    return docs
