from __future__ import annotations

import io
import json

import pytest
from reporter_samples import make_report
from rich.console import Console

from alembic_preflight.reporters import ReportOptions, emit, redact, write_atomic


def test_emit_writes_console_and_json(tmp_path, report):
    out = io.StringIO()
    path = tmp_path / "deep" / "dir" / "report.json"
    emit(report, ReportOptions(console=out, report_json=path, project_name="shop"))
    assert "FAILED" in out.getvalue()
    assert json.loads(path.read_text())["passed"] is False
    assert [p.name for p in path.parent.iterdir()] == ["report.json"]  # no temp file left


def test_emit_accepts_a_rich_console(report):
    out = io.StringIO()
    emit(report, ReportOptions(console=Console(file=out, width=100)))
    assert "stepwise" in out.getvalue()


def test_secrets_masked_everywhere(tmp_path):
    from dataclasses import replace

    from alembic_preflight.findings import Finding, Severity

    r = make_report()
    leak = Finding(
        "upgrade",
        "env-failed",
        Severity.ERROR,
        "could not connect to postgresql://app:hunter2@db/app",
        detail="password hunter2 rejected",
        fix="check hunter2",
    )
    first = replace(r.checks[0], findings=(*r.checks[0].findings, leak), note="hunter2")
    r = replace(r, checks=(first, *r.checks[1:]))
    out = io.StringIO()
    path = tmp_path / "r.json"
    emit(r, ReportOptions(console=out, report_json=path, secrets=("hunter2", "")))
    assert "hunter2" not in out.getvalue()
    assert "hunter2" not in path.read_text()
    assert "app:***@db" in path.read_text()
    # without secrets, only what reads as a URL's password is masked (issue 15); a report
    # with nothing to mask comes back as it was
    bare = redact(r, ())
    assert bare.checks[0].note == "hunter2"
    assert "could not connect to postgresql://app:***@db/app" in [
        f.message for f in bare.checks[0].findings
    ]
    plain = make_report()
    assert redact(plain, ()) is plain


def test_write_atomic_keeps_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "r.txt"
    write_atomic(path, "old")

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError):
        write_atomic(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.txt"]


def test_unknown_format_rejected():
    with pytest.raises(ValueError, match="format"):
        ReportOptions(format="auto")


def test_emit_writes_every_requested_file(tmp_path, report):
    import xml.etree.ElementTree as ET

    paths = {
        "report_json": tmp_path / "a" / "r.json",
        "junit": tmp_path / "b" / "junit.xml",
        "sarif": tmp_path / "c" / "r.sarif",
        "gitlab_codequality": tmp_path / "d" / "gl.json",
    }
    emit(report, ReportOptions(console=io.StringIO(), **paths))
    assert json.loads(paths["report_json"].read_text())["schema"] == 1
    assert ET.parse(paths["junit"]).getroot().tag == "testsuites"
    assert json.loads(paths["sarif"].read_text())["version"] == "2.1.0"
    assert isinstance(json.loads(paths["gitlab_codequality"].read_text()), list)


def test_verbose_reaches_the_console():
    from reporter_samples import make_defects_report

    from alembic_preflight.flags import REPORT_FLAGS, report_values

    assert report_values({})["verbose"] is False
    assert "--verbose" in next(f for f in REPORT_FLAGS if f.name == "verbose").option
    report = make_defects_report()
    short, full = io.StringIO(), io.StringIO()
    emit(report, ReportOptions(console=Console(file=short, width=100)))
    emit(report, ReportOptions(console=Console(file=full, width=100), verbose=True))
    assert "20 more lint errors" in short.getvalue()
    assert "more lint errors" not in full.getvalue()
    assert "0029beef0029_step_29.py does not follow" in full.getvalue()
