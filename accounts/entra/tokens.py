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
import json
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from accounts.entra.config import EntraConfig, entra_config
from accounts.entra.keys import UnknownKey, key_cache


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


def _b64decode(segment: str) -> bytes:
    # Strict: a character outside base64url is an error, not silently dropped.
    padded = segment.replace("-", "+").replace("_", "/") + "=" * (-len(segment) % 4)
    return binascii.a2b_base64(padded, strict_mode=True)


def _parse(token: str) -> tuple[dict, dict, bytes, bytes]:
    """(header, claims, signing input, signature) of a compact JWS."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("malformed token: not a JWS")
    try:
        header = json.loads(_b64decode(parts[0]))
        claims = json.loads(_b64decode(parts[1]))
        signature = _b64decode(parts[2])
    except (binascii.Error, ValueError) as exc:
        raise TokenError("malformed token: bad encoding") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise TokenError("malformed token: not a JSON object")
    return header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature


def _decode(token: str, *, audiences: frozenset[str], config: EntraConfig) -> dict:
    """Signature and the claims every token must carry.

    Parsed and verified with ``cryptography`` directly rather than PyJWT's
    decoder, which validates base64 character by character in Python and
    caps throughput at a few thousand tokens a second.
    """
    header, claims, signing_input, signature = _parse(token)
    if header.get("alg") != "RS256":
        raise TokenError(f"signing algorithm {header.get('alg')!r} is not accepted (RS256 only)")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise TokenError("token has no key id")
    try:
        key = key_cache().get(kid)
    except UnknownKey as exc:
        raise TokenError("token is signed by an unknown key") from exc
    try:
        key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature as exc:
        raise TokenError("token signature is invalid") from exc

    for claim in ("exp", "iat", "nbf", "aud", "iss"):
        if claims.get(claim) is None:
            raise TokenError(f"token has no {claim!r} claim")
    now, leeway = time.time(), config.clock_skew_s
    try:
        exp, nbf, iat = float(claims["exp"]), float(claims["nbf"]), float(claims["iat"])
    except (TypeError, ValueError) as exc:
        raise TokenError("token times are not numbers") from exc
    if exp <= now - leeway:
        raise TokenError("token has expired")
    if nbf > now + leeway or iat > now + leeway:
        raise TokenError("token is not valid yet")
    aud = claims["aud"]
    if not (aud in audiences if isinstance(aud, str) else any(a in audiences for a in aud)):
        raise TokenError("token is for another audience")
    for claim in ("tid", "oid"):
        if not isinstance(claims.get(claim), str) or not claims[claim]:
            raise TokenError(f"token has no {claim!r} claim")
    if claims["tid"] not in config.allowed_tenants:
        raise TokenError("token is from a tenant that is not allowed")
    return claims


def validate_id_token(token: str, *, nonce: str, config: EntraConfig | None = None) -> dict:
    """The claims of a valid ID token for this app, issued for this sign-in (``nonce``)."""
    config = config or entra_config()
    claims = _decode(token, audiences=frozenset({config.client_id}), config=config)
    if claims["iss"] != config.issuer(claims["tid"]):
        raise TokenError("token issuer does not match its tenant")
    if not isinstance(claims.get("nonce"), str) or not hmac.compare_digest(claims["nonce"], nonce):
        raise TokenError("token nonce does not match this sign-in")
    return claims


def validate_access_token(token: str, *, config: EntraConfig | None = None) -> dict:
    """The claims of a valid access token for this API, with the required scope or app role."""
    config = config or entra_config()
    claims = _decode(token, audiences=config.api_audiences, config=config)
    if claims["iss"] not in (config.issuer(claims["tid"]), config.v1_issuer(claims["tid"])):
        raise TokenError("token issuer does not match its tenant")
    scopes = str(claims.get("scp", "")).split()
    roles = claims.get("roles") or []
    if config.api_scope not in scopes and config.api_app_role not in roles:
        raise InsufficientScope(f"token lacks the {config.api_scope!r} scope or the {config.api_app_role!r} role")
    return claims
