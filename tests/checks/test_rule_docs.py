"""Every rule a check can report is documented once, in that check's own RULES table
(issue 14): found by reading the checks' source for the places a finding gets its rule."""

from __future__ import annotations

import ast
from pathlib import Path

import alembic_preflight.checks as checks_pkg
from alembic_preflight.checks import CHECKS, rule_docs
from alembic_preflight.checks.lint.rules import DEFAULT_SEVERITY

CHECKS_DIR = Path(checks_pkg.__file__).parent
VERIFY = CHECKS_DIR.parent / "commands" / "run_checks.py"  # internal-error, for any check
# helper -> the position of its rule argument
RULE_ARGUMENT = {"_finding": 1, "failure_finding": 2, "failure": 2, "_hit": 0}


def emitted(paths: list[Path]) -> set[str]:
    """Rule ids given to findings in these files: `rule="..."`, or a helper's rule argument."""
    found: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            for kw in node.keywords:
                if kw.arg == "rule" and isinstance(kw.value, ast.Constant):
                    found.add(kw.value.value)
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            pos = RULE_ARGUMENT.get(name or "")
            if pos is not None and len(node.args) > pos:
                arg = node.args[pos]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.add(arg.value)
    return found


def sources(check_id: str) -> list[Path]:
    package = CHECKS_DIR / check_id
    return sorted(package.glob("*.py")) if package.is_dir() else [CHECKS_DIR / f"{check_id}.py"]


def test_every_emitted_rule_is_documented_by_its_check() -> None:
    docs = rule_docs()
    shared_database = emitted([CHECKS_DIR / "failures.py"])
    every_check = emitted([VERIFY])
    assert "internal-error" in every_check and "env-did-not-migrate" in shared_database
    missing = []
    for check_id, check in CHECKS.items():
        rules = emitted(sources(check_id)) | every_check
        if check.NEEDS_DB:
            rules |= shared_database
        if check_id == "lint":
            rules |= set(DEFAULT_SEVERITY)
        assert rules, check_id
        missing += [f"{check_id}/{r}" for r in sorted(rules) if f"{check_id}/{r}" not in docs]
    assert missing == []


def test_docs_are_complete_sentences() -> None:
    for key, text in rule_docs().items():
        assert text.short and not text.short.endswith("."), key
        assert text.help.endswith("."), key
