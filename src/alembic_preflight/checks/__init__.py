"""The registry of checks, in the order they run, and the documentation of their rules."""

from __future__ import annotations

from alembic_preflight.checks import drift, graph, lint, roundtrip, stepwise, upgrade
from alembic_preflight.checks.base import COMMON_RULES, Check
from alembic_preflight.checks.failures import DATABASE_RULES
from alembic_preflight.findings import RuleText

CHECKS: dict[str, Check] = {
    "graph": graph,
    "lint": lint,
    "upgrade": upgrade,
    "drift": drift,
    "roundtrip": roundtrip,
    "stepwise": stepwise,
}


def rule_docs() -> dict[str, RuleText]:
    """ "check/rule" -> its text, for every rule any check reports (the reporters' source)."""
    docs: dict[str, RuleText] = {}
    for check_id, check in CHECKS.items():
        shared = {**COMMON_RULES, **(DATABASE_RULES if check.NEEDS_DB else {})}
        for rule, text in {**shared, **check.RULES}.items():
            docs[f"{check_id}/{rule}"] = text
    return docs
