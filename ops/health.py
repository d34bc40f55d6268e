"""Readiness checks, each in a thread of its own with a deadline, so a hung dependency cannot hang the probe.

A check returns None when it passes and raises (or returns a message) when it does not.
The ones that run: the database answers, every migration is applied, the channel layer's
Redis answers (when ``REDIS_URL`` is set), the oldest ready task is younger than
``HEALTH_MAX_TASK_AGE_S`` (with the database task backend).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.db import connections
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

from ops import selectors


@dataclass(frozen=True)
class Result:
    name: str
    ok: bool
    seconds: float
    error: str = ""

    def as_dict(self) -> dict:
        data = {"ok": self.ok, "seconds": round(self.seconds, 4)}
        if self.error:
            data["error"] = self.error
        return data


@cache
def _leaf_migrations() -> frozenset[tuple[str, str]]:
    # The migration files do not change while the process runs: read them once.
    return frozenset(MigrationLoader(None, ignore_no_migrations=True).graph.leaf_nodes())


def check_database() -> str | None:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
    return None


def check_migrations() -> str | None:
    applied = MigrationRecorder(connections["default"]).applied_migrations()
    missing = sorted(f"{app}.{name}" for app, name in _leaf_migrations() if (app, name) not in applied)
    return f"not applied: {', '.join(missing)}" if missing else None


def check_redis() -> str | None:
    import redis

    timeout = settings.HEALTH_CHECK_TIMEOUT_S
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        client.ping()
    finally:
        client.close()
    return None


def check_task_backlog() -> str | None:
    backlog = selectors.task_backlog()
    limit = settings.HEALTH_MAX_TASK_AGE_S
    if backlog.oldest_age_s > limit:
        return f"oldest ready task waited {backlog.oldest_age_s:.0f} s (limit {limit} s); {backlog.ready} ready"
    return None


def readiness_checks() -> dict[str, Callable[[], str | None]]:
    checks: dict[str, Callable[[], str | None]] = {"database": check_database, "migrations": check_migrations}
    if settings.REDIS_URL:
        checks["channel_layer"] = check_redis
    if settings.TASKS["default"]["BACKEND"] == "django_tasks_db.DatabaseBackend":
        checks["task_backlog"] = check_task_backlog
    return checks


def _run(name: str, check: Callable[[], str | None], timeout: float) -> Result:
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["error"] = check()
        except Exception as exc:
            box["error"] = f"{type(exc).__name__}: {exc}".strip()[:300]
        finally:
            connections.close_all()  # this thread's connections

    started = time.perf_counter()
    thread = threading.Thread(target=target, name=f"health-{name}", daemon=True)
    thread.start()
    thread.join(timeout)
    seconds = time.perf_counter() - started
    if thread.is_alive():
        return Result(name, False, seconds, f"no answer within {timeout:g} s")
    error = box.get("error")
    return Result(name, not error, seconds, str(error or ""))


def run_checks(checks: dict[str, Callable[[], str | None]] | None = None) -> list[Result]:
    """All checks at once (each in its thread), so the probe takes as long as the slowest, at most the timeout."""
    checks = readiness_checks() if checks is None else checks
    timeout = settings.HEALTH_CHECK_TIMEOUT_S
    results: list[Result | None] = [None] * len(checks)

    def one(i: int, name: str, check: Callable[[], str | None]) -> None:
        results[i] = _run(name, check, timeout)

    runners = [threading.Thread(target=one, args=(i, n, c), daemon=True) for i, (n, c) in enumerate(checks.items())]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join(timeout + 1)
    return [
        r if r is not None else Result(n, False, timeout, "no answer") for r, n in zip(results, checks, strict=True)
    ]
