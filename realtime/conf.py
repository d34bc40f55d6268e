"""Real-time settings: each from a Django setting of that name, else from the environment variable.

Read once and cached; ``setting_changed`` resets the cache (tests override them). A malformed
value stops start-up naming the variable, as the rest of the settings do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

_DEFAULTS: dict[str, tuple[float, float]] = {  # name: (default, minimum)
    "REALTIME_HEARTBEAT_S": (20, 1),
    "REALTIME_HEARTBEAT_WRITE_S": (60, 1),
    "REALTIME_RECHECK_S": (60, 1),
    "REALTIME_SERVER_BEAT_S": (15, 1),
    "REALTIME_MAX_MESSAGE_BYTES": (64 * 1024, 1024),
    "REALTIME_DB_THREADS": (4, 1),
}


@dataclass(frozen=True)
class RealtimeConfig:
    heartbeat_s: float
    heartbeat_write_s: float
    recheck_s: float
    server_beat_s: float
    max_message_bytes: int
    db_threads: int

    @property
    def silence_s(self) -> float:
        """Three heartbeat intervals without a frame: the client is gone (4408)."""
        return 3 * self.heartbeat_s

    @property
    def server_dead_after_s(self) -> float:
        """A server process silent for three beats is dead; the next sweep settles its sessions."""
        return 3 * self.server_beat_s


def _value(name: str) -> float:
    default, minimum = _DEFAULTS[name]
    raw = getattr(settings, name, None)
    if raw is None:
        raw = os.environ.get(name, "").strip() or default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum:g}, not {value:g}")
    return value


@cache
def realtime_config() -> RealtimeConfig:
    return RealtimeConfig(
        heartbeat_s=_value("REALTIME_HEARTBEAT_S"),
        heartbeat_write_s=_value("REALTIME_HEARTBEAT_WRITE_S"),
        recheck_s=_value("REALTIME_RECHECK_S"),
        server_beat_s=_value("REALTIME_SERVER_BEAT_S"),
        max_message_bytes=int(_value("REALTIME_MAX_MESSAGE_BYTES")),
        db_threads=int(_value("REALTIME_DB_THREADS")),
    )


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs) -> None:
    if setting.startswith("REALTIME_"):
        realtime_config.cache_clear()
