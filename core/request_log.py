"""The request id of each request, and one log line per request written by the project itself.

Whatever server runs the code (uvicorn, runserver, the test client), every request gets
an id (an incoming well-formed ``X-Request-ID`` is kept), sent back in ``X-Request-ID``
and set in ``core.logging.request_id`` for every line logged while it runs; then one
line: method, path without the query, status, duration. Works sync and async.
"""

from __future__ import annotations

import logging
import time

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from core.logging import accept_request_id, request_id, user_id

logger = logging.getLogger("core.request")


class RequestLogMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self._acall(request)
        started = self._begin(request)
        try:
            response = self.get_response(request)
        except BaseException:
            self._end(request, None, started)
            raise
        return self._end(request, response, started)

    async def _acall(self, request):
        started = self._begin(request)
        try:
            response = await self.get_response(request)
        except BaseException:
            self._end(request, None, started)
            raise
        return self._end(request, response, started)

    def _begin(self, request) -> float:
        rid = accept_request_id(request.headers.get("X-Request-ID"))
        request.request_id = rid
        request_id.set(rid)
        user_id.set(None)
        return time.perf_counter()

    def _end(self, request, response, started: float):
        # The user as the request already loaded it: never a query of its own (nor a sync call under ASGI).
        user = getattr(request, "_cached_user", None)
        uid = user.pk if user is not None and getattr(user, "is_authenticated", False) else None
        user_id.set(uid)
        status = response.status_code if response is not None else 500
        logger.info(
            "%s %s %s",
            request.method,
            request.path,
            status,
            extra={
                "method": request.method,
                "path": request.path,
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )
        # The ids stay set: Django logs a 4xx/5xx (django.request) after the middleware has returned.
        if response is not None:
            response["X-Request-ID"] = request.request_id
        return response
