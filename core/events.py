"""Announcements between apps, delivered after the surrounding transaction commits.

``accounts`` and ``integrations`` publish what happened (a profile synced, a sync's
status changed); ``realtime`` and ``ops`` subscribe in their ``AppConfig.ready()``.
Publishers never import their subscribers, so an app can be removed without
touching the others. Subscribers run after commit, so they never announce a change
that is then rolled back; one subscriber's failure is logged and stops no other.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from django.db import transaction

logger = logging.getLogger("core.events")

Subscriber = Callable[..., None]
_subscribers: dict[str, list[Subscriber]] = defaultdict(list)


def subscribe(event: str, subscriber: Subscriber) -> None:
    """Call ``subscriber(**payload)`` for every ``event`` published from now on (once per subscriber)."""
    if subscriber not in _subscribers[event]:
        _subscribers[event].append(subscriber)


def unsubscribe(event: str, subscriber: Subscriber) -> None:
    if subscriber in _subscribers.get(event, []):
        _subscribers[event].remove(subscriber)


def publish(event: str, *, using: str | None = None, **payload: Any) -> None:
    """Deliver ``event`` to its subscribers once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: _deliver(event, payload), using=using)


def _deliver(event: str, payload: dict[str, Any]) -> None:
    for subscriber in list(_subscribers.get(event, [])):
        try:
            subscriber(**payload)
        except Exception:
            logger.exception("subscriber %s of %s failed", getattr(subscriber, "__qualname__", subscriber), event)
