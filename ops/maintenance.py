"""Maintenance jobs of ``run_maintenance``: each counts what it would do, or does it in batches.

A job is ``run(execute=False)`` → how many rows it would touch, ``run(execute=True)`` →
how many it touched, in batches by primary key, each batch its own short transaction
(so no lock is held longer than one batch). Dry runs change nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone
from django_tasks_db.models import DBTaskResult, TaskResultStatus

from accounts.models import User
from core.db.batches import pk_batches
from integrations.models import GitHubSyncRecord

BATCH = 5000
# run_maintenance ANALYZEs a table once this share of its rows changed since its last analyze
# (autovacuum's own default is 10 % + 50 rows; we catch what it has not reached yet).
ANALYZE_CHANGED_SHARE = 0.05
ANALYZE_MIN_CHANGED = 1000


@dataclass
class JobResult:
    name: str
    count: int = 0
    detail: str = ""
    error: str = ""
    items: list[str] = field(default_factory=list)


def _in_batches(queryset: QuerySet, apply: Callable[[QuerySet], int], *, batch: int) -> int:
    """``apply`` to the rows of ``queryset`` a batch of primary keys at a time, each in its own transaction."""
    model = queryset.model
    done = 0
    for pks in pk_batches(queryset, batch):
        with transaction.atomic():
            done += apply(model.objects.filter(pk__in=pks))
    return done


def _delete(qs: QuerySet) -> int:
    return qs.delete()[0]


def settle_websocket_sessions(*, execute: bool, batch: int = BATCH) -> JobResult:
    """Open sessions whose heartbeat stopped, settled (reason 'stale'); closed ones past retention, deleted."""
    from realtime import sessions
    from realtime.conf import realtime_config

    config = realtime_config()
    stale_after = max(300.0, 5 * config.heartbeat_write_s)
    counts = sessions.cleanup(
        stale_after_s=stale_after,
        retention_days=settings.WEBSOCKET_SESSION_RETENTION_DAYS,
        execute=execute,
        batch=batch,
    )
    return JobResult(
        "websocket_sessions",
        counts.stale + counts.deleted,
        f"{counts.stale} stale settled, {counts.deleted} closed past {settings.WEBSOCKET_SESSION_RETENTION_DAYS} "
        f"days deleted",
    )


def expired_token_hashes(now=None) -> QuerySet:
    now = now or timezone.now()
    return User.objects.filter(azure_token_expires_at__lt=now, azure_access_token_hash__isnull=False)


def clear_expired_token_hashes(*, execute: bool, batch: int = BATCH) -> JobResult:
    """The keyed hash of an access token that has expired identifies nothing any more: cleared.

    (The refresh token's hash stays: the refresh token outlives the access token.)"""
    qs = expired_token_hashes()
    count = (
        _in_batches(qs, lambda rows: rows.update(azure_access_token_hash=None), batch=batch) if execute else qs.count()
    )
    return JobResult("expired_token_hashes", count, f"{count} expired access-token hash(es) cleared")


def old_task_results(now=None) -> QuerySet:
    cutoff = (now or timezone.now()) - timedelta(days=settings.TASK_RESULT_RETENTION_DAYS)
    return DBTaskResult.objects.filter(
        status__in=[TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED], finished_at__lt=cutoff
    )


def prune_task_results(*, execute: bool, batch: int = BATCH) -> JobResult:
    qs = old_task_results()
    count = _in_batches(qs, _delete, batch=batch) if execute else qs.count()
    return JobResult(
        "task_results", count, f"{count} finished task result(s) older than {settings.TASK_RESULT_RETENTION_DAYS} days"
    )


def old_sync_records(now=None) -> QuerySet:
    """Finished records past retention, except each project's latest (its page shows the last sync)."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.SYNC_RECORD_RETENTION_DAYS)
    newer = GitHubSyncRecord.objects.filter(project=OuterRef("project"), pk__gt=OuterRef("pk"))
    return GitHubSyncRecord.objects.filter(status__in=GitHubSyncRecord.FINAL, finished_at__lt=cutoff).filter(
        Exists(newer)
    )


def prune_sync_records(*, execute: bool, batch: int = BATCH) -> JobResult:
    qs = old_sync_records()
    count = _in_batches(qs, _delete, batch=batch) if execute else qs.count()
    return JobResult(
        "sync_records", count, f"{count} finished sync record(s) older than {settings.SYNC_RECORD_RETENTION_DAYS} days"
    )


def stale_statistics() -> list[str]:
    """The project's tables whose rows changed since their last ANALYZE over the threshold (PostgreSQL)."""
    if connection.vendor != "postgresql":
        return []
    tables = sorted(connection.introspection.django_table_names(include_views=False))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_stat_user_tables WHERE schemaname = current_schema() AND relname = ANY(%s) "
            "AND n_mod_since_analyze > greatest(%s, %s * n_live_tup) ORDER BY relname",
            [tables, ANALYZE_MIN_CHANGED, ANALYZE_CHANGED_SHARE],
        )
        return [name for (name,) in cursor.fetchall()]


def analyze_stale_tables(*, execute: bool, batch: int = BATCH) -> JobResult:
    tables = stale_statistics()
    if execute:
        with connection.cursor() as cursor:
            for table in tables:
                cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")
    return JobResult("analyze", len(tables), f"{len(tables)} table(s) with stale statistics analyzed", items=tables)


JOBS: dict[str, Callable[..., JobResult]] = {
    "websocket_sessions": settle_websocket_sessions,
    "expired_token_hashes": clear_expired_token_hashes,
    "task_results": prune_task_results,
    "sync_records": prune_sync_records,
    "analyze": analyze_stale_tables,
}


def run_jobs(*, execute: bool, only: list[str] | None = None, batch: int = BATCH) -> list[JobResult]:
    """Every job (or those named), each whatever happened to the others; a failure is in the job's ``error``."""
    results = []
    for name, job in JOBS.items():
        if only and name not in only:
            continue
        try:
            results.append(job(execute=execute, batch=batch))
        except Exception as exc:
            results.append(JobResult(name, error=f"{type(exc).__name__}: {exc}"))
    return results
