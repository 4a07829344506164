"""Our comment on a pull request, through GitHub's REST API with the standard library's
urllib (no dependency): the action's `github-token` input.

Every failure is a GitHubError with a one-line reason; the caller warns, and the run's
verdict and exit code never depend on it. The token goes in the Authorization header only:
never in a URL, a message or the log.
https://docs.github.com/rest/issues/comments
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic_preflight import __version__

DEFAULT_API_URL = "https://api.github.com"
TIMEOUT = 20.0  # seconds per request
MAX_PAGES = 100  # 10,000 comments: past that, a pull request's history is not ours to walk


class GitHubError(Exception):
    """A request that failed: the reason, without the token."""


@dataclass(frozen=True)
class PullRequest:
    api_url: str  # $GITHUB_API_URL: api.github.com, or a GitHub Enterprise Server's
    repository: str  # owner/name
    number: int

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PullRequest | None:
        """The pull request the workflow runs for, from the event's payload
        ($GITHUB_EVENT_PATH: `pull_request.number` for pull_request and
        pull_request_target events); None for any other event (a push, a schedule)."""
        path, repository = env.get("GITHUB_EVENT_PATH"), env.get("GITHUB_REPOSITORY")
        if not path or not repository or "/" not in repository:
            return None
        try:
            event = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        pull = event.get("pull_request") if isinstance(event, dict) else None
        number = pull.get("number") if isinstance(pull, dict) else None
        if not isinstance(number, int) or isinstance(number, bool) or number < 1:
            return None
        api_url = (env.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/")
        return cls(api_url, repository, number)

    @property
    def comments_url(self) -> str:
        return f"{self.api_url}/repos/{self.repository}/issues/{self.number}/comments"

    def comment_url(self, comment_id: int) -> str:
        return f"{self.api_url}/repos/{self.repository}/issues/comments/{comment_id}"


class Client:
    def __init__(self, token: str, api_url: str) -> None:
        self._token = token
        self._api_url = api_url

    def request(self, method: str, url: str, body: Any = None) -> tuple[Any, str]:
        """The response's JSON (None when empty) and its Link header."""
        if not url.startswith(self._api_url + "/"):
            # a `next` link elsewhere would take the token with it
            raise GitHubError(f"{method} {url}: not under {self._api_url}")
        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self._token}")
        req.add_header("Accept", "application/vnd.github+json")
        req.add_header("X-GitHub-Api-Version", "2022-11-28")
        req.add_header("User-Agent", f"alembic-preflight/{__version__}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        where = f"{method} {url.removeprefix(self._api_url)}"
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
                raw = resp.read()
                link = resp.headers.get("Link", "")
        except urllib.error.HTTPError as e:
            raise GitHubError(f"{where}: HTTP {e.code} {e.reason}{_message(e)}") from None
        except (urllib.error.URLError, OSError, ValueError) as e:
            reason = getattr(e, "reason", None) or e
            raise GitHubError(f"{where}: {reason}") from None
        try:
            return (json.loads(raw) if raw.strip() else None), link
        except ValueError:
            raise GitHubError(f"{where}: the answer is not JSON") from None


def sync_comment(pr: PullRequest, token: str, marker: str, body: str | None) -> str:
    """Our comment (the one carrying `marker`) holds `body`: updated in place, or created;
    with None, deleted (every copy). What was done: created, updated, deleted, or none."""
    client = Client(token, pr.api_url)
    ours = [c for c in _comments(client, pr) if marker in str(c.get("body") or "")]
    if body is None:
        for comment in ours:
            client.request("DELETE", pr.comment_url(int(comment["id"])))
        return "deleted" if ours else "none"
    if ours:
        client.request("PATCH", pr.comment_url(int(ours[0]["id"])), {"body": body})
        return "updated"
    client.request("POST", pr.comments_url, {"body": body})
    return "created"


def _comments(client: Client, pr: PullRequest) -> list[dict[str, Any]]:
    """Every comment of the pull request's conversation, page by page (the Link header's
    `next`)."""
    found: list[dict[str, Any]] = []
    url: str | None = f"{pr.comments_url}?per_page=100"
    for _ in range(MAX_PAGES):
        if url is None:
            break
        page, link = client.request("GET", url)
        if not isinstance(page, list):
            raise GitHubError(f"GET {url.removeprefix(pr.api_url)}: not a list of comments")
        found += [c for c in page if isinstance(c, dict) and "id" in c]
        url = _next_link(link)
    return found


def _next_link(header: str) -> str | None:
    """`<https://...?page=2>; rel="next", <...>; rel="last"` -> the next page's URL."""
    for part in header.split(","):
        target, _, params = part.partition(";")
        if 'rel="next"' in params.replace(" ", ""):
            return target.strip().removeprefix("<").removesuffix(">")
    return None


def _message(e: urllib.error.HTTPError) -> str:
    """GitHub's own explanation from the error's body ("Resource not accessible by
    integration"), when there is one."""
    try:
        data = json.loads(e.read() or b"null")
    except (OSError, ValueError):
        return ""
    message = data.get("message") if isinstance(data, dict) else None
    return f" ({message})" if isinstance(message, str) and message else ""
