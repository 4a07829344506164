"""A rule's text for SARIF and the job summary: from the report, which carries each
check's own RULES table (checks/__init__.py: rule_docs); a generic text for a rule a
report does not document (an older report merged by `merge-reports`)."""

from __future__ import annotations

from alembic_preflight.findings import Report, RuleText


def describe(report: Report, check: str, rule: str) -> RuleText:
    found = report.rules.get(f"{check}/{rule}")
    if found is not None:
        return found
    words = rule.replace("-", " ").replace("_", " ")
    return RuleText(
        f"{check}: {words}",
        f"Reported by the `{check}` check. See the finding's message and detail for what "
        "went wrong and how to fix it.",
    )
