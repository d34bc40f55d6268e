"""The signing keys of the tenant, cached.

Keys live ``ENTRA_KEYS_TTL_S``; a token signed with an unknown key id makes
the cache refetch, at most once every ``ENTRA_KEYS_MIN_REFRESH_S`` so that a
flood of forged tokens cannot hammer the keys endpoint; if the endpoint is
down, the keys already known keep serving.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import jwt
from django.core.signals import setting_changed
from django.dispatch import receiver

from accounts.entra.conf import entra_config
from core import http

logger = logging.getLogger("accounts.entra.keys")


class UnknownKey(Exception):
    pass


class KeyCache:
    def __init__(
        self,
        *,
        jwks_uri: str,
        fetch: Callable[[str], dict],
        ttl_s: float,
        min_refresh_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.jwks_uri = jwks_uri
        self._fetch = fetch
        self.ttl_s = ttl_s
        self.min_refresh_s = min_refresh_s
        self._clock = clock
        self._keys: dict[str, object] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = threading.Lock()

    def get(self, kid: str):
        key = self._keys.get(kid)
        now = self._clock()
        stale = self._fetched_at is None or now - self._fetched_at > self.ttl_s
        if key is not None and not stale:
            return key
        self._refresh(now)
        key = self._keys.get(kid)
        if key is None:
            raise UnknownKey(f"no signing key with id {kid!r}")
        return key

    def _refresh(self, now: float) -> None:
        with self._lock:
            if self._attempted_at is not None and now - self._attempted_at < self.min_refresh_s:
                return
            self._attempted_at = now
            try:
                document = self._fetch(self.jwks_uri)
                keys = {}
                for jwk in document.get("keys", []):
                    if jwk.get("kty") == "RSA" and jwk.get("kid") and jwk.get("use", "sig") == "sig":
                        keys[jwk["kid"]] = jwt.PyJWK(jwk, algorithm="RS256").key
            except Exception as exc:
                logger.warning("could not refresh signing keys from %s: %s", self.jwks_uri, exc)
                return
            if not keys:
                logger.warning("signing keys endpoint %s returned no usable key", self.jwks_uri)
                return
            self._keys = keys
            self._fetched_at = now


def _fetch_json(url: str) -> dict:
    response = http.session(ca_bundle=entra_config().ca_bundle).get(url)
    response.raise_for_status()
    return response.json()


_cache: KeyCache | None = None
_cache_lock = threading.Lock()


def key_cache() -> KeyCache:
    global _cache
    cache = _cache
    if cache is not None:  # the path of every token: no lock
        return cache
    with _cache_lock:
        if _cache is None:
            config = entra_config()
            _cache = KeyCache(
                jwks_uri=config.jwks_uri(),
                fetch=_fetch_json,
                ttl_s=config.keys_ttl_s,
                min_refresh_s=config.keys_min_refresh_s,
            )
        return _cache


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs) -> None:
    if setting.startswith("ENTRA_"):
        reset_key_cache()


def reset_key_cache() -> None:
    global _cache
    with _cache_lock:
        _cache = None
