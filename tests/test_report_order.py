"""A report that leads with what matters, on a long history through the real CLI.

bench/generate_real.py's 300-revision history, with a team's naming conventions its
old revisions never followed (index and check prefixes, a file_template), graded
errors: about 490 findings, most of them naming errors on old revisions, as on the
public 288-revision history the issue tried (719 findings, a 999-line console whose
real failures began at line 146). The console must open with the failures that break a
deploy or a rollback, list at most 10 entries per section with the rest counted, and
stay under 300 lines in an 80-column CI log; `--verbose` prints every finding.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.conftest import run_cli
from tests.test_real_histories import generate_real, verify

CONVENTIONS = """\
lint:
  prefixes: {ix: "idx_", ck: "chk_"}
  severity: {constraint-prefix: error, file-name-template: error}
"""
FILE_TEMPLATE = "file_template = %%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s\n"
SECTIONS = ("Failures that break a deploy or a rollback", "Lint errors", "Warnings", "Notices")
HEADER = re.compile(r"^(" + "|".join(SECTIONS) + r") \((\d+)\)$")


def sections(stdout: str) -> dict[str, tuple[int, list[str]]]:
    """Section title -> (the count in its header, its lines)."""
    found: dict[str, tuple[int, list[str]]] = {}
    current: list[str] | None = None
    for line in stdout.splitlines():
        m = HEADER.match(line)
        if m:
            current = []
            found[m.group(1)] = (int(m.group(2)), current)
        elif not line.strip():
            current = None
        elif current is not None:
            current.append(line)
    return found


def entry_heads(lines: list[str]) -> list[str]:
    """An entry's first line: two spaces in (its body is six, what a line wraps onto at
    least four), and neither the count of the rest nor the irreversible revisions' fold."""
    return [
        ln
        for ln in lines
        if re.match(r"^  \S", ln)
        and not ln.startswith("  …")
        and "irreversible by design" not in ln
    ]


def test_a_long_history_leads_with_failures_and_stays_bounded(tmp_path: Path) -> None:
    # the mix this layout was sized for (issue 21's has more failures than ten entries show)
    generated = generate_real(tmp_path / "real", 300, defects=False)
    project = generated.path
    (project / ".alembic-preflight.yml").write_text(CONVENTIONS)
    ini = project / "alembic.ini"
    ini.write_text(ini.read_text().replace("[alembic]\n", "[alembic]\n" + FILE_TEMPLATE, 1))

    r = verify(project, env={"COLUMNS": "80"}, timeout=900)
    assert r.code == 1, r.stderr
    findings = r.findings()
    assert len(findings) > 400
    # every finding the generator expects is still there, and the JSON keeps them all
    expected = {(c, rule, rev) for c, rule, rev in generated.expected}
    assert expected <= {(f["check"], f["rule"], f["revision"]) for f in findings}

    lines = r.stdout.splitlines()
    assert len(lines) < 300, len(lines)
    found = sections(r.stdout)
    assert list(found) == list(SECTIONS)
    # the downgrades that can never run come before any naming error
    first_lint = r.stdout.index("\nLint errors (")
    assert r.stdout.index("stepwise/downgrade-failed:") < first_lint
    assert r.stdout.index("stepwise/downgrade-leaves-behind:") < first_lint
    failures = found[SECTIONS[0]][1]
    assert not any(ln.startswith("      lint/") for ln in failures)
    # a failure whose cause lint names is one entry, the lint rule under it
    assert "also seen by: lint/unnamed-drop-constraint" in "\n".join(failures)
    # at most 10 entries per section, the rest counted
    for title, (count, body) in found.items():
        heads = entry_heads(body)
        assert len(heads) <= 10, (title, heads)
        folded = 11 if title == "Warnings" else 0  # the irreversible revisions' one line
        rest = count - folded - len(heads)
        if rest:
            assert any(ln.startswith(f"  … {rest} more ") for ln in body), (title, body)
    # tracebacks: the revision's own frames, without env.py's or the restated error
    assert "Traceback (the project's own frames)" not in r.stdout
    assert "run_migrations_online" not in r.stdout
    assert "sqlalchemy.exc.CompileError" not in r.stdout

    # --verbose: everything, from the same report (merge-reports re-emits it, no database)
    report = tmp_path / "report.json"
    report.write_text(json.dumps(r.report))
    full = run_cli("merge-reports", report, "--verbose", env={"COLUMNS": "200"}, report=False)
    assert full.code == 1, full.stderr
    assert "more failures" not in full.stdout and "more lint errors" not in full.stdout
    assert "lines cut" not in full.stdout
    for f in findings:
        if f["file"] and f["line"]:
            assert f"{f['file']}:{f['line']}" in full.stdout, f
    heads = entry_heads([ln for _, body in sections(full.stdout).values() for ln in body[:]])
    # one entry per finding, less the lint findings that joined the failures they cause
    assert len(heads) == len(findings) - 4
