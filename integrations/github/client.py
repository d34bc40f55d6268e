"""The GitHub REST client: every request to GitHub goes through ``GitHubClient.request``.

On ``core.http`` (the CA bundle ``GITHUB_CA_BUNDLE`` wins over the machine-wide
``REQUESTS_CA_BUNDLE``), with an explicit connect and read timeout and
``X-GitHub-Api-Version`` on every request. Nothing is retried here: a failed
request raises ``GitHubError`` saying whether it may be retried and when, and the
sync task re-enqueues itself (a POST answered 502 is never re-sent blindly).
"""

from __future__ import annotations

import base64
import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests

from core import http, metrics
from integrations.github.conf import API_VERSION, GitHubConfig, github_config

WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})


class GitHubError(Exception):
    """A request that did not succeed. ``retryable`` and ``retry_after_s`` say what the sync does next."""

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        retryable: bool,
        status: int | None = None,
        request_id: str = "",
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason  # network, timeout, server_error, rate_limited, secondary_rate_limit, … (a metric label)
        self.retryable = retryable
        self.status = status
        self.request_id = request_id
        self.retry_after_s = retry_after_s


class NotFastForward(GitHubError):
    """The branch moved since it was read (422 on a ref update with force=false)."""


class EmptyRepository(GitHubError):
    """GitHub answers 409 on every Git Data endpoint of a repository without commits."""


@dataclass
class RateLimit:
    remaining: int | None = None
    reset_at: datetime | None = None


@dataclass
class CallStats:
    calls: int = 0
    writes: int = 0
    rate_limit: RateLimit = field(default_factory=RateLimit)


def _header_float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def retry_after_s(response: requests.Response, *, now: float | None = None) -> float | None:
    """GitHub's own word on when to try again: ``Retry-After`` (seconds or a date), else the limit's reset."""
    now = time.time() if now is None else now
    value = response.headers.get("Retry-After")
    if value is not None:
        seconds = _header_float(value)
        if seconds is None:
            try:
                seconds = email.utils.parsedate_to_datetime(value).timestamp() - now
            except (TypeError, ValueError):
                seconds = None
        if seconds is not None:
            return max(0.0, seconds)
    reset = _header_float(response.headers.get("x-ratelimit-reset"))
    if reset is not None and response.headers.get("x-ratelimit-remaining") == "0":
        return max(0.0, reset - now + 1)
    return None


def classify(response: requests.Response) -> GitHubError:
    """What a non-2xx answer means for the sync, with a message that says what to fix."""
    status = response.status_code
    request_id = response.headers.get("x-github-request-id", "")
    try:
        body = response.json()
    except ValueError:
        body = {}
    message = str(body.get("message", "")) if isinstance(body, dict) else ""
    lowered = message.lower()
    kwargs: dict[str, Any] = {"status": status, "request_id": request_id}
    if status in (403, 429) and "secondary rate limit" in lowered:
        return GitHubError(
            f"GitHub's secondary rate limit: {message}", reason="secondary_rate_limit", retryable=True,
            retry_after_s=retry_after_s(response), **kwargs,
        )  # fmt: skip
    if status in (403, 429) and (response.headers.get("x-ratelimit-remaining") == "0" or status == 429):
        return GitHubError(
            f"GitHub's rate limit is used up ({message or status})", reason="rate_limited", retryable=True,
            retry_after_s=retry_after_s(response), **kwargs,
        )  # fmt: skip
    if status >= 500:
        return GitHubError(f"GitHub answered {status}: {message or 'server error'}", reason="server_error",
                           retryable=True, retry_after_s=retry_after_s(response), **kwargs)  # fmt: skip
    if status == 401:
        return GitHubError(
            "GitHub refused the App's credentials (401): check GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY_FILE",
            reason="unauthorized", retryable=False, **kwargs,
        )  # fmt: skip
    if status == 403:
        if "archived" in lowered:
            fix = "the repository is archived: unarchive it or map the project to another repository"
        else:
            fix = "the App lacks permission: grant it 'Contents: read and write' on this repository"
        return GitHubError(f"GitHub refused (403: {message}); {fix}", reason="forbidden", retryable=False, **kwargs)
    if status == 404:
        return GitHubError(
            "Repository not found, or the GitHub App is not installed on it: install the App on the repository "
            "or fix the mapping",
            reason="not_found", retryable=False, **kwargs,
        )  # fmt: skip
    if status == 409 and "empty" in lowered:
        return EmptyRepository("the repository is empty", reason="empty_repository", retryable=False, **kwargs)
    if status == 422 and ("fast forward" in lowered or "fast-forward" in lowered):
        return NotFastForward("the branch moved", reason="not_fast_forward", retryable=True, **kwargs)
    if status == 422:
        return GitHubError(f"GitHub refused the request as invalid (422: {message})", reason="validation",
                           retryable=False, **kwargs)  # fmt: skip
    return GitHubError(f"GitHub answered {status}: {message}", reason=f"http_{status}", retryable=False, **kwargs)


class GitHubClient:
    """Requests against one GitHub API (``GITHUB_API_URL``), counted, with rate-limit figures kept."""

    def __init__(
        self,
        *,
        config: GitHubConfig | None = None,
        before_write: Callable[[], None] | None = None,
    ) -> None:
        self.config = config or github_config()
        self.session = http.session(ca_bundle=self.config.ca_bundle, timeout=self.config.timeout)
        self.before_write = before_write  # the shared write budget: raises when it is spent
        self.stats = CallStats()

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str,
        json: Any = None,
        scheme: str = "token",
        accept: str = "application/vnd.github+json",
        expect: tuple[int, ...] = (200, 201),
        basic: tuple[str, str] | None = None,
        data: dict | None = None,
    ) -> Any:
        """The decoded JSON of a successful answer; raises ``GitHubError`` otherwise."""
        # Content-creating requests count against the shared write budget (tokens and revocations do not).
        content_write = method in WRITE_METHODS and path.startswith("/repos/")
        if content_write and self.before_write is not None:
            self.before_write()
        headers = {
            "Accept": accept,
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "entra-accounts-github-sync",
        }
        if token:
            headers["Authorization"] = f"{scheme} {token}"
        elif basic:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
        url = path if path.startswith(("http://", "https://")) else f"{self.config.api_url}{path}"
        self.stats.calls += 1
        if content_write:
            self.stats.writes += 1
        try:
            response = self.session.request(method, url, json=json, data=data, headers=headers)
        except requests.Timeout as exc:
            metrics.github_api_requests.labels("error").inc()
            raise GitHubError(f"GitHub did not answer in time ({method} {path})", reason="timeout",
                              retryable=True) from exc  # fmt: skip
        except requests.RequestException as exc:
            metrics.github_api_requests.labels("error").inc()
            raise GitHubError(f"GitHub could not be reached ({type(exc).__name__})", reason="network",
                              retryable=True) from exc  # fmt: skip
        metrics.github_api_requests.labels(metrics.github_status_label(response.status_code)).inc()
        self._note_rate_limit(response)
        if response.status_code not in expect:
            raise classify(response)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise GitHubError("GitHub answered with something that is not JSON", reason="bad_response",
                              retryable=True, status=response.status_code) from exc  # fmt: skip

    def _note_rate_limit(self, response: requests.Response) -> None:
        remaining = response.headers.get("x-ratelimit-remaining")
        reset = _header_float(response.headers.get("x-ratelimit-reset"))
        if remaining is not None and remaining.isdigit():
            self.stats.rate_limit.remaining = int(remaining)
            metrics.github_rate_limit_remaining.set(int(remaining))
        if reset is not None:
            self.stats.rate_limit.reset_at = datetime.fromtimestamp(reset, tz=UTC)
