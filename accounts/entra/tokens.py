"""Validation of the tokens Entra issues: every check here, none left to msal.

msal checks almost nothing in an ID token (no signature; recent releases no
issuer, audience or expiry either). ID tokens and API access tokens are
checked here: RS256 signature against the tenant's published keys (``none``
and HS* refused), issuer per tenant, audience, tenant allow-list, ``exp``,
``nbf`` and ``iat`` with an explicit leeway, and the nonce or the scope.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import threading
import time
from collections import OrderedDict

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from django.core.signals import setting_changed
from django.dispatch import receiver

from accounts.entra.conf import EntraConfig, entra_config
from accounts.entra.keys import UnknownKey, key_cache
from core import metrics


class TokenError(Exception):
    """The token is not acceptable; ``description`` says why (never the token)."""

    error = "invalid_token"

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class InsufficientScope(TokenError):
    error = "insufficient_scope"


def expected_nonce(flow_nonce: str) -> str:
    """msal sends sha256(nonce) to Entra, so that is what the ID token carries."""
    return hashlib.sha256(flow_nonce.encode("ascii")).hexdigest()


_B64URL = bytes.maketrans(b"-_", b"+/")
_B64URL_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# A segment whose last group has 2 or 3 characters leaves the last one's low 4 or 2 bits unused: they
# must be zero, or several spellings of one token would each pass (and each take a cache entry).
_CANONICAL_LAST = {
    2: frozenset(c for i, c in enumerate(_B64URL_ALPHABET) if i % 16 == 0),
    3: frozenset(c for i, c in enumerate(_B64URL_ALPHABET) if i % 4 == 0),
}


def _b64decode(segment: bytes) -> bytes:
    """Base64url without padding (RFC 7515), one spelling per value: anything else is an error."""
    rest = len(segment) % 4
    if rest == 1 or (rest and segment[-1] not in _CANONICAL_LAST[rest]) or segment.translate(None, _B64URL_ALPHABET):
        raise binascii.Error("not canonical base64url")
    return binascii.a2b_base64(segment.translate(_B64URL) + b"=="[: -len(segment) % 4], strict_mode=True)


# Entra's tokens are a few KiB (group overage keeps them under 8 KiB); anything far
# larger is refused before it is decoded.
MAX_TOKEN_CHARS = 32 * 1024
MAX_HEADER_CHARS = 1024


def _encoded(token: str) -> bytes:
    """The token's bytes, once it is small enough and ASCII (a compact JWS is nothing else)."""
    if len(token) > MAX_TOKEN_CHARS:
        raise TokenError("malformed token: too large")
    try:
        return token.encode("ascii")
    except UnicodeEncodeError:
        raise TokenError("malformed token: bad encoding") from None


# Headers repeat from token to token (one per signing key): decoded once. Bounded: a flood of
# distinct headers only costs their decoding.
_headers: dict[bytes, dict] = {}
_MAX_HEADERS = 64


def _header(segment: bytes) -> dict:
    header = _headers.get(segment)
    if header is None:
        header = orjson.loads(_b64decode(segment))
        if not isinstance(header, dict):
            raise TokenError("malformed token: not a JSON object")
        if len(_headers) >= _MAX_HEADERS:
            _headers.clear()
        _headers[segment] = header
    return header


def _parse(token: bytes) -> tuple[dict, dict, bytes, bytes]:
    """(header, claims, signing input, signature) of a compact JWS."""
    if token.count(b".") != 2:
        raise TokenError("malformed token: not a JWS")
    dot = token.rindex(b".")
    signing_input = token[:dot]
    header_segment, _, claims_segment = signing_input.partition(b".")
    if len(header_segment) > MAX_HEADER_CHARS:
        raise TokenError("malformed token: header too large")
    try:
        header = _header(header_segment)
        # orjson: strict UTF-8 and JSON (no NaN or Infinity), nesting capped at 1024 levels,
        # and about three times quicker than json on a token's claims.
        claims = orjson.loads(_b64decode(claims_segment))
        signature = _b64decode(token[dot + 1 :])
    except (binascii.Error, ValueError) as exc:  # orjson.JSONDecodeError is a ValueError
        raise TokenError("malformed token: bad encoding") from exc
    if not isinstance(claims, dict):
        raise TokenError("malformed token: not a JSON object")
    return header, claims, signing_input, signature


_PKCS1V15, _SHA256 = padding.PKCS1v15(), hashes.SHA256()
_NUMBERS = (int, float)  # by type(): a bool is not a time


def _strings(value: object) -> list[str] | None:
    """A claim that must be a string or a list of strings, as a list; None when it is neither."""
    if type(value) is str:
        return [value]
    if type(value) is list and all(type(item) is str for item in value):
        return value
    return None


def _decode(token: bytes, *, audiences: frozenset[str], config: EntraConfig) -> dict:
    """Signature and the claims every token must carry, timed (a refusal too)."""
    started = time.perf_counter()
    try:
        return _verified_claims(token, audiences, config)
    finally:
        metrics.entra_token_validation_seconds.observe(time.perf_counter() - started)


def _verified_claims(token: bytes, audiences: frozenset[str], config: EntraConfig) -> dict:
    """Parsed and verified with ``cryptography`` directly rather than PyJWT's decoder,
    which validates base64 character by character in Python and caps throughput at a
    few thousand tokens a second. A first-seen access token costs the RSA verification
    and about as much again: ``bench/token_validation.py`` measures it.
    """
    header, claims, signing_input, signature = _parse(token)
    if header.get("alg") != "RS256":
        raise TokenError(f"signing algorithm {header.get('alg')!r} is not accepted (RS256 only)")
    kid = header.get("kid")
    if type(kid) is not str or not kid:
        raise TokenError("token has no key id")
    try:
        key = key_cache().get(kid)
    except UnknownKey as exc:
        raise TokenError("token is signed by an unknown key") from exc
    try:
        key.verify(signature, signing_input, _PKCS1V15, _SHA256)
    except InvalidSignature as exc:
        raise TokenError("token signature is invalid") from exc

    try:
        exp, nbf, iat, aud, iss = claims["exp"], claims["nbf"], claims["iat"], claims["aud"], claims["iss"]
    except KeyError as exc:
        raise TokenError(f"token has no {exc.args[0]!r} claim") from None
    if type(exp) not in _NUMBERS or type(nbf) not in _NUMBERS or type(iat) not in _NUMBERS:
        raise TokenError("token times are not numbers")
    now, leeway = time.time(), config.clock_skew_s
    if exp <= now - leeway:
        raise TokenError("token has expired")
    if nbf > now + leeway or iat > now + leeway:
        raise TokenError("token is not valid yet")
    if not (aud in audiences if type(aud) is str else any(a in audiences for a in _strings(aud) or ())):
        raise TokenError("token is for another audience")
    if type(iss) is not str:
        raise TokenError("token issuer is not a string")
    roles = claims.get("roles")
    if roles is not None and _strings(roles) is not roles:
        raise TokenError("token roles are not a list of strings")
    tid, oid = claims.get("tid"), claims.get("oid")
    if type(tid) is not str or not tid:
        raise TokenError("token has no 'tid' claim")
    if type(oid) is not str or not oid:
        raise TokenError("token has no 'oid' claim")
    if tid not in config.allowed_tenants:
        raise TokenError("token is from a tenant that is not allowed")
    return claims


def validate_id_token(token: str, *, nonce: str, config: EntraConfig | None = None) -> dict:
    """The claims of a valid ID token for this app, issued for this sign-in (``nonce``)."""
    config = config or entra_config()
    claims = _decode(_encoded(token), audiences=frozenset({config.client_id}), config=config)
    if claims["iss"] != config.issuer(claims["tid"]):
        raise TokenError("token issuer does not match its tenant")
    if not isinstance(claims.get("nonce"), str) or not hmac.compare_digest(claims["nonce"], nonce):
        raise TokenError("token nonce does not match this sign-in")
    return claims


def validate_refreshed_id_token(
    token: str, *, tenant_id: str, object_id: str, config: EntraConfig | None = None
) -> dict:
    """The claims of the ID token a renewal returned, for the user signed in (no nonce: none was sent)."""
    config = config or entra_config()
    claims = _decode(_encoded(token), audiences=frozenset({config.client_id}), config=config)
    if claims["iss"] != config.issuer(claims["tid"]):
        raise TokenError("token issuer does not match its tenant")
    if claims["tid"] != tenant_id or claims["oid"].lower() != object_id:
        raise TokenError("token is for another account")
    return claims


class ValidatedTokens:
    """Access tokens already validated, recognised by their SHA-256 until their ``exp``: a bounded cache.

    A WebSocket client presents the same token at every reconnect (5,000 connections of
    500 users: each token ten times); one RSA verification serves them all. An entry
    counts only for the configuration it was validated under. Revocation is not a
    concern here: the real-time re-check closes a disabled account's connections.
    """

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        # An OrderedDict: taking the oldest from a plain dict walks the slots its deletions left at
        # the front, which made each put of a full cache about three times as slow.
        self._entries: OrderedDict[bytes, tuple[float, EntraConfig, dict]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, digest: bytes, config: EntraConfig, now: float) -> dict | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if entry[0] <= now or entry[1] is not config:
            self._entries.pop(digest, None)
            return None
        return entry[2]

    def put(self, digest: bytes, config: EntraConfig, claims: dict, until: float) -> None:
        with self._lock:
            while len(self._entries) >= self.max_entries:  # the oldest first
                self._entries.popitem(last=False)
            self._entries[digest] = (until, config, claims)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


validated_tokens = ValidatedTokens()


@receiver(setting_changed)
def _reset_validated(*, setting: str, **kwargs) -> None:
    if setting.startswith("ENTRA_"):
        validated_tokens.clear()


def validate_access_token(token: str, *, config: EntraConfig | None = None) -> dict:
    """The claims of a valid access token for this API, with the required scope or app role.

    Only access tokens: an ID token (which has a ``nonce``, and no ``azp``/``appid`` naming
    the calling client) is refused even when its audience and roles would do. A token
    validated before under the same configuration is recognised by its hash until it expires.
    """
    config = config or entra_config()
    raw = _encoded(token)
    digest = hashlib.sha256(raw).digest()
    claims = validated_tokens.get(digest, config, time.time())
    if claims is None:
        claims = _validate_access_token(raw, config)
        validated_tokens.put(digest, config, claims, float(claims["exp"]) + config.clock_skew_s)
    return dict(claims)


_issuers: dict[tuple[int, str], tuple[EntraConfig, tuple[str, ...]]] = {}


def _api_issuers(config: EntraConfig, tenant_id: str) -> tuple[str, ...]:
    """The v2 and v1 issuers of an allowed tenant, computed once per configuration."""
    entry = _issuers.get((id(config), tenant_id))
    if entry is None or entry[0] is not config:
        if len(_issuers) > 1024:
            _issuers.clear()
        entry = _issuers[(id(config), tenant_id)] = (config, (config.issuer(tenant_id), *config.v1_issuers(tenant_id)))
    return entry[1]


def _validate_access_token(token: bytes, config: EntraConfig) -> dict:
    claims = _decode(token, audiences=config.api_audiences, config=config)
    if claims["iss"] not in _api_issuers(config, claims["tid"]):
        raise TokenError("token issuer does not match its tenant")
    if "nonce" in claims:
        raise TokenError("an ID token is not an access token")
    client = claims.get("azp") or claims.get("appid")
    if not isinstance(client, str) or not client:
        raise TokenError("token names no calling client (azp or appid): not an access token")
    if config.api_allowed_clients and client not in config.api_allowed_clients:
        raise TokenError("token was issued to a client that is not allowed")
    scp = claims.get("scp")
    if scp is not None and not isinstance(scp, str):
        raise TokenError("token scopes are not a string")
    scopes = (scp or "").split()
    roles = claims.get("roles") or []
    if config.api_scope not in scopes and config.api_app_role not in roles:
        raise InsufficientScope(f"token lacks the {config.api_scope!r} scope or the {config.api_app_role!r} role")
    return claims
