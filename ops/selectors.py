"""Figures read from the database: the Entra migration, the task backlog, table sizes. Reads only, each cheap.

What /metrics reads is answered from indexes (PostgreSQL's index-only scans): the partial
``users_pending_entra_idx`` for users still flagged, ``azure_entra_id``'s unique index for
linked ones, ``django_tasks_db``'s partial index of ready tasks. ``migration_status`` (the
command, the admin's page) also counts every user once (total, inactive): a scan, under
300 ms at a million users.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta

from django.db import connection
from django.db.models import Count, Min, Q
from django.db.models.functions import TruncDate
from django.utils import timezone
from django_tasks_db.models import DBTaskResult, get_date_max

from accounts.models import RefusedEntraLink, User


@dataclass(frozen=True)
class MigrationGauges:
    """What /metrics exports as ``entra_migration_users{state}``."""

    linked: int
    flagged: int
    conflicts: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def migration_gauges() -> MigrationGauges:
    """One statement of three scalar subqueries, each an index-only count."""
    users, refused = User._meta.db_table, RefusedEntraLink._meta.db_table
    true = "true" if connection.vendor == "postgresql" else "1"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT count(*) FROM {users} WHERE azure_entra_id IS NOT NULL), "
            f"(SELECT count(*) FROM {users} WHERE requires_entra_migration = {true}), "
            f"(SELECT count(*) FROM {refused} WHERE resolved <> {true})"
        )
        linked, flagged, conflicts = cursor.fetchone()
    return MigrationGauges(linked=linked, flagged=flagged, conflicts=conflicts)


@dataclass(frozen=True)
class MigrationStatus:
    """The migration's figures for ``migration_status`` and the admin's page."""

    total: int
    linked: int
    flagged: int
    inactive: int
    conflicts: int
    refused_by_reason: dict[str, int]
    linked_per_day: list[tuple[date, int]] = field(default_factory=list)

    @property
    def to_go(self) -> int:
        return self.flagged

    def as_dict(self) -> dict:
        data = asdict(self)
        data["linked_per_day"] = [[day.isoformat(), count] for day, count in self.linked_per_day]
        return data


def migration_status(*, days: int = 60) -> MigrationStatus:
    """Users in each state, refused links still to resolve by reason, and links per day over ``days``."""
    counts = User.objects.aggregate(
        total=Count("pk"),
        inactive=Count("pk", filter=Q(is_active=False)),
    )
    gauges = migration_gauges()
    refused = dict(
        RefusedEntraLink.objects.filter(resolved=False)
        .values_list("reason")
        .annotate(n=Count("pk"))
        .values_list("reason", "n")
    )
    since = timezone.now() - timedelta(days=days)
    per_day = list(
        User.objects.filter(entra_linked_at__gte=since)
        .annotate(day=TruncDate("entra_linked_at"))
        .values_list("day")
        .annotate(n=Count("pk"))
        .values_list("day", "n")
        .order_by("day")
    )
    return MigrationStatus(
        total=counts["total"],
        linked=gauges.linked,
        flagged=gauges.flagged,
        inactive=counts["inactive"],
        conflicts=gauges.conflicts,
        refused_by_reason={reason: refused.get(reason, 0) for reason in RefusedEntraLink.Reason.values},
        linked_per_day=per_day,
    )


@dataclass(frozen=True)
class Backlog:
    ready: int
    oldest_age_s: float


def task_backlog(*, now: datetime | None = None) -> Backlog:
    """Tasks ready to run and how long the oldest has been ready (since enqueued, or since its run_after)."""
    now = now or timezone.now()
    never = get_date_max()
    ready = DBTaskResult.objects.ready()
    figures = ready.aggregate(
        n=Count("pk"),
        oldest_enqueued=Min("enqueued_at", filter=Q(run_after=never)),
        oldest_run_after=Min("run_after", filter=~Q(run_after=never)),
    )
    oldest = [at for at in (figures["oldest_enqueued"], figures["oldest_run_after"]) if at is not None]
    age = max(0.0, (now - min(oldest)).total_seconds()) if oldest else 0.0
    return Backlog(ready=figures["n"], oldest_age_s=age)


def table_sizes() -> list[tuple[str, int, int]]:
    """(table, bytes of its data, bytes of its indexes) of every table of the project's models (PostgreSQL)."""
    if connection.vendor != "postgresql":
        return []
    tables = sorted(connection.introspection.django_table_names(include_views=False))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_table_size(c.oid), pg_indexes_size(c.oid) FROM pg_class c "
            "WHERE c.relkind IN ('r', 'p') AND c.relnamespace = current_schema()::regnamespace AND c.relname = ANY(%s) "
            "ORDER BY c.relname",
            [tables],
        )
        return [(name, int(data), int(indexes)) for name, data, indexes in cursor.fetchall()]
