"""Logs: JSON lines with the request id, one line per request, and no token in any of them."""

from __future__ import annotations

import io
import json
import logging
import secrets

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from core.logging import REDACTED, ContextFilter, JsonFormatter, RedactFilter, redact


@pytest.fixture(scope="module")
def real_jwt() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = {"aud": "api://app", "iss": "https://login.microsoftonline.com/t/v2.0", "oid": "o", "exp": 2_000_000_000}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})


def ghs_token() -> str:
    return "ghs_" + secrets.token_urlsafe(27).replace("-", "a")[:36]


def emitted(*args, exc_info=None, **kwargs) -> str:
    """What a handler configured like settings.LOGGING writes for one call of ``logger.warning``."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactFilter())
    handler.addFilter(ContextFilter())
    logger = logging.getLogger("tests.ops.logging")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning(*args, exc_info=exc_info, **kwargs)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    return stream.getvalue()


def test_tokens_in_messages_and_arguments_are_removed(real_jwt):
    github = ghs_token()
    line = emitted(
        "callback with %s, header %r, github %s, url %s",
        real_jwt,
        {"Authorization": f"Bearer {real_jwt}"},
        github,
        "https://app/auth/callback/?code=0.AXYA-secret-code_value&state=abc",
    )
    for secret in (real_jwt, github, "0.AXYA-secret-code_value", real_jwt.split(".")[1]):
        assert secret not in line
    assert line.count(REDACTED) >= 4
    assert "state=abc" in line  # what is not a secret stays


def test_an_exception_text_is_redacted_too(real_jwt):
    try:
        raise ValueError(f"bad token {real_jwt}")
    except ValueError:
        line = emitted("failed", exc_info=True)
    assert real_jwt not in line and "ValueError" in line


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: token abcdef0123456789", "abcdef0123456789"),
        ("authorization=Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA"),
        ("Bearer abc.def-ghi_jkl", "abc.def-ghi_jkl"),
        ("gho_16C7e42F292c6912E7710c838347Ae178B4a", "16C7e42F292c6912E7710c838347Ae178B4a"),
        ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "11ABCDEFG0123456789"),
        ("client_secret=s3cr3t-value", "s3cr3t-value"),
    ],
)
def test_each_shape_is_redacted(text, secret):
    assert REDACTED in redact(text)
    assert secret not in redact(text)


def test_ordinary_text_is_kept():
    text = "sync 12 of demo/infrastructure succeeded in 3.2 s; token expired for user 7; code path ok"
    assert redact(text) == text


def test_one_json_object_a_line_with_the_fields():
    line = emitted("sign-in %s", "linked", extra={"outcome": "linked"})
    record = json.loads(line)
    assert line.count("\n") == 1
    assert {"time", "level", "logger", "message", "request_id", "user_id", "outcome"} <= set(record)
    assert record["message"] == "sign-in linked" and record["level"] == "WARNING"


def test_the_request_id_is_kept_when_well_formed_and_sent_back(client, caplog):
    caplog.set_level(logging.INFO, logger="core.request")
    response = client.get("/health/live", headers={"X-Request-ID": "abc-123-DEF-456"})
    assert response["X-Request-ID"] == "abc-123-DEF-456"
    (record,) = [r for r in caplog.records if r.name == "core.request"]
    assert (record.method, record.path, record.status) == ("GET", "/health/live", 200)
    assert record.duration_ms >= 0


def test_a_malformed_request_id_is_replaced(client):
    response = client.get("/health/live?x=1", headers={"X-Request-ID": "bad id\nwith newline"})
    assert response["X-Request-ID"] != "bad id\nwith newline"
    assert len(response["X-Request-ID"]) == 32


def test_the_request_line_has_no_query(client, caplog):
    caplog.set_level(logging.INFO, logger="core.request")
    client.get("/health/live?code=secret-code")
    (record,) = [r for r in caplog.records if r.name == "core.request"]
    assert "secret-code" not in record.getMessage() and record.path == "/health/live"
