"""The key cache: rotation, a flood of unknown key ids, and a keys endpoint that is briefly down."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from accounts.entra.keys import KeyCache, UnknownKey, key_cache
from accounts.entra.tokens import TokenError, validate_access_token, validate_id_token
from tests.accounts.entra.conftest import ALICE, CLIENT_ID

API = f"api://{CLIENT_ID}"


def token(entra, **claims):
    return entra.access_token(ALICE, audience=API, scp="access_as_user", **claims)


def test_a_rotated_key_is_fetched_when_a_token_names_it(entra):
    validate_access_token(token(entra))
    fetches = entra.jwks_requests
    entra.rotate_keys()
    a_minute_passes()
    validate_access_token(token(entra))  # signed with the new key: one refetch
    assert entra.jwks_requests == fetches + 1
    validate_access_token(token(entra))
    assert entra.jwks_requests == fetches + 1


def a_minute_passes() -> None:
    key_cache()._attempted_at -= 61


def test_a_rotated_key_is_not_fetched_twice_within_a_minute(entra):
    before = entra.jwks_requests
    validate_access_token(token(entra))
    assert entra.jwks_requests == before + 1  # the keys, fetched once
    entra.rotate_keys()
    for _ in range(3):
        with pytest.raises(TokenError, match="unknown key"):
            validate_access_token(token(entra))  # signed with the new key
    assert entra.jwks_requests == before + 1


def test_a_flood_of_unknown_key_ids_fetches_the_keys_at_most_once_a_minute(entra):
    validate_access_token(token(entra))
    fetches = entra.jwks_requests
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = {"aud": API, "iss": entra.issuer(ALICE.tid), "tid": ALICE.tid, "oid": ALICE.oid, "scp": "access_as_user"}
    for n in range(50):
        forged = entra.sign({**claims, **entra.time_claims()}, kid=f"unknown-{n}", key=stranger)
        with pytest.raises(TokenError, match="unknown key"):
            validate_access_token(forged)
    assert entra.jwks_requests <= fetches + 1


def test_known_keys_keep_serving_while_the_keys_endpoint_is_down(entra, settings):
    settings.ENTRA_KEYS_TTL_S = 0  # every use finds the keys stale and tries to refetch
    settings.ENTRA_KEYS_MIN_REFRESH_S = 0
    validate_access_token(token(entra))
    entra.jwks_down = True
    try:
        assert validate_access_token(token(entra))["oid"] == ALICE.oid
    finally:
        entra.jwks_down = False


def test_cache_refreshes_after_its_lifetime():
    now = [0.0]
    calls = []

    def fetch(url):
        calls.append(url)
        return {"keys": []}

    cache = KeyCache(jwks_uri="https://x/keys", fetch=fetch, ttl_s=100, min_refresh_s=60, clock=lambda: now[0])
    with pytest.raises(UnknownKey):
        cache.get("k")
    now[0] = 30
    with pytest.raises(UnknownKey):
        cache.get("k")
    assert len(calls) == 1  # within the minute: not again
    now[0] = 61
    with pytest.raises(UnknownKey):
        cache.get("k")
    assert len(calls) == 2


def test_key_cache_is_shared(entra):
    """One cache for the process: sign-in (ID tokens) and the API (access tokens), in every thread."""
    before = entra.jwks_requests
    tokens = [(validate_id_token, entra.id_token(ALICE, nonce="n"), {"nonce": "n"}) for _ in range(4)]
    tokens += [(validate_access_token, token(entra), {}) for _ in range(4)]
    together = threading.Barrier(len(tokens))

    def validate(entry) -> str:
        validator, jwt, kwargs = entry
        together.wait(timeout=10)  # all at once, on a cache that has no keys yet
        return validator(jwt, **kwargs)["oid"]

    with ThreadPoolExecutor(max_workers=len(tokens)) as pool:
        oids = list(pool.map(validate, tokens))

    assert oids == [ALICE.oid] * len(tokens)
    assert entra.jwks_requests == before + 1
    assert key_cache() is key_cache()
