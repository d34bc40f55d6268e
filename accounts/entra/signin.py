"""The browser sign-in flow: msal runs the protocol, this module decides.

Authorization code flow with PKCE, ``state`` and ``nonce``. Each pending flow
is kept server-side (in the session store), one per tab, and used once. The
ID token is validated by ``tokens.validate_id_token``; the user comes from
``linking.resolve_sign_in``. Tokens are never stored: their keyed hashes are,
and msal's cache (which holds the refresh token) is kept Fernet-encrypted.
"""

from __future__ import annotations

import logging
import time
import warnings
from datetime import timedelta
from urllib.parse import urlencode

import msal
import requests
from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.utils import timezone

from accounts.entra.conf import EntraConfig, entra_config, load_client_certificate
from accounts.entra.linking import SignInRefused, apply_roles, resolve_sign_in
from accounts.entra.tokens import TokenError, expected_nonce, validate_id_token, validate_refreshed_id_token
from accounts.models import EntraTokenCache, User
from core import http, metrics
from core.crypto import fernet, hash_token

logger = logging.getLogger("accounts.entra.signin")

SCOPES = ["User.Read"]
FLOWS_KEY = "entra_flows"
FLOW_TTL_S = 600
MAX_PENDING_FLOWS = 5
# Discovery documents msal fetched, shared by the app objects of this process.
_MSAL_HTTP_CACHE: dict = {}


class SignInError(Exception):
    """The sign-in cannot complete; ``message`` is safe to show."""

    def __init__(self, message: str, *, reason: str = "error") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


def build_app(*, cache: msal.TokenCache | None = None, config: EntraConfig | None = None, app_only: bool = False):
    """msal's app. ``app_only``: for the app's own tokens, which come from the home tenant."""
    config = config or entra_config()
    return msal.ConfidentialClientApplication(
        config.client_id,
        client_credential=config.client_secret or _certificate_credential(),
        authority=f"{config.authority_host}/{config.tenant_id}" if app_only else config.authority,
        token_cache=cache,
        http_client=http.session(ca_bundle=config.ca_bundle),
        http_cache=_MSAL_HTTP_CACHE,
        # Instance discovery asks Microsoft's hosts about the authority: only
        # meaningful for Microsoft's own hosts.
        instance_discovery=None if config.is_microsoft_host else False,
    )


def _certificate_credential() -> dict:
    """A signed client assertion instead of a secret: PS256 with the certificate's SHA-256
    thumbprint, or RS256 with a SHA-1 thumbprint where ENTRA_CLIENT_CERTIFICATE_THUMBPRINT says so."""
    private_key, certificate = load_client_certificate(settings.ENTRA_CLIENT_CERTIFICATE_FILE)
    credential = {"private_key": private_key, "public_certificate": certificate}
    if settings.ENTRA_CLIENT_CERTIFICATE_THUMBPRINT:
        credential["thumbprint"] = settings.ENTRA_CLIENT_CERTIFICATE_THUMBPRINT
    return credential


# --- The encrypted token cache --------------------------------------------------


def _fernet() -> Fernet:
    return fernet("entra-token-cache", settings.ENTRA_TOKEN_CACHE_KEY)


def load_cache(user: User) -> msal.SerializableTokenCache:
    cache = msal.SerializableTokenCache()
    row = EntraTokenCache.objects.filter(user=user).first()
    if row is not None:
        try:
            cache.deserialize(_fernet().decrypt(bytes(row.ciphertext)).decode())
        except InvalidToken:
            logger.warning("token cache of user %s cannot be decrypted (key changed?); starting afresh", user.pk)
    return cache


def save_cache(user: User, cache: msal.SerializableTokenCache) -> None:
    if cache.has_state_changed:
        ciphertext = _fernet().encrypt(cache.serialize().encode())
        EntraTokenCache.objects.update_or_create(user=user, defaults={"ciphertext": ciphertext})


def drop_cache(user: User) -> None:
    EntraTokenCache.objects.filter(user=user).delete()


def record_tokens(*, user: User, result: dict) -> None:
    """Keep what identifies the tokens (keyed hashes) and when they expire."""
    user.azure_access_token_hash = hash_token(result["access_token"])
    if result.get("refresh_token"):
        user.azure_refresh_token_hash = hash_token(result["refresh_token"])
    user.azure_token_expires_at = timezone.now() + timedelta(seconds=int(result.get("expires_in", 3600)))
    user.save(update_fields=["azure_access_token_hash", "azure_refresh_token_hash", "azure_token_expires_at"])


# --- The flow -------------------------------------------------------------------


def start_sign_in(*, session, next_url: str) -> str:
    """Begin a flow for this tab; return the URL to send the browser to."""
    config = entra_config()
    with warnings.catch_warnings():
        # msal recommends form_post; the redirect stays a GET so that the session
        # cookie (SameSite=Lax) comes with it and the callback needs no CSRF exemption.
        warnings.filterwarnings("ignore", message="response_mode='form_post' is recommended")
        flow = build_app(config=config).initiate_auth_code_flow(
            scopes=SCOPES, redirect_uri=config.redirect_uri, response_mode="query"
        )
    now = time.time()
    flows = {state: entry for state, entry in session.get(FLOWS_KEY, {}).items() if now - entry["at"] < FLOW_TTL_S}
    flows[flow["state"]] = {"flow": flow, "next": next_url, "at": now}
    # Several tabs may sign in at once; keep the newest few.
    session[FLOWS_KEY] = dict(sorted(flows.items(), key=lambda kv: kv[1]["at"])[-MAX_PENDING_FLOWS:])
    return flow["auth_uri"]


def complete_sign_in(*, session, params: dict) -> tuple[User, str, dict]:
    """Finish the flow the redirect belongs to: (user, next URL, msal result)."""
    flows = dict(session.get(FLOWS_KEY, {}))
    entry = flows.pop(params.get("state", ""), None)
    session[FLOWS_KEY] = flows  # used once, whatever happens next
    if entry is None or time.time() - entry["at"] >= FLOW_TTL_S:
        raise SignInError("This sign-in link was already used or has expired. Please sign in again.", reason="state")
    if params.get("error"):
        logger.warning("Entra returned %s to the redirect URI", params.get("error"))
        raise SignInError(
            f"Microsoft Entra ID did not sign you in: {params.get('error_description') or params['error']}",
            reason="entra_error",
        )
    config = entra_config()
    cache = msal.SerializableTokenCache()
    app = build_app(cache=cache, config=config)
    try:
        result = app.acquire_token_by_auth_code_flow(entry["flow"], params, scopes=SCOPES)
    except (ValueError, RuntimeError) as exc:
        logger.warning("msal rejected the sign-in response: %s", type(exc).__name__)
        raise SignInError("The sign-in response did not match this sign-in. Please sign in again.") from exc
    if "error" in result:
        logger.warning("token endpoint refused the code: %s", result.get("error"))
        raise SignInError("Microsoft Entra ID did not accept this sign-in. Please sign in again.", reason="code")
    try:
        claims = validate_id_token(result["id_token"], nonce=expected_nonce(entry["flow"]["nonce"]), config=config)
    except TokenError as exc:
        logger.warning("ID token rejected: %s", exc.description)
        raise SignInError(f"The sign-in could not be verified: {exc.description}.", reason="id_token") from exc
    try:
        user = resolve_sign_in(claims=claims, config=config)
    except SignInRefused as exc:
        raise SignInError(exc.message, reason=exc.reason) from exc
    record_tokens(user=user, result=result)
    save_cache(user, cache)
    session["entra_logout_hint"] = claims.get("login_hint") or ""
    return user, entry["next"], result


class EntraUnreachable(Exception):
    """Entra could not be reached (network error or timeout): nothing is known about the account."""


def renew_access_token(*, user: User, force: bool = False) -> dict | None:
    """A valid access token (msal renews it when it is about to expire), or None: sign in again.

    A renewal's ID token is checked like a sign-in's and its roles re-applied, so a
    demotion, a disabled account or a tenant no longer allowed reaches live sessions.
    Raises ``EntraUnreachable`` when Entra cannot be reached.
    """
    config = entra_config()
    cache = load_cache(user)
    app = build_app(cache=cache, config=config)
    accounts = [a for a in app.get_accounts() if a.get("local_account_id") == user.azure_entra_id] or app.get_accounts()
    if not accounts:
        metrics.entra_token_refresh.labels("no_account").inc()  # nothing cached for this user: sign in again
        return None
    try:
        result = app.acquire_token_silent_with_error(SCOPES, account=accounts[0], force_refresh=force)
    except requests.RequestException as exc:
        logger.warning("Entra unreachable renewing the token of user %s: %s", user.pk, type(exc).__name__)
        metrics.entra_token_refresh.labels("unreachable").inc()
        raise EntraUnreachable(str(exc)) from exc
    if not result or "access_token" not in result:
        logger.info("silent renewal failed for user %s: %s", user.pk, (result or {}).get("error", "no token"))
        metrics.entra_token_refresh.labels("refused").inc()
        return None
    if result.get("id_token"):
        try:
            claims = validate_refreshed_id_token(
                result["id_token"], tenant_id=user.azure_tenant_id, object_id=user.azure_entra_id, config=config
            )
        except TokenError as exc:
            logger.warning("renewal of user %s refused: %s", user.pk, exc.description)
            metrics.entra_token_refresh.labels("refused").inc()
            return None
        apply_roles(user=user, claims=claims, config=config)
        user.save(update_fields=["is_staff", "is_superuser", "updated_at"])
    elif force:
        logger.warning("renewal of user %s returned no ID token", user.pk)
        return None
    record_tokens(user=user, result=result)
    save_cache(user, cache)
    metrics.entra_token_refresh.labels("renewed").inc()
    return result


def sign_out_url(*, user: User, logout_hint: str, post_logout_redirect_uri: str) -> str:
    """Entra's end-session endpoint for the user's tenant; drops the token cache."""
    config = entra_config()
    drop_cache(user)
    query = {"post_logout_redirect_uri": post_logout_redirect_uri}
    if logout_hint:
        query["logout_hint"] = logout_hint
    tenant = user.azure_tenant_id or config.tenant_id
    return f"{config.authority_host}/{tenant}/oauth2/v2.0/logout?{urlencode(query)}"
