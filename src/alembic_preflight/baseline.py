"""The baseline: findings a team accepts on an existing history, so a run fails only on
what is new (issue 17).

`alembic-preflight baseline` writes every finding of a run to
`.alembic-preflight-baseline.json` with a fingerprint that survives re-runs, other
machines and line shifts: the check, the rule, the revision (or the file when there is
none) and the message with what varies between runs taken out (line numbers, memory
addresses, temporary names, timings). `verify` then shows a finding found in the baseline
as a notice marked `baseline`, and lists once the entries no longer found.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from alembic_preflight.errors import ConfigError
from alembic_preflight.findings import Finding, Severity
from alembic_preflight.settings import FIXED_RULES

FILE_NAME = ".alembic-preflight-baseline.json"
FORMAT = 1

# What differs between two runs of the same defect, replaced by a placeholder.
_VARYING = (
    (re.compile(r"0x[0-9a-fA-F]+"), "0x…"),  # memory addresses in reprs
    (re.compile(r"\bline \d+"), "line …"),
    (re.compile(r"(\.py|\.sql|\.ini|\.ya?ml):\d+(?::\d+)?"), r"\1"),  # file:line:column
    (re.compile(r"\bpreflight_\w+"), "preflight_…"),  # our databases and lanes
    (re.compile(r"/tmp/[^\s'\"`)]+"), "/tmp/…"),
    (re.compile(r"\b\d+(?:\.\d+)? ?(?:s|ms|seconds|min|h)\b"), "… s"),  # timings
    (re.compile(r"\s+"), " "),
)


def normalise(message: str) -> str:
    for pattern, placeholder in _VARYING:
        message = pattern.sub(placeholder, message)
    return message.strip()


def fingerprint(f: Finding) -> str:
    where = f.revision or f.file or ""
    key = "\0".join((f.check, f.rule, where, normalise(f.message)))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class Entry:
    fingerprint: str
    check: str
    rule: str
    revision: str | None
    file: str | None
    message: str

    def said(self) -> str:
        at = f" ({self.revision})" if self.revision else f" ({self.file})" if self.file else ""
        return f"{self.check}/{self.rule}{at}: {self.message}"


@dataclass(frozen=True)
class Baseline:
    path: Path
    entries: tuple[Entry, ...]


def entries_of(findings: Iterable[Finding]) -> list[Entry]:
    return sorted(
        (
            Entry(fingerprint(f), f.check, f.rule, f.revision, f.file, f.message)
            for f in findings
            if f.rule not in FIXED_RULES  # a run that verified nothing is never accepted
        ),
        key=lambda e: (e.check, e.rule, e.revision or "", e.file or "", e.message),
    )


def render(findings: Iterable[Finding], tool_version: str) -> str:
    """The baseline file's text: sorted, one entry per finding, stable for diffs."""
    doc = {
        "tool": "alembic-preflight",
        "version": tool_version,
        "format": FORMAT,
        "findings": [e.__dict__ for e in entries_of(findings)],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def load(path: Path) -> Baseline:
    """Read a baseline file; a broken one is a configuration error naming it (exit 2)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: baseline file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read the baseline: {e}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}:{e.lineno}: not valid JSON: {e.msg}") from None
    entries = doc.get("findings") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or doc.get("tool") != "alembic-preflight":
        raise ConfigError(
            f"{path}: not an alembic-preflight baseline (write one with "
            "`alembic-preflight baseline`)"
        )
    if doc.get("format") != FORMAT:
        raise ConfigError(
            f"{path}: baseline format {doc.get('format')!r}; this version reads {FORMAT}"
        )
    try:
        return Baseline(path, tuple(_entry(e) for e in entries))
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"{path}: a baseline entry lacks fields: write it again") from None


def _entry(raw: Any) -> Entry:
    if not isinstance(raw, dict):
        raise TypeError(raw)
    return Entry(
        fingerprint=str(raw["fingerprint"]),
        check=str(raw["check"]),
        rule=str(raw["rule"]),
        revision=None if raw.get("revision") is None else str(raw["revision"]),
        file=None if raw.get("file") is None else str(raw["file"]),
        message=str(raw.get("message", "")),
    )


class Matcher:
    """Matches a run's findings against the baseline, each entry at most once (the same
    defect twice needs two entries), across checks that run in threads."""

    def __init__(self, baseline: Baseline) -> None:
        import threading

        self.baseline = baseline
        self._left = Counter(e.fingerprint for e in baseline.entries)
        self._lock = threading.Lock()

    def accept(self, findings: Sequence[Finding]) -> list[Finding]:
        out = []
        with self._lock:
            for f in findings:
                fp = fingerprint(f)
                if self._left[fp] > 0 and f.rule not in FIXED_RULES:
                    self._left[fp] -= 1
                    f = replace(f, severity=Severity.NOTICE, baseline=True)
                out.append(f)
        return out

    def fixed(self, looked_at: Iterable[str], in_scope: Any = None) -> tuple[str, ...]:
        """Entries of the checks in `looked_at` no finding matched: fixed, or gone. An
        entry `in_scope` says False for (a revision outside a pull request's scope, a
        shard) was not looked at, so it is not said fixed."""
        ran = set(looked_at)
        left = Counter(self._left)
        out = []
        for e in self.baseline.entries:
            if left[e.fingerprint] > 0 and e.check in ran and (in_scope is None or in_scope(e)):
                left[e.fingerprint] -= 1
                out.append(e.said())
        return tuple(out)
