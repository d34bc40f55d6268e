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


def reserve_write() -> None:
    """Count one write now, or raise ``BudgetSpent`` saying when the window has room again."""
    config = github_config()
    with transaction.atomic():
        advisory_xact_lock(connection, "github-write-budget")
        now = timezone.now()
        for span, limit, name in ((MINUTE, config.writes_per_minute, "minute"), (HOUR, config.writes_per_hour, "hour")):
            recent = GitHubWrite.objects.filter(at__gt=now - span).order_by("-at").values_list("at", flat=True)
            window = list(recent[:limit])
            if len(window) >= limit:
                # Room again when the oldest write of the full window leaves it.
                wait = (window[-1] + span - now).total_seconds()
                raise BudgetSpent(
                    f"GitHub write budget spent ({limit} per {name})",
                    reason="write_budget",
                    retryable=True,
                    retry_after_s=max(0.5, wait),
                )
        GitHubWrite.objects.create(at=now)
        GitHubWrite.objects.filter(at__lt=now - HOUR).delete()
