"""The registry of checks, in the order they run."""

from __future__ import annotations

from alembic_preflight.checks import drift, graph, lint, roundtrip, stepwise, upgrade
from alembic_preflight.checks.base import Check

CHECKS: dict[str, Check] = {
    "graph": graph,
    "lint": lint,
    "upgrade": upgrade,
    "drift": drift,
    "roundtrip": roundtrip,
    "stepwise": stepwise,
}
