"""The JSON report: a stable contract other tools (and `merge-reports`) read.

Schema 1. Keys may be added; the ones in `FINDING_KEYS` and the top-level layout are never
removed or renamed. Every check's findings are listed under the check and again, sorted,
in the top-level "findings" so consumers need not flatten.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from alembic_preflight.errors import ConfigError
from alembic_preflight.findings import (
    CheckResult,
    DatabaseInfo,
    Finding,
    LockedStatement,
    ProjectInfo,
    Report,
    Severity,
    Status,
)

SCHEMA = 1
TOOL_NAME = "alembic-preflight"


def finding_to_dict(f: Finding) -> dict[str, Any]:
    return {
        "check": f.check,
        "rule": f.rule,
        "severity": f.severity.value,
        "message": f.message,
        "revision": f.revision,
        "file": f.file,
        "line": f.line,
        "detail": f.detail,
        "column": f.column,
        "fix": f.fix,
        **({"traceback": f.traceback} if f.traceback else {}),
        **({"baseline": True} if f.baseline else {}),
    }


def check_to_dict(c: CheckResult) -> dict[str, Any]:
    return {
        "id": c.id,
        "status": c.status.value,
        "duration_s": round(c.duration_s, 3),
        "findings": [finding_to_dict(f) for f in c.findings],
        "note": c.note,
        "cases": [{"revision": rev, "status": st.value} for rev, st in c.cases],
        **({"statements": [asdict(s) for s in c.statements]} if c.statements else {}),
    }


def to_dict(report: Report) -> dict[str, Any]:
    p = report.project
    return {
        "schema": SCHEMA,
        "tool": {"name": TOOL_NAME, "version": report.tool_version},
        "passed": report.passed,
        **({"not_verified": report.not_verified} if report.not_verified else {}),
        "project": {
            "config": p.config,
            "script_location": p.script_location,
            "revisions": p.revisions,
            "heads": list(p.heads),
            "bases": list(p.bases),
            "directory": p.directory,
            "parents": {rev: list(ps) for rev, ps in sorted(p.parents.items())},
            "files": dict(sorted(p.files.items())),
        },
        "database": (
            None
            if report.database is None
            else {
                "backend": report.database.backend,
                "server_version": report.database.server_version,
            }
        ),
        "checks": [check_to_dict(c) for c in report.checks],
        "findings": [finding_to_dict(f) for f in report.findings],
        "duration_s": round(report.duration_s, 3),
        "fail_on": "never" if report.report_only else report.fail_on.value,
        "failed_checks": list(report.failed_checks),
        **(
            {
                "baseline": {
                    "file": report.baseline,
                    "accepted": report.accepted,
                    "fixed": list(report.fixed),
                }
            }
            if report.baseline is not None
            else {}
        ),
    }


def render(report: Report) -> str:
    return json.dumps(to_dict(report), indent=2, ensure_ascii=False) + "\n"


def finding_from_dict(d: dict[str, Any]) -> Finding:
    return Finding(
        check=d["check"],
        rule=d["rule"],
        severity=Severity(d["severity"]),
        message=d["message"],
        revision=d.get("revision"),
        file=d.get("file"),
        line=d.get("line"),
        column=d.get("column"),
        detail=d.get("detail"),
        fix=d.get("fix"),
        traceback=d.get("traceback"),
        baseline=bool(d.get("baseline", False)),
    )


def check_from_dict(d: dict[str, Any]) -> CheckResult:
    return CheckResult(
        id=d["id"],
        status=Status(d["status"]),
        duration_s=float(d["duration_s"]),
        findings=tuple(finding_from_dict(f) for f in d.get("findings", ())),
        note=d.get("note"),
        cases=tuple((c["revision"], Status(c["status"])) for c in d.get("cases", ())),
        statements=tuple(_statement(s) for s in d.get("statements", ())),
    )


def _statement(d: dict[str, Any]) -> LockedStatement:
    known = {f.name for f in fields(LockedStatement)}
    return LockedStatement(**{k: v for k, v in d.items() if k in known})


def from_dict(data: dict[str, Any]) -> Report:
    p = data["project"]
    db = data.get("database")
    checks = tuple(check_from_dict(c) for c in data["checks"])
    return Report(
        tool_version=data["tool"]["version"],
        project=ProjectInfo(
            config=p["config"],
            script_location=p["script_location"],
            revisions=int(p["revisions"]),
            heads=tuple(p["heads"]),
            bases=tuple(p["bases"]),
            directory=p.get("directory", "."),
            parents={rev: tuple(ps) for rev, ps in p.get("parents", {}).items()},
            files=dict(p.get("files", {})),
        ),
        database=None if db is None else DatabaseInfo(db["backend"], db["server_version"]),
        checks=checks,
        # older writers may lack the top-level total: the checks' sum is the best guess
        duration_s=float(data.get("duration_s", sum(c.duration_s for c in checks))),
        fail_on=Severity(
            "error" if data.get("fail_on") == "never" else data.get("fail_on", "error")
        ),
        report_only=data.get("fail_on") == "never",
        not_verified=data.get("not_verified"),
        baseline=(data.get("baseline") or {}).get("file"),
        fixed=tuple((data.get("baseline") or {}).get("fixed", ())),
    )


def read_report(path: Path) -> Report:
    """A Report back from a file this module wrote (for `merge-reports`)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the report: {e.strerror or e}") from e
    except ValueError as e:
        raise ConfigError(f"{path}: not a JSON report: {e}") from e
    tool = data.get("tool") if isinstance(data, dict) else None
    if not isinstance(tool, dict) or tool.get("name") != TOOL_NAME:
        raise ConfigError(f"{path}: not an alembic-preflight JSON report")
    if data.get("schema") != SCHEMA:
        raise ConfigError(
            f"{path}: report schema {data.get('schema')!r} is not supported (expected {SCHEMA})"
        )
    try:
        return from_dict(data)
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"{path}: malformed report ({type(e).__name__}: {e})") from e
