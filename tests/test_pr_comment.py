"""The opt-in pull-request comment (`github-token`): the real action entrypoint, run as the
runner runs it (`python -m alembic_preflight.action github-action` with INPUT_* and GITHUB_*
variables) on fixture projects against a real embedded PostgreSQL, talking to a local fake
of GitHub's REST API (GITHUB_API_URL) that records every request."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from alembic_preflight.findings import CheckResult as Result
from alembic_preflight.findings import Finding, ProjectInfo, Report, Severity, Status
from alembic_preflight.reporters import pr_comment
from tests.conftest import FIXTURES, ROOT

TOKEN = "ghs_FAKEtoken0123456789abcdefABCDEF"
REPO = "octo/app"
PR = 7
MARKER = "<!-- alembic-preflight:comment"
# the graph and lint (no database) and two checks against the embedded PostgreSQL
CHECKS = "graph,lint,upgrade,drift"


@dataclass
class FakeGitHub:
    """Issue comments of one pull request, served page by page (`page_size` a page, the
    Link header's rel="next"), as GitHub's REST API does; `fail` answers every request
    with that HTTP status."""

    url: str = ""
    comments: dict[int, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str], Any]] = field(default_factory=list)
    page_size: int = 100
    fail: int | None = None
    next_id: int = 1000

    def add(self, body: str, user: str = "someone") -> int:
        self.next_id += 1
        self.comments[self.next_id] = {"id": self.next_id, "body": body, "user": {"login": user}}
        return self.next_id

    def ours(self) -> list[dict[str, Any]]:
        return [c for c in self.comments.values() if MARKER in c["body"]]

    def methods(self) -> list[str]:
        return [method for method, *_ in self.requests]


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    comments_path = f"/repos/{REPO}/issues/{PR}/comments"
    one_path = re.compile(rf"^/repos/{REPO}/issues/comments/(\d+)$")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _answer(self, status: int, body: Any = None, headers: dict[str, str] | None = None):
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            fake.requests.append((method, self.path, dict(self.headers.items()), body))
            if fake.fail is not None:
                self._answer(fake.fail, {"message": "Resource not accessible by integration"})
                return
            url = urlsplit(self.path)
            found = one_path.match(url.path)
            if url.path == comments_path and method == "GET":
                page = int(parse_qs(url.query).get("page", ["1"])[0])
                items = sorted(fake.comments.values(), key=lambda c: c["id"])
                size = fake.page_size
                chunk = items[(page - 1) * size : page * size]
                headers = {}
                if page * size < len(items):
                    headers["Link"] = (
                        f'<{fake.url}{comments_path}?per_page=100&page={page + 1}>; rel="next", '
                        f'<{fake.url}{comments_path}?per_page=100&page=999>; rel="last"'
                    )
                self._answer(200, chunk, headers)
            elif url.path == comments_path and method == "POST":
                cid = fake.add(body["body"], user="github-actions[bot]")
                self._answer(201, fake.comments[cid])
            elif found and method == "PATCH" and int(found[1]) in fake.comments:
                fake.comments[int(found[1])]["body"] = body["body"]
                self._answer(200, fake.comments[int(found[1])])
            elif found and method == "DELETE" and int(found[1]) in fake.comments:
                del fake.comments[int(found[1])]
                self._answer(204)
            else:
                self._answer(404, {"message": "Not Found"})

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_PATCH(self) -> None:
            self._handle("PATCH")

        def do_DELETE(self) -> None:
            self._handle("DELETE")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class ActionRun:
    code: int
    stdout: str
    stderr: str


def workspace(tmp_path: Path, source: Path) -> Path:
    ws = tmp_path / "workspace"
    if ws.exists():
        shutil.rmtree(ws / "db")
    ws.mkdir(exist_ok=True)
    shutil.copytree(source, ws / "db", ignore=shutil.ignore_patterns("__pycache__"))
    return ws


def run_action(
    ws: Path,
    github: FakeGitHub,
    *,
    token: str = TOKEN,
    event: dict[str, Any] | None = None,
    checks: str = CHECKS,
) -> ActionRun:
    """The action as the runner starts it, in the workspace, with these inputs."""
    tmp = ws.parent
    event_path = tmp / "event.json"
    event_path.write_text(json.dumps({"pull_request": {"number": PR}} if event is None else event))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CI_", "INPUT_"))}
    env.update(
        NO_COLOR="1",
        PYTHONWARNINGS="ignore",
        # the fake server is local: no proxy of this machine in between
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        GITHUB_ACTIONS="true",
        GITHUB_WORKSPACE=str(ws),
        GITHUB_EVENT_PATH=str(event_path),
        GITHUB_EVENT_NAME="pull_request",
        GITHUB_REPOSITORY=REPO,
        GITHUB_API_URL=github.url,
        GITHUB_SERVER_URL="https://github.example",
        GITHUB_SHA="0123456789abcdef0123456789abcdef01234567",
        GITHUB_RUN_ID="42",
        GITHUB_WORKFLOW="migrations",
        GITHUB_JOB="preflight",
        GITHUB_OUTPUT=str(tmp / "github_output"),
        GITHUB_STEP_SUMMARY=str(tmp / "step_summary.md"),
    )
    env["INPUT_WORKING-DIRECTORY"] = "db"
    env["INPUT_CHECKS"] = checks
    env["INPUT_DATABASE"] = "embedded"
    env["INPUT_GITHUB-TOKEN"] = token
    proc = subprocess.run(
        [sys.executable, "-m", "alembic_preflight.action", "github-action"],
        cwd=ws,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    assert TOKEN not in proc.stdout + proc.stderr, "the token was printed"
    return ActionRun(proc.returncode, proc.stdout, proc.stderr)


def test_one_comment_created_then_updated_in_place(tmp_path: Path, github: FakeGitHub) -> None:
    others = github.add("LGTM, but see the migration")
    ws = workspace(tmp_path, FIXTURES / "drift")
    first = run_action(ws, github)
    assert first.code == 1, first.stdout + first.stderr  # as without a token: drift failed
    assert github.methods() == ["GET", "POST"]
    [ours] = github.ours()
    assert ours["body"].startswith(f"{MARKER} migrations/preflight/db -->\n")
    assert "alembic-preflight failed" in ours["body"] and "model-drift" in ours["body"]
    assert "https://github.example/octo/app/actions/runs/42" in ours["body"]
    _, _, headers, _ = github.requests[0]
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert "pull-request comment created (#7)" in first.stderr
    # the next push: the same comment, edited; nothing posted again
    github.requests.clear()
    second = run_action(ws, github)
    assert second.code == 1
    assert github.methods() == ["GET", "PATCH"]
    assert github.requests[1][1] == f"/repos/{REPO}/issues/comments/{ours['id']}"
    assert [c["id"] for c in github.ours()] == [ours["id"]]
    assert github.comments[others]["body"] == "LGTM, but see the migration"  # not ours: kept


def test_the_comment_is_deleted_when_all_is_clean(tmp_path: Path, github: FakeGitHub) -> None:
    ws = workspace(tmp_path, FIXTURES / "drift")
    assert run_action(ws, github).code == 1
    assert len(github.ours()) == 1
    # the pull request fixed: the project now verifies cleanly
    workspace(tmp_path, ROOT / "examples" / "project")
    github.requests.clear()
    clean = run_action(ws, github)
    assert clean.code == 0, clean.stdout + clean.stderr
    assert github.methods() == ["GET", "DELETE"]
    assert github.ours() == []
    # and on the next clean push: nothing to delete, nothing posted
    github.requests.clear()
    assert run_action(ws, github).code == 0
    assert github.methods() == ["GET"]


def test_without_a_token_or_outside_a_pull_request_no_request(
    tmp_path: Path, github: FakeGitHub
) -> None:
    ws = workspace(tmp_path, FIXTURES / "unnamed_drop_constraint")
    assert run_action(ws, github, token="", checks="graph,lint").code == 1
    push = {"ref": "refs/heads/main", "after": "0123456"}  # a push event: no pull_request
    assert run_action(ws, github, event=push, checks="graph,lint").code == 1
    assert github.requests == []


def test_a_refused_request_is_a_warning_and_the_outcome_stands(
    tmp_path: Path, github: FakeGitHub
) -> None:
    github.fail = 403
    ws = workspace(tmp_path, FIXTURES / "drift")
    failing = run_action(ws, github)
    assert failing.code == 1, failing.stdout + failing.stderr
    assert github.methods() == ["GET"]
    warnings = [line for line in failing.stdout.splitlines() if line.startswith("::warning ")]
    assert len(warnings) == 1, failing.stdout
    assert "HTTP 403" in warnings[0] and "pull-requests: write" in warnings[0]
    assert "Resource not accessible by integration" in warnings[0]
    assert "warning: pull-request comment not updated" in failing.stderr
    # a clean run whose delete is refused passes all the same
    workspace(tmp_path, ROOT / "examples" / "project")
    assert run_action(ws, github, checks="graph,lint").code == 0


def test_an_unreachable_api_is_a_warning(tmp_path: Path, github: FakeGitHub) -> None:
    github.url = "http://127.0.0.1:9"  # discard port: nothing listens
    ws = workspace(tmp_path, FIXTURES / "unnamed_drop_constraint")
    run = run_action(ws, github, checks="graph,lint")
    assert run.code == 1
    assert "::warning title=alembic-preflight: pull-request comment::" in run.stdout


def test_our_comment_on_a_later_page_is_found(tmp_path: Path, github: FakeGitHub) -> None:
    github.page_size = 2
    for n in range(3):
        github.add(f"review comment {n}")
    ours = github.add(f"{MARKER} migrations/preflight/db -->\nan earlier summary")
    github.add("one more after ours")
    ws = workspace(tmp_path, FIXTURES / "unnamed_drop_constraint")
    assert run_action(ws, github, checks="graph,lint").code == 1
    # three pages of two: ours is the second page's second
    assert github.methods() == ["GET", "GET", "GET", "PATCH"]
    assert "page=2" in github.requests[1][1] and "page=3" in github.requests[2][1]
    assert [c["id"] for c in github.ours()] == [ours]
    assert "unnamed-drop-constraint" in github.comments[ours]["body"]


# -- the body ------------------------------------------------------------------------------------


def _report(findings: int, severity: Severity = Severity.ERROR) -> Report:
    found = tuple(
        Finding(
            check="lint",
            rule=f"rule-{n % 40}",
            severity=severity,
            message=f"finding {n}: " + "x" * 200,
            revision=f"{n:012x}",
            file=f"migrations/versions/{n:04d}_step.py",
            line=n + 1,
            detail="detail line\n" * 20,
        )
        for n in range(findings)
    )
    status = Status.FAILED if severity is not Severity.NOTICE and found else Status.PASSED
    return Report(
        tool_version="0",
        project=ProjectInfo("alembic.ini", "migrations", findings, ("head",), ("base",)),
        database=None,
        checks=(Result("lint", status, 0.1, found),),
        duration_s=1.0,
    )


def test_a_long_summary_is_cut_to_a_comment_s_limit() -> None:
    body = pr_comment.render(_report(3000), "w/j/db", "app", None, "https://example/run")
    assert len(body) <= pr_comment.COMMENT_LIMIT
    assert body.startswith(f"{MARKER} w/j/db -->\n")
    assert "65,536" in body and "truncated" in body
    assert body.rstrip().endswith("has the annotations and the full summary.")


def test_clean_means_verified_and_nothing_at_warning_or_above() -> None:
    assert pr_comment.is_clean(_report(0))
    assert pr_comment.is_clean(_report(3, Severity.NOTICE))
    assert not pr_comment.is_clean(_report(1, Severity.WARNING))
    assert not pr_comment.is_clean(_report(1))
    unverified = _report(0)
    assert not pr_comment.is_clean(
        Report(**{**unverified.__dict__, "not_verified": "not verified: no PostgreSQL"})
    )


def test_the_marker_cannot_end_the_html_comment_early() -> None:
    assert pr_comment.marker("a --> b") == f"{MARKER} a-b -->"
    assert pr_comment.marker("") == f"{MARKER} -->"
