"""Validation of the tokens Entra issues: every check here, none left to msal.

msal checks almost nothing in an ID token (no signature; recent releases no
issuer, audience or expiry either). ID tokens and API access tokens are
checked here: RS256 signature against the tenant's published keys (``none``
and HS* refused), issuer per tenant, audience, tenant allow-list, ``exp``,
``nbf`` and ``iat`` with an explicit leeway, and the nonce or the scope.
"""

from __future__ import annotations

import hashlib
import hmac

import jwt

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


def _decode(token: str, *, audiences: list[str], config: EntraConfig) -> dict:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise TokenError(f"malformed token: {exc}") from exc
    if header.get("alg") != "RS256":
        raise TokenError(f"signing algorithm {header.get('alg')!r} is not accepted (RS256 only)")
    kid = header.get("kid")
    if not kid:
        raise TokenError("token has no key id")
    try:
        key = key_cache().get(kid)
    except UnknownKey as exc:
        raise TokenError("token is signed by an unknown key") from exc
    try:
        claims = jwt.decode(
            token,
            key=key,
            algorithms=["RS256"],
            audience=audiences,
            leeway=config.clock_skew_s,
            options={"require": ["exp", "iat", "nbf", "aud", "iss"], "verify_iss": False},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("token has expired") from exc
    except jwt.ImmatureSignatureError as exc:
        raise TokenError("token is not valid yet") from exc
    except jwt.InvalidAudienceError as exc:
        raise TokenError("token is for another audience") from exc
    except jwt.InvalidSignatureError as exc:
        raise TokenError("token signature is invalid") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise TokenError(f"token has no {exc.claim!r} claim") from exc
    except jwt.PyJWTError as exc:
        raise TokenError(f"token is invalid: {exc}") from exc
    for claim in ("tid", "oid"):
        if not isinstance(claims.get(claim), str) or not claims[claim]:
            raise TokenError(f"token has no {claim!r} claim")
    if claims["tid"] not in config.allowed_tenants:
        raise TokenError("token is from a tenant that is not allowed")
    return claims


def validate_id_token(token: str, *, nonce: str, config: EntraConfig | None = None) -> dict:
    """The claims of a valid ID token for this app, issued for this sign-in (``nonce``)."""
    config = config or entra_config()
    claims = _decode(token, audiences=[config.client_id], config=config)
    if claims["iss"] != config.issuer(claims["tid"]):
        raise TokenError("token issuer does not match its tenant")
    if not isinstance(claims.get("nonce"), str) or not hmac.compare_digest(claims["nonce"], nonce):
        raise TokenError("token nonce does not match this sign-in")
    return claims


def validate_access_token(token: str, *, config: EntraConfig | None = None) -> dict:
    """The claims of a valid access token for this API, with the required scope or app role."""
    config = config or entra_config()
    claims = _decode(token, audiences=sorted(config.api_audiences), config=config)
    if claims["iss"] not in (config.issuer(claims["tid"]), config.v1_issuer(claims["tid"])):
        raise TokenError("token issuer does not match its tenant")
    scopes = str(claims.get("scp", "")).split()
    roles = claims.get("roles") or []
    if config.api_scope not in scopes and config.api_app_role not in roles:
        raise InsufficientScope(f"token lacks the {config.api_scope!r} scope or the {config.api_app_role!r} role")
    return claims
