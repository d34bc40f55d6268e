"""Writes to ``websocket_sessions``: set-based, a handful of statements whatever the number of connections.

The consumers never call the ORM per message. A process's runtime (``realtime.runtime``)
collects what happened in memory and calls these from its database threads: the rows
of new connections in one INSERT, every heartbeat of an interval in one UPDATE, the
closes of a moment in one UPDATE per reason.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from core import metrics
from core.db.batches import pk_batches
from realtime.models import WebSocketSession

BATCH = 1000


@dataclass(frozen=True)
class Closure:
    connection_id: str
    reason: str
    code: int | None


def open_sessions(rows: list[dict]) -> None:
    """The rows of connections being accepted, in one INSERT."""
    WebSocketSession.objects.bulk_create([WebSocketSession(**row) for row in rows], batch_size=BATCH)


def _ids_condition(ids: list[str]) -> tuple[str, list]:
    """``connection_id`` among ``ids`` with a single parameter, so one statement serves any number."""
    if connection.vendor == "postgresql":
        return "connection_id = ANY(%s::uuid[])", [[uuid.UUID(i) for i in ids]]
    return "connection_id IN (SELECT value FROM json_each(%s))", [json.dumps([uuid.UUID(i).hex for i in ids])]


def _update(ids: list[str], assignments: str, values: list, condition: str, condition_values: Iterable = ()) -> int:
    """``UPDATE … SET assignments WHERE connection_id among ids AND condition``: one statement, its row count."""
    if not ids:
        return 0
    among, params = _ids_condition(ids)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {WebSocketSession._meta.db_table} SET {assignments} WHERE {among} AND {condition}",
            [*values, *params, *condition_values],
        )
        return cursor.rowcount


def write_heartbeats(connection_ids: Iterable[str], *, at: datetime | None = None) -> int:
    """``last_heartbeat_at`` of every connection that beat since the last write: one UPDATE."""
    return _update(list(connection_ids), "last_heartbeat_at = %s", [at or timezone.now()], "disconnected_at IS NULL")


def settle_sessions(closures: Iterable[Closure], *, at: datetime | None = None) -> int:
    """Mark connections closed, with their reason and close code: one UPDATE per (reason, code)."""
    groups: dict[tuple[str, int | None], list[str]] = defaultdict(list)
    for closure in closures:
        groups[(closure.reason, closure.code)].append(closure.connection_id)
    at = at or timezone.now()
    return sum(
        _update(
            ids,
            "disconnected_at = %s, disconnect_reason = %s, close_code = %s",
            [at, reason, code],
            "disconnected_at IS NULL",
        )
        for (reason, code), ids in groups.items()
    )


def reopen_sessions(connection_ids: Iterable[str], *, server_id: str) -> int:
    """Live connections a sweep took for lost (this process stalled for three beats): open again."""
    return _update(
        list(connection_ids),
        "disconnected_at = NULL, disconnect_reason = '', close_code = NULL, last_heartbeat_at = %s",
        [timezone.now()],
        "server_id = %s AND disconnect_reason = %s",
        [server_id, WebSocketSession.Reason.SERVER_LOST],
    )


def settle_server_sessions(server_ids: list[str], *, reason: str, at: datetime | None = None) -> int:
    """Every session still open on these server processes: closed with ``reason``."""
    if not server_ids:
        return 0
    return WebSocketSession.objects.filter(server_id__in=server_ids, disconnected_at__isnull=True).update(
        disconnected_at=at or timezone.now(), disconnect_reason=reason
    )


@dataclass(frozen=True)
class CleanupCounts:
    stale: int
    deleted: int


def cleanup(*, stale_after_s: float, retention_days: float, execute: bool, batch: int = BATCH) -> CleanupCounts:
    """Settle open sessions whose heartbeat is older than ``stale_after_s`` and delete those closed
    longer than ``retention_days`` ago, in batches by primary key, each in its own transaction.
    Without ``execute`` only counts.

    Batches by ``core.db.batches.pk_batches``: each starts after the last one's highest key.
    """
    now = timezone.now()
    stale = WebSocketSession.objects.filter(
        disconnected_at__isnull=True, last_heartbeat_at__lt=now - timedelta(seconds=stale_after_s)
    )
    old = WebSocketSession.objects.filter(disconnected_at__lt=now - timedelta(days=retention_days))
    if not execute:
        return CleanupCounts(stale=stale.count(), deleted=old.count())
    settled = deleted = 0
    for pks in pk_batches(stale, batch):
        with transaction.atomic():
            # Checked again as it is written: a heartbeat since the batch was read keeps the session open.
            settled += stale.filter(pk__in=pks).update(
                disconnected_at=now, disconnect_reason=WebSocketSession.Reason.STALE
            )
    if settled:
        metrics.websocket_disconnects.labels(WebSocketSession.Reason.STALE).inc(settled)
    for pks in pk_batches(old, batch):
        with transaction.atomic():
            deleted += WebSocketSession.objects.filter(pk__in=pks).delete()[0]
    return CleanupCounts(stale=settled, deleted=deleted)
