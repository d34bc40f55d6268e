"""Logs: one JSON object a line, the request id of the request (or task) that logged, no secrets.

``RedactFilter`` rewrites messages and arguments alike, so a token cannot reach a log
line through ``logger.warning("... %s", token)`` either. ``request_id`` and ``user_id``
are contextvars: each request (thread or asyncio task under ASGI) sees its own.
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

request_id: ContextVar[str] = ContextVar("request_id", default="")
user_id: ContextVar[int | None] = ContextVar("user_id", default=None)

REDACTED = "[redacted]"
# Replaced whole: a JWT (JWS compact form, its header "eyJ…"), GitHub tokens (ghp_, gho_, ghs_, ghu_, ghr_,
# github_pat_).
_SECRETS = re.compile(
    r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"
    r"|\bgh[opsur]_[A-Za-z0-9_]{16,}"
    r"|\bgithub_pat_[A-Za-z0-9_]{20,}"
)
# The value after a prefix that is kept: Bearer/Basic credentials, Authorization values, OAuth codes, tokens and
# secrets in a query string, a form body or a dict's text.
_AFTER = re.compile(
    r"(?i)(\b(?:bearer|basic)\s+"
    r"|\bauthorization[\"']?\s*[:=]\s*[\"']?"
    r"|\b(?:code|access_token|refresh_token|id_token|client_secret|client_assertion|token)[\"']?\s*[:=]\s*[\"']?)"
    r"((?:(?:bearer|basic|token)\s+)?[^\s\"'&,;}]{4,})"
)
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{8,128}")


def redact(text: str) -> str:
    return _AFTER.sub(lambda m: m.group(1) + REDACTED, _SECRETS.sub(REDACTED, text))


def _redact_value(value: object) -> object:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    # Exceptions, bytes, objects: their text is what a format would print.
    return redact(str(value))


class RedactFilter(logging.Filter):
    """Removes anything shaped like a JWT, an authorization code, a GitHub token or an Authorization value."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, dict):
            record.args = {key: _redact_value(value) for key, value in record.args.items()}
        elif record.args:
            record.args = tuple(_redact_value(arg) for arg in record.args)
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class ContextFilter(logging.Filter):
    """Adds the request id and user id of the current request or task to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        record.user_id = user_id.get()
        return True


class JsonFormatter(_JsonFormatter):
    """time, level, logger, message, request_id, user_id and any ``extra=`` fields (outcome, …)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", "time")  # ISO 8601, UTC
        super().__init__("%(levelname)s %(name)s %(message)s %(request_id)s %(user_id)s", *args, **kwargs)

    def formatException(self, ei) -> str:
        return redact(super().formatException(ei))

    def process_log_record(self, log_data: dict) -> dict:
        # extra= values too: django.request adds the request object, whose text holds the query string.
        return {key: _redact_value(value) for key, value in log_data.items()}


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        rid = getattr(record, "request_id", "")
        return f"{line} [{rid}]" if rid else line


def accept_request_id(value: str | None) -> str:
    """An incoming X-Request-ID kept when well-formed (8 to 128 of [A-Za-z0-9._:-]); else a new one."""
    if value and _REQUEST_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex
