"""What other apps announce, turned into events for the users concerned.

Connected in ``RealtimeConfig.ready()``: ``accounts`` and ``integrations`` publish through
``core.events`` (after commit) and never import this app; sign-out comes from Django's
``user_logged_out`` signal.
"""

from __future__ import annotations

import logging

from django.contrib.auth.signals import user_logged_out

from accounts.tasks import PROFILE_SYNCED
from core import events
from integrations.github.services import SYNC_STATUS
from realtime.auth import session_digest
from realtime.notifications import end_browser_session, notify_user

logger = logging.getLogger("realtime")


def on_profile_synced(*, user_id: int, **payload) -> None:
    notify_user(user_id, {"type": "profile_synced"})


def on_github_sync_status(*, project_id, record_id, status, owner_id=None, **payload) -> None:
    if owner_id is None:
        return
    notify_user(owner_id, {"type": "github_sync", "project_id": project_id, "record_id": record_id, "status": status})


def on_logged_out(sender, request, user, **kwargs) -> None:
    """The browser's own sockets close at once (4401); the others of the user stay until they are re-checked."""
    key = getattr(getattr(request, "session", None), "session_key", None)
    if user is None or not key:
        return
    try:
        end_browser_session(user.pk, session_digest(key))
    except Exception:  # sign-out must not fail for want of a channel layer; the re-check closes them anyway
        logger.exception("could not close the signed-out browser's sockets at once")


def connect() -> None:
    events.subscribe(PROFILE_SYNCED, on_profile_synced)
    events.subscribe(SYNC_STATUS, on_github_sync_status)
    user_logged_out.connect(on_logged_out, dispatch_uid="realtime.on_logged_out")
