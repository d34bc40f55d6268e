"""The validated-token cache on the WebSocket handshake path: a token validated once is recognised by its hash."""

from __future__ import annotations

import time

import pytest

from accounts.entra import tokens
from accounts.entra.conf import entra_config
from accounts.entra.tokens import TokenError, ValidatedTokens, validate_access_token, validated_tokens
from tests.accounts.entra.conftest import ALICE
from tests.realtime.conftest import API


@pytest.fixture
def verifications(monkeypatch):
    """How many tokens went through the full validation (signature and claims)."""
    calls = []
    full = tokens._validate_access_token
    monkeypatch.setattr(
        tokens, "_validate_access_token", lambda token, config: calls.append(token) or full(token, config)
    )
    validated_tokens.clear()
    return calls


def test_a_token_validated_once_is_recognised_until_it_expires(entra, settings, verifications):
    settings.ENTRA_CLOCK_SKEW_S = 0
    token = entra.access_token(ALICE, audience=API, scp="access_as_user", exp=int(time.time()) + 2)

    claims = [validate_access_token(token) for _ in range(10)]

    assert len(verifications) == 1 and claims[0]["oid"] == ALICE.oid
    claims[0]["oid"] = "changed by a caller"
    assert validate_access_token(token)["oid"] == ALICE.oid  # each caller gets its own copy
    time.sleep(2.1)
    with pytest.raises(TokenError, match="expired"):
        validate_access_token(token)


def test_a_refused_token_is_not_remembered(entra, verifications):
    token = entra.access_token(ALICE, audience=API, scp="something_else")
    for _ in range(3):
        with pytest.raises(TokenError):
            validate_access_token(token)
    assert len(verifications) == 3


def test_a_change_of_settings_forgets_every_token(entra, settings, verifications):
    token = entra.access_token(ALICE, audience=API, scp="access_as_user")
    validate_access_token(token)
    settings.ENTRA_ALLOWED_TENANTS = ["00000000-0000-4000-8000-000000000000"]

    with pytest.raises(TokenError, match="tenant"):
        validate_access_token(token)


def test_the_cache_is_bounded_oldest_first(entra):
    cache = ValidatedTokens(max_entries=3)
    config = entra_config()
    for i in range(5):
        cache.put(bytes([i]), config, {"n": i}, time.time() + 60)
    assert [cache.get(bytes([i]), config, time.time()) for i in range(5)] == [None, None, {"n": 2}, {"n": 3}, {"n": 4}]


def test_only_one_spelling_of_a_token_is_accepted(entra, verifications):
    """Base64url without padding, unused bits zero (RFC 7515): a valid token re-spelled is refused, not re-cached."""
    token = entra.access_token(ALICE, audience=API, scp="access_as_user")
    header, claims, signature = token.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    assert len(signature) % 4 == 2  # 256 bytes: the last character carries 4 unused bits
    spare_bits = alphabet[alphabet.index(signature[-1]) + 1]  # the same bytes, a bit set that is never read
    variants = {
        "padded": f"{header}.{claims}.{signature}==",
        "standard alphabet": f"{header}.{claims}.{signature.replace('-', '+').replace('_', '/')}",
        "unused bits set": f"{header}.{claims}.{signature[:-1]}{spare_bits}",
    }
    if variants["standard alphabet"] == token:  # no - or _ in this signature: put them in the claims
        variants["standard alphabet"] = f"{header}.{claims.replace('-', '+').replace('_', '/')}.{signature}"

    assert validate_access_token(token)["oid"] == ALICE.oid
    for name, variant in variants.items():
        assert variant != token, name
        with pytest.raises(TokenError, match="malformed token"):
            validate_access_token(variant)
    assert len(tokens.validated_tokens._entries) == 1
