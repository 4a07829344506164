"""The pull-request comment (the action's `github-token` input): the job summary under a
hidden marker, by which the next push finds the comment again and updates it in place, cut
to what GitHub accepts as a comment."""

from __future__ import annotations

import re

from alembic_preflight.findings import Report, Severity
from alembic_preflight.reporters import github

# GitHub refuses a longer comment body: "body is too long (maximum is 65536 characters)"
# https://docs.github.com/rest/issues/comments#create-an-issue-comment (422)
COMMENT_LIMIT = 65536
TRUNCATED = (
    "> **Comment truncated** to GitHub's 65,536 characters: the job summary and the JSON "
    "report have every finding."
)
MARKER_PREFIX = "<!-- alembic-preflight:comment"


def marker(key: str = "") -> str:
    """The hidden first line of our comment. `key` tells apart the comments of several jobs
    or projects on one pull request; it cannot end the HTML comment early (no `--`, `>`)."""
    safe = re.sub(r"[^\w./:@+=]+", "-", key).strip("-")
    safe = re.sub(r"-{2,}", "-", safe)
    return f"{MARKER_PREFIX} {safe} -->" if safe else f"{MARKER_PREFIX} -->"


def is_clean(report: Report) -> bool:
    """Nothing to say on the pull request: everything verified, no check failed, and no
    finding at warning or above (notices and baseline-accepted findings are quiet)."""
    if report.not_verified or not report.passed:
        return False
    return not any(f.severity.rank <= Severity.WARNING.rank for f in report.findings)


def render(
    report: Report,
    key: str = "",
    project_name: str = "",
    blob_url: str | None = None,
    run_url: str | None = None,
) -> str:
    """The comment's body: the marker, the job summary (the same text, bounded by a
    comment's limit instead of the summary's), and a link to the run."""
    head = marker(key) + "\n"
    foot = f"\n[The workflow run]({run_url}) has the annotations and the full summary.\n"
    foot = foot if run_url else ""
    # the summary's bound is in bytes, at least as many as characters; its top (headline,
    # table, counts) is not bounded, which the cut below catches
    room = COMMENT_LIMIT - len(head) - len(foot) - len(TRUNCATED) - 4
    text = github.summary(report, project_name, None, blob_url, room, "65,536-character comment")
    if len(text) > room:
        cut = text.rfind("\n", 0, room)
        text = text[: cut if cut > 0 else room] + "\n\n" + TRUNCATED + "\n"
    return head + text + foot
