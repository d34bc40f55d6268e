"""Faults a test arranges, each for the next ``times`` requests that match its method and path.

``path`` is a glob on the path without its query (``*`` spans slashes:
``"/repos/*/git/trees"``); ``method`` and ``path`` left out match every request.
Faults are tried in the order they were arranged; a matched fault counts a hit
and stops matching once it has answered ``times`` requests (``Fault.remaining``).
"""

from __future__ import annotations

import fnmatch
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from devtools.local_github.request import ApiError
from devtools.local_server import DropConnection

SECONDARY_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to "
    "GitHub Support for help, please include the request ID {request_id}."
)
PRIMARY_MESSAGE = "API rate limit exceeded for installation."
REF_UPDATE = "/repos/*/git/refs/heads/*"


@dataclass
class Fault:
    kind: str  # error, drop, slow or concurrent_push
    times: int = 1
    method: str | None = None
    path: str | None = None
    error: ApiError | None = None  # what an "error" fault answers
    seconds: float = 0.0  # how long a "slow" fault waits
    files: dict[str, bytes | None] | None = None  # what a concurrent push changes (None: a new file)
    reset_in: int | None = None  # a primary-limit fault: when the limit resets
    hits: int = 0

    @property
    def remaining(self) -> int:
        return self.times - self.hits

    def matches(self, method: str, path: str) -> bool:
        return (
            self.remaining > 0
            and (self.method is None or self.method.upper() == method)
            and (self.path is None or fnmatch.fnmatchcase(path, self.path))
        )


class Faults:
    """The faults half of LocalGitHub (``server.LocalGitHub`` holds ``faults`` and ``_lock``)."""

    _lock: threading.RLock
    faults: list[Fault]

    def fail(
        self, status: int, message: str | None = None, *, headers: dict[str, str] | None = None, **match: Any
    ) -> Fault:
        """Answer ``status`` with ``{"message": message}`` (GitHub's usual message by default): 401, 404, 422, 502…"""
        return self._arrange(Fault("error", error=ApiError(status, message, headers=headers), **match))

    def throttle(self, retry_after: int = 1, **match: Any) -> Fault:
        """429 with ``Retry-After``."""
        return self.fail(429, "Too Many Requests", headers={"Retry-After": str(retry_after)}, **match)

    def secondary_rate_limit(self, retry_after: int = 60, **match: Any) -> Fault:
        """GitHub's secondary limit: 403 saying so, with ``Retry-After``."""
        return self.fail(403, SECONDARY_MESSAGE, headers={"Retry-After": str(retry_after)}, **match)

    def primary_rate_limit(self, reset_in: int = 60, **match: Any) -> Fault:
        """The primary limit used up: 403 with ``x-ratelimit-remaining: 0`` and the reset ``reset_in`` s ahead."""
        return self._arrange(Fault("error", error=ApiError(403, PRIMARY_MESSAGE), reset_in=reset_in, **match))

    def drop_connection(self, **match: Any) -> Fault:
        """Close the connection without answering, as a network failure looks to the client."""
        return self._arrange(Fault("drop", **match))

    def slow(self, seconds: float, **match: Any) -> Fault:
        """Wait ``seconds`` before answering (normally): longer than the client's read timeout, a timeout."""
        return self._arrange(Fault("slow", seconds=seconds, **match))

    def concurrent_push(self, files: dict[str, bytes | None] | None = None, **match: Any) -> Fault:
        """Just before the next ref update (PATCH of a branch), another developer's commit lands on that branch."""
        match.setdefault("method", "PATCH")
        match.setdefault("path", REF_UPDATE)
        return self._arrange(Fault("concurrent_push", files=files, **match))

    def _arrange(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def _take_fault(self, kinds: tuple[str, ...], method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.kind in kinds and fault.matches(method, path):
                    fault.hits += 1
                    return fault
        return None

    def _injected_error(self, method: str, path: str, *, now: float, request_id: str) -> ApiError | None:
        """Wait for a slow fault, drop for a drop fault; the error an error fault answers, if any."""
        slow = self._take_fault(("slow",), method, path)
        if slow is not None:
            time.sleep(slow.seconds)  # outside the lock: other requests go on meanwhile
        fault = self._take_fault(("error", "drop"), method, path)
        if fault is None:
            return None
        if fault.kind == "drop":
            raise DropConnection
        assert fault.error is not None
        error = ApiError(fault.error.status, fault.error.message.replace("{request_id}", request_id),
                         headers=dict(fault.error.headers))  # fmt: skip
        if fault.reset_in is not None:
            error.headers.update({"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(now) + fault.reset_in)})
        return error


@dataclass
class Budget:
    """A token's primary rate limit: ``limit`` requests per hour from its first."""

    limit: int
    used: int = 0
    reset_at: int = 0

    def charge(self, now: float) -> bool:
        """Count one request; False when the budget was spent already (the request is refused)."""
        if now >= self.reset_at:
            self.used, self.reset_at = 0, int(now) + 3600
        if self.used >= self.limit:
            return False
        self.used += 1
        return True

    def headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(max(0, self.limit - self.used)),
            "x-ratelimit-reset": str(self.reset_at),
            "x-ratelimit-used": str(self.used),
            "x-ratelimit-resource": "core",
        }


@dataclass
class RateLimits:
    default: int = 5000
    limits: dict[str, int] = field(default_factory=dict)  # credential -> limit
    budgets: dict[str, Budget] = field(default_factory=dict)

    def budget(self, credential: str) -> Budget:
        if credential not in self.budgets:
            self.budgets[credential] = Budget(self.limits.get(credential, self.default))
        return self.budgets[credential]

    def set(self, limit: int, credential: str | None = None) -> None:
        if credential is None:
            self.default = limit
            for key, budget in self.budgets.items():
                if key not in self.limits:
                    budget.limit = limit
        else:
            self.limits[credential] = limit
            if credential in self.budgets:
                self.budgets[credential].limit = limit
