"""The baseline (issue 17): accept what an existing history has, fail on what is new.
Through the real CLI against the embedded PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from alembic_preflight.baseline import normalise
from tests.conftest import CliResult, run_cli

FILE = ".alembic-preflight-baseline.json"
CHECKS = ("--database", "embedded", "--checks", "lint,stepwise")

NEW_REVISION = '''"""create invoices

Revision ID: c3c3c3c3c3c3
Revises: b2b2b2b2b2b2
"""
from alembic import op
import sqlalchemy as sa

revision = "c3c3c3c3c3c3"
down_revision = "b2b2b2b2b2b2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("invoices", sa.Column("id", sa.Integer(), primary_key=True))


def downgrade() -> None:
    pass
'''


def verify(proj: Path, *flags: str) -> CliResult:
    r = run_cli("verify", ".", *CHECKS, *flags, cwd=proj)
    assert r.report is not None, r.stderr
    return r


def known(r: CliResult) -> set[tuple[str, str, bool]]:
    return {(f["rule"], f["revision"], f.get("baseline", False)) for f in r.findings()}


def test_baseline_round_trip(project: Any) -> None:
    proj: Path = project("not_null_no_default")
    b2 = proj / "migrations/versions/b2b2b2b2b2b2_add_customer_ref.py"
    before = verify(proj)
    assert before.code == 1
    found = {(f["rule"], f["revision"]) for f in before.findings()}
    assert ("fails-with-rows", "b2b2b2b2b2b2") in found

    # written: one entry per finding, exit 0 although they are errors
    written = run_cli("baseline", ".", *CHECKS, cwd=proj)
    assert written.code == 0, written.stderr
    doc = json.loads((proj / FILE).read_text())
    assert doc["tool"] == "alembic-preflight" and doc["version"]
    assert {(e["rule"], e["revision"]) for e in doc["findings"]} == found
    assert f"baseline written: {FILE} ({len(found)} findings)" in written.stderr

    # accepted: notices marked baseline, the run passes and says how many
    r = verify(proj)
    assert r.code == 0, r.stdout
    assert {f["severity"] for f in r.findings()} == {"notice"}
    assert all(f["baseline"] for f in r.findings())
    accepted = len(r.findings())
    assert f"{accepted} known findings accepted by the baseline ({FILE})" in r.stdout
    assert r.report["baseline"] == {"file": FILE, "accepted": accepted, "fixed": []}

    # stable across line shifts: the file moves down three lines
    b2.write_text("# reformatted\n# by a tool\n\n" + b2.read_text())
    assert verify(proj).code == 0

    # a new problem still fails; the known ones stay accepted
    (proj / "migrations/versions/c3c3c3c3c3c3_create_invoices.py").write_text(NEW_REVISION)
    r = verify(proj)
    assert r.code == 1
    assert ("empty-downgrade", "c3c3c3c3c3c3", False) in known(r)
    assert ("fails-with-rows", "b2b2b2b2b2b2", True) in known(r)
    (proj / "migrations/versions/c3c3c3c3c3c3_create_invoices.py").unlink()

    # fixed: each entry no longer found is listed once, to be removed
    b2.write_text(b2.read_text().replace("nullable=False", 'nullable=False, server_default="x"'))
    r = verify(proj)
    assert r.code == 0
    fixed = r.report["baseline"]["fixed"]
    assert any(e.startswith("stepwise/fails-with-rows (b2b2b2b2b2b2)") for e in fixed)
    assert "no longer found (fixed: remove from the baseline" in r.stdout

    # --no-baseline: every finding counts again
    b2.write_text(b2.read_text().replace(', server_default="x"', ""))
    assert verify(proj, "--no-baseline").code == 1


def test_baseline_elsewhere_and_broken_files(project: Any) -> None:
    proj: Path = project("not_null_no_default")
    other = proj / "ci" / "accepted.json"
    other.parent.mkdir()
    assert run_cli("baseline", ".", *CHECKS, "--baseline", "ci/accepted.json", cwd=proj).code == 0
    assert not (proj / FILE).exists() and other.is_file()
    assert verify(proj, "--baseline", "ci/accepted.json").code == 0
    (proj / ".alembic-preflight.yml").write_text("baseline: ci/accepted.json\n")
    assert verify(proj).code == 0
    other.write_text('{"tool": "alembic-preflight",\n  "findings": [\n')
    r = run_cli("verify", ".", *CHECKS, cwd=proj)
    assert r.code == 2 and "ci/accepted.json:3: not valid JSON" in r.stderr
    other.write_text('{"some": "thing"}')
    r = run_cli("verify", ".", *CHECKS, cwd=proj)
    assert r.code == 2 and "not an alembic-preflight baseline" in r.stderr
    r = run_cli("verify", ".", *CHECKS, "--baseline", "nope.json", cwd=proj)
    assert r.code == 2 and "nope.json: baseline file not found" in r.stderr
    assert "Traceback" not in r.stderr


def test_fingerprints_ignore_what_varies_between_runs() -> None:
    a = "at 0x7f3a2c1d0e50 line 12 in /tmp/pytest-1/p/x.py:12:4 took 1.52 s (preflight_ab12cd_1)"
    b = "at 0x7f00000000aa line 40 in /tmp/other/x.py:40 took 3 s (preflight_ffee00_2)"
    assert normalise(a) == normalise(b)
    assert normalise("column `a`") != normalise("column `b`")
