"""Stable, unique fingerprints for findings (GitLab Code Quality, SARIF).

A fingerprint must survive unrelated edits, so it hashes what the finding is about
(check, rule, file, revision, message), not where the line happens to be. Identical
findings get an occurrence number, counted in the report's deterministic order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from alembic_preflight.findings import Finding


def fingerprints(findings: Iterable[Finding], default_file: str = "") -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for f in findings:
        key = "\0".join((f.check, f.rule, f.file or default_file, f.revision or "", f.message))
        n = seen.get(key, 0)
        seen[key] = n + 1
        # the first occurrence keeps the plain hash, so adding a duplicate later does not
        # change the fingerprint of the one already reported
        text = key if n == 0 else f"{key}\0{n}"
        out.append(hashlib.sha256(text.encode("utf-8")).hexdigest())
    return out
