"""Reaching users: ``notify_user(user, event)`` reaches every live connection of that user on every process.

Sent after the surrounding transaction commits (robustly: a channel layer that is down is
logged and never fails the caller's commit), through the channel layer: in-memory in one
process by default, Redis pub/sub with ``REDIS_URL`` (several processes and machines; a
command or a task worker reaches the web processes only through Redis). From async code,
``asend_to_user``/``asend_to_everyone`` send at once.
"""

from __future__ import annotations

import json
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from realtime.groups import EVERYONE, user_group

EVENT_TYPES = {"notice", "github_sync", "profile_synced"}


def _message(event: dict[str, Any]) -> dict[str, Any]:
    if event.get("type") not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event.get('type')!r}; one of {sorted(EVENT_TYPES)}")
    return {"type": "realtime.event", "text": json.dumps(event, separators=(",", ":"))}


def _user_id(user: Any) -> int:
    return int(getattr(user, "pk", user))


async def asend_to_user(user: Any, event: dict[str, Any]) -> None:
    """At once, from async code (the benchmark, consumers)."""
    await get_channel_layer().group_send(user_group(_user_id(user)), _message(event))


async def asend_to_everyone(event: dict[str, Any]) -> None:
    await get_channel_layer().group_send(EVERYONE, _message(event))


def notify_user(user: Any, event: dict[str, Any], *, using: str | None = None) -> None:
    """Send ``event`` to every connection of ``user`` (a User or its id) once the transaction commits."""
    message, group = _message(event), user_group(_user_id(user))
    transaction.on_commit(lambda: _group_send(group, message), using=using, robust=True)


def notify_everyone(event: dict[str, Any], *, using: str | None = None) -> None:
    message = _message(event)
    transaction.on_commit(lambda: _group_send(EVERYONE, message), using=using, robust=True)


def send_to_user_now(user: Any, event: dict[str, Any]) -> None:
    """At once, from sync code, raising when the channel layer cannot be reached (the ``notify`` command)."""
    _group_send(user_group(_user_id(user)), _message(event))


def send_to_everyone_now(event: dict[str, Any]) -> None:
    _group_send(EVERYONE, _message(event))


def end_browser_session(user_id: int, session_digest: str) -> None:
    """Close, on every process and at once, the sockets riding on a browser session that just ended."""
    message = {"type": "realtime.signed_out", "session": session_digest}
    transaction.on_commit(lambda: _group_send(user_group(user_id), message), robust=True)


def _group_send(group: str, message: dict[str, Any]) -> None:
    async_to_sync(get_channel_layer().group_send)(group, message)
