"""GitHub's write budget, shared by every worker: content-creating requests in any minute and any hour.

GitHub asks integrations to stay under 80 content-creating requests a minute and 500 an
hour; going over earns the secondary rate limit and, repeated, a ban. Every write sent is
a row (kept an hour), and a write goes out only while the last 60 s and the last hour hold
fewer than the limits: a sliding window, so no 60 s span ever sees more than the limit
(fixed calendar minutes would allow twice that across a minute's edge). Reservations are
serialized by an advisory lock (PostgreSQL) or SQLite's write lock, so more workers never
mean more writes.
"""

from __future__ import annotations

import random
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from core.db.locks import advisory_xact_lock
from integrations.github.client import GitHubError
from integrations.github.conf import github_config
from integrations.models import GitHubWrite

MINUTE, HOUR = timedelta(minutes=1), timedelta(hours=1)


class BudgetSpent(GitHubError):
    """No write may go out yet; not a failure of the sync (no attempt is used)."""


def reserve_writes(count: int = 1) -> None:
    """Count ``count`` writes now, all or none, or raise ``BudgetSpent`` saying when the windows have room."""
    config = github_config()
    with transaction.atomic():
        advisory_xact_lock(connection, "github-write-budget")
        now = timezone.now()
        for span, limit, name in ((MINUTE, config.writes_per_minute, "minute"), (HOUR, config.writes_per_hour, "hour")):
            if count > limit:
                raise GitHubError(
                    f"a sync needing {count} writes can never fit GitHub's write budget ({limit} per {name})",
                    reason="validation",
                    retryable=False,
                )
            recent = list(
                GitHubWrite.objects.filter(at__gt=now - span).order_by("-at").values_list("at", flat=True)[:limit]
            )
            if len(recent) + count > limit:
                # Room again when enough of the window's oldest writes have left it; a little jitter
                # keeps the syncs that wait from all asking again at the same instant.
                leaving = recent[limit - count]
                wait = (leaving + span - now).total_seconds() + random.uniform(0, 2)  # noqa: S311
                raise BudgetSpent(
                    f"GitHub write budget spent ({limit} per {name})",
                    reason="write_budget",
                    retryable=True,
                    retry_after_s=max(0.5, wait),
                )
        GitHubWrite.objects.bulk_create(GitHubWrite(at=now) for _ in range(count))
        GitHubWrite.objects.filter(at__lt=now - HOUR).delete()


class WriteCredits:
    """Writes a sync reserved ahead (all it will need, at once), spent before any more are asked for.

    Reserving ahead means a sync never starts writing what it cannot finish: with many syncs
    waiting on the budget, half-done syncs would otherwise spend it on trees they then redo.
    """

    def __init__(self) -> None:
        self.left = 0

    def reserve(self, count: int) -> None:
        reserve_writes(count)
        self.left += count

    def before_write(self) -> None:
        if self.left:
            self.left -= 1
        else:
            reserve_writes(1)
