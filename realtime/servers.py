"""The registry of server processes: each registers under its ``server_id`` and beats while it lives.

A process silent for three beats (``REALTIME_SERVER_BEAT_S``) is dead: a ``kill -9``, a
lost machine. Every live process sweeps once a beat (and ``cleanup_realtime_sessions
--execute`` does the same): the dead are marked lost and their sessions settled as
"server lost". The statements are idempotent, so several processes sweeping at once agree.
"""

from __future__ import annotations

import os
import secrets
import socket
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from core import metrics
from realtime.models import RealtimeServer, WebSocketSession
from realtime.sessions import settle_server_sessions


def new_server_id() -> str:
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(4)}"


def register(server_id: str) -> RealtimeServer:
    return RealtimeServer.objects.create(server_id=server_id, hostname=socket.gethostname()[:255], pid=os.getpid())


def beat(server_id: str) -> bool:
    """Record that this process lives; False when a sweep has already taken it for lost."""
    return bool(
        RealtimeServer.objects.filter(server_id=server_id, stopped_at__isnull=True).update(last_beat_at=timezone.now())
    )


def revive(server_id: str) -> None:
    RealtimeServer.objects.filter(server_id=server_id).update(
        stopped_at=None, stop_reason="", last_beat_at=timezone.now()
    )


def stop(server_id: str, *, reason: str = "shutdown") -> None:
    """A process shutting down: it has settled its sessions itself; any it missed are settled here."""
    now = timezone.now()
    with transaction.atomic():
        RealtimeServer.objects.filter(server_id=server_id, stopped_at__isnull=True).update(
            stopped_at=now, stop_reason=reason
        )
        settle_server_sessions([server_id], reason=WebSocketSession.Reason.SHUTDOWN, at=now)


def sweep(*, dead_after_s: float) -> list[str]:
    """Mark lost every server silent for ``dead_after_s`` and settle its sessions; the server ids swept."""
    now = timezone.now()
    dead = list(
        RealtimeServer.objects.filter(
            stopped_at__isnull=True, last_beat_at__lt=now - timedelta(seconds=dead_after_s)
        ).values_list("server_id", flat=True)
    )
    if dead:
        RealtimeServer.objects.filter(server_id__in=dead, stopped_at__isnull=True).update(
            stopped_at=now, stop_reason="lost"
        )
    # Also sessions of servers stopped earlier whose settling was interrupted.
    stopped = RealtimeServer.objects.filter(stopped_at__isnull=False).values("server_id")
    settled = WebSocketSession.objects.filter(disconnected_at__isnull=True, server_id__in=stopped).update(
        disconnected_at=now, disconnect_reason=WebSocketSession.Reason.SERVER_LOST
    )
    if settled:
        metrics.websocket_disconnects.labels(WebSocketSession.Reason.SERVER_LOST).inc(settled)
    return dead
