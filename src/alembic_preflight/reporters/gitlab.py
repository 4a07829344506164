"""GitLab Code Quality report (`--gitlab-codequality FILE`): a JSON array of issues.

https://docs.gitlab.com/ee/ci/testing/code_quality.html#code-quality-report-format
GitLab needs a path on every issue, so findings without a file point at alembic.ini.
"""

from __future__ import annotations

import json
from typing import Any

from alembic_preflight.findings import Report, Severity
from alembic_preflight.reporters._fingerprint import fingerprints

SEVERITY = {Severity.ERROR: "major", Severity.WARNING: "minor", Severity.NOTICE: "info"}


def issues(report: Report) -> list[dict[str, Any]]:
    findings = report.findings
    config = report.project.config
    out = []
    for f, fingerprint in zip(findings, fingerprints(findings, config), strict=True):
        description = f.message
        if f.revision and f.revision not in description:
            description += f" (revision {f.revision})"
        if f.fix:
            description += f" Fix: {f.fix}"
        out.append(
            {
                "type": "issue",
                "description": description,
                "check_name": f"{f.check}/{f.rule}",
                "fingerprint": fingerprint,
                "severity": SEVERITY[f.severity],
                "location": {
                    "path": f.file or config,
                    "lines": {"begin": (f.line or 1) if f.file else 1},
                },
            }
        )
    return out


def render(report: Report) -> str:
    return json.dumps(issues(report), indent=2, ensure_ascii=False) + "\n"
