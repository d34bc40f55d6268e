"""Sessions that last SESSION_COOKIE_AGE from the last request, not from sign-in."""

from __future__ import annotations

import time

REFRESHED_AT = "_session_refreshed_at"
REFRESH_EVERY_S = 60


class SlidingSessionMiddleware:
    """Save an active session again (a new expiry and cookie) at most once a minute.

    ``SESSION_SAVE_EVERY_REQUEST`` would do the same with a database write on every request.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        session = getattr(request, "session", None)
        if session is None or session.is_empty():
            return response
        refreshed_at = session.get(REFRESHED_AT, 0)
        # A cookie naming no stored session (expired, forged) loads as empty: no session is made for it.
        if not session.is_empty() and time.time() - refreshed_at >= REFRESH_EVERY_S:
            session[REFRESHED_AT] = int(time.time())
        return response
