"""Channel-layer group names: one per user, one for everyone connected."""

from __future__ import annotations

EVERYONE = "realtime.everyone"


def user_group(user_id: int) -> str:
    return f"realtime.user.{int(user_id)}"
