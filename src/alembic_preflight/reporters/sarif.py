"""SARIF 2.1.0 (`--sarif FILE`) for GitHub code scanning.

https://docs.github.com/code-security/code-scanning/integrating-with-code-scanning/sarif-support-for-code-scanning
Code scanning needs a location on every result, so findings without a file point at
alembic.ini, line 1. Paths are relative to the repository root (`%SRCROOT%`).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from alembic_preflight.findings import Finding, Report, Severity, Status
from alembic_preflight.reporters import rules
from alembic_preflight.reporters._fingerprint import fingerprints

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://pypi.org/project/alembic-preflight/"
TOOL_NAME = "alembic-preflight"
LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTICE: "note"}
FINGERPRINT_KEY = "alembicPreflight/v1"


def rule_id(f: Finding) -> str:
    return f"{f.check}/{f.rule}"


def rule_descriptor(report: Report, check: str, rule: str, level: str) -> dict[str, Any]:
    text = rules.describe(report, check, rule)
    return {
        "id": f"{check}/{rule}",
        "name": "".join(w.capitalize() for w in f"{check}-{rule}".split("-")),
        "shortDescription": {"text": text.short},
        "fullDescription": {"text": text.help},
        "help": {"text": text.help, "markdown": text.help},
        "defaultConfiguration": {"level": level},
        "properties": {"tags": ["alembic", "migrations", check]},
    }


def result(f: Finding, index: int, fingerprint: str, config: str) -> dict[str, Any]:
    text = f.message
    if f.revision and f.revision not in text:
        text += f" (revision {f.revision})"
    if f.fix:
        text += f"\nFix: {f.fix}"
    region: dict[str, int] = {"startLine": (f.line or 1) if f.file else 1}
    if f.file and f.column:
        region["startColumn"] = f.column
    out: dict[str, Any] = {
        "ruleId": rule_id(f),
        "ruleIndex": index,
        "level": LEVEL[f.severity],
        "message": {"text": text},
        "locations": [
            {
                "physicalLocation": {
                    # a URI reference: spaces and '%' in file names must be percent-encoded
                    "artifactLocation": {"uri": quote(f.file or config), "uriBaseId": "%SRCROOT%"},
                    "region": region,
                }
            }
        ],
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint},
    }
    if f.revision or f.detail:
        props: dict[str, str] = {}
        if f.revision:
            props["revision"] = f.revision
        if f.detail:
            props["detail"] = f.detail
        out["properties"] = props
    return out


def to_dict(report: Report) -> dict[str, Any]:
    findings = report.findings
    config = report.project.config
    ids: dict[str, int] = {}
    descriptors: list[dict[str, Any]] = []
    # rules in a stable order, independent of which finding came first
    for f in sorted(findings, key=lambda f: (rule_id(f), f.severity.rank)):
        if rule_id(f) not in ids:
            ids[rule_id(f)] = len(descriptors)
            descriptors.append(rule_descriptor(report, f.check, f.rule, LEVEL[f.severity]))
    results = [
        result(f, ids[rule_id(f)], fp, config)
        for f, fp in zip(findings, fingerprints(findings, config), strict=True)
    ]
    errored = [c for c in report.checks if c.status is Status.ERROR]
    invocation: dict[str, Any] = {"executionSuccessful": not errored}
    if errored:
        invocation["toolExecutionNotifications"] = [
            {
                "level": "error",
                "message": {"text": f"the {c.id} check could not run: {c.note or 'error'}"},
                "descriptor": {"id": c.id},
            }
            for c in errored
        ]
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": TOOL_NAME,
                        "version": report.tool_version,
                        "semanticVersion": report.tool_version,
                        "informationUri": INFORMATION_URI,
                        "rules": descriptors,
                    }
                },
                "invocations": [invocation],
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }


def render(report: Report) -> str:
    return json.dumps(to_dict(report), indent=2, ensure_ascii=False) + "\n"
