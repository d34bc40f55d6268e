"""GitHub's write budget, shared by every worker: content-creating requests per minute and per hour.

GitHub asks integrations to stay under 80 content-creating requests a minute and 500 an
hour; going over earns the secondary rate limit and, repeated, a ban. The counts live in
the database, one row per window, so more workers never mean more writes.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.utils import timezone

from integrations.github.client import GitHubError
from integrations.github.conf import github_config
from integrations.models import GitHubWriteBudget

TABLE = GitHubWriteBudget._meta.db_table


class BudgetSpent(GitHubError):
    """No write may go out before the window ends; not a failure of the sync (no attempt is used)."""


def reserve_write() -> None:
    """Count one write in the current minute and hour, or raise ``BudgetSpent`` saying when to try again."""
    config = github_config()
    now = timezone.now()
    minute = now.replace(second=0, microsecond=0)
    hour = minute.replace(minute=0)
    for slot, start, length, limit in (
        (f"m:{minute:%Y-%m-%dT%H:%M}", minute, timedelta(minutes=1), config.writes_per_minute),
        (f"h:{hour:%Y-%m-%dT%H}", hour, timedelta(hours=1), config.writes_per_hour),
    ):
        if not _take(slot, expires_at=start + length, limit=limit):
            raise BudgetSpent(
                f"GitHub write budget spent ({limit} per {'minute' if length.seconds == 60 else 'hour'})",
                reason="write_budget",
                retryable=True,
                retry_after_s=max(1.0, (start + length - now).total_seconds()),
            )


def _take(slot: str, *, expires_at, limit: int) -> bool:
    # One statement, atomic on both databases: insert the window at 1, or add 1 while under the limit.
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (slot, count, expires_at) VALUES (%s, 1, %s) "
            f"ON CONFLICT (slot) DO UPDATE SET count = {TABLE}.count + 1 WHERE {TABLE}.count < %s "
            "RETURNING count",
            [slot, connection.ops.adapt_datetimefield_value(expires_at), limit],
        )
        return cursor.fetchone() is not None


def prune(now=None) -> int:
    """Drop windows that ended more than an hour ago."""
    now = now or timezone.now()
    return GitHubWriteBudget.objects.filter(expires_at__lt=now - timedelta(hours=1)).delete()[0]
