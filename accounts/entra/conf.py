"""Entra settings: checked once at start-up, read through ``entra_config()``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
# v1 access tokens (Graph's, and an API's that accepts v1) name the cloud's token
# service rather than the sign-in host; any other host (the local Entra) names itself.
# US Government: Microsoft's table of sovereign-cloud issuers gives sts.windows.net for v1,
# and some of its SDKs expect login.microsoftonline.us; both are accepted (each with the tenant).
V1_ISSUER_HOSTS = {
    "login.microsoftonline.com": ("https://sts.windows.net",),
    "login.microsoftonline.us": ("https://sts.windows.net", "https://login.microsoftonline.us"),
    "login.chinacloudapi.cn": ("https://sts.chinacloudapi.cn",),
    "login.partner.microsoftonline.cn": ("https://sts.chinacloudapi.cn",),
}


def _url(name: str, value: str, *, https: bool) -> None:
    parts = urlsplit(value)
    schemes = {"https"} if https else {"http", "https"}
    if parts.scheme not in schemes or not parts.hostname:
        need = "an https:// URL" if https else "an absolute http(s):// URL"
        raise ImproperlyConfigured(f"{name} must be {need}, not {value!r}")


def load_client_certificate(path: str) -> tuple[str, str]:
    """(private key PEM, certificate PEM) from one PEM file holding both."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    name = "ENTRA_CLIENT_CERTIFICATE_FILE"
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ImproperlyConfigured(f"{name}: cannot read {path}: {exc.strerror}") from exc
    try:
        key = serialization.load_pem_private_key(data, password=None)
        certificate = x509.load_pem_x509_certificate(data)
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"{name} must be a PEM file with the private key and the certificate") from exc
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return key_pem, certificate.public_bytes(serialization.Encoding.PEM).decode()


def check_settings(values: dict) -> None:
    """Stop start-up, naming the variable, when Entra sign-in is misconfigured."""
    if not values["ENTRA_TENANT_ID"]:
        raise ImproperlyConfigured("ENTRA_TENANT_ID is required when ENTRA_CLIENT_ID is set")
    for name in ("ENTRA_TENANT_ID", "ENTRA_CLIENT_ID"):
        if not GUID.match(values[name]):
            raise ImproperlyConfigured(f"{name} must be a GUID, not {values[name]!r}")
    if not values["ENTRA_CLIENT_SECRET"] and not values["ENTRA_CLIENT_CERTIFICATE_FILE"]:
        raise ImproperlyConfigured("ENTRA_CLIENT_SECRET (or ENTRA_CLIENT_CERTIFICATE_FILE) is required")
    if values["ENTRA_CLIENT_CERTIFICATE_FILE"]:
        load_client_certificate(values["ENTRA_CLIENT_CERTIFICATE_FILE"])
    if not values["ENTRA_REDIRECT_URI"]:
        raise ImproperlyConfigured("ENTRA_REDIRECT_URI is required")
    _url("ENTRA_REDIRECT_URI", values["ENTRA_REDIRECT_URI"], https=False)
    redirect = urlsplit(values["ENTRA_REDIRECT_URI"])
    if redirect.scheme == "http" and redirect.hostname not in LOOPBACK_HOSTS:
        # The authorization code travels in this URL: in clear text only on this machine (as Entra allows).
        raise ImproperlyConfigured(
            "ENTRA_REDIRECT_URI must be https:// (http:// only on localhost, 127.0.0.1 or ::1), "
            f"not {values['ENTRA_REDIRECT_URI']!r}"
        )
    _url("ENTRA_AUTHORITY_HOST", values["ENTRA_AUTHORITY_HOST"], https=True)
    _url("GRAPH_URL", values["GRAPH_URL"], https=True)
    for tenant in values["ENTRA_ALLOWED_TENANTS"]:
        if not GUID.match(tenant):
            raise ImproperlyConfigured(f"ENTRA_ALLOWED_TENANTS must list tenant GUIDs, not {tenant!r}")
    for tenant in values["ENTRA_TENANT_DOMAINS"]:
        if not GUID.match(tenant):
            raise ImproperlyConfigured(f"ENTRA_TENANT_DOMAINS: {tenant!r} is not a tenant GUID")
    for tenant in values["ENTRA_ADMIN_TENANTS"]:
        if tenant not in values["ENTRA_ALLOWED_TENANTS"]:
            raise ImproperlyConfigured(f"ENTRA_ADMIN_TENANTS: {tenant!r} is not in ENTRA_ALLOWED_TENANTS")
    if values["ENTRA_LOGIN_FLOWS_PER_MINUTE"] < 1:
        raise ImproperlyConfigured("ENTRA_LOGIN_FLOWS_PER_MINUTE must be at least 1")
    if not values["ENTRA_API_AUDIENCE"]:
        raise ImproperlyConfigured("ENTRA_API_AUDIENCE is required")
    bundle = values["ENTRA_CA_BUNDLE"]
    if bundle and not values["ENTRA_LOCAL"] and not Path(bundle).is_file():
        raise ImproperlyConfigured(f"ENTRA_CA_BUNDLE: no such file {bundle!r}")
    key = values["ENTRA_TOKEN_CACHE_KEY"]
    if key:
        from cryptography.fernet import Fernet

        try:
            Fernet(key)
        except (ValueError, TypeError) as exc:
            raise ImproperlyConfigured("ENTRA_TOKEN_CACHE_KEY must be a Fernet key (32 url-safe base64 bytes)") from exc


@dataclass(frozen=True)
class EntraConfig:
    tenant_id: str
    client_id: str
    client_secret: str
    redirect_uri: str
    authority_host: str
    graph_url: str
    ca_bundle: str | None
    allowed_tenants: tuple[str, ...]
    api_audience: str
    api_scope: str
    api_app_role: str
    tenant_domains: dict[str, list[str]]
    jit_create: bool
    staff_roles: frozenset[str]
    superuser_roles: frozenset[str]
    # Tenants whose role assignments may make staff or superusers here (each tenant assigns
    # this app's roles in its own copy of the app, so only ours can be trusted).
    admin_tenants: frozenset[str]
    api_allowed_clients: frozenset[str]
    login_flows_per_minute: int
    clock_skew_s: int
    keys_ttl_s: int
    keys_min_refresh_s: int
    local: bool

    @property
    def authority(self) -> str:
        # Users of other allowed tenants get tokens of their own tenant only
        # through the multi-tenant endpoint; the allow-list is checked on every token.
        multi = set(self.allowed_tenants) - {self.tenant_id}
        return f"{self.authority_host}/{'organizations' if multi else self.tenant_id}"

    def issuer(self, tenant_id: str) -> str:
        return f"{self.authority_host}/{tenant_id}/v2.0"

    def v1_issuers(self, tenant_id: str) -> tuple[str, ...]:
        host = (urlsplit(self.authority_host).hostname or "").lower()
        return tuple(f"{base}/{tenant_id}/" for base in V1_ISSUER_HOSTS.get(host, (self.authority_host,)))

    def jwks_uri(self) -> str:
        return f"{self.authority_host}/{self.tenant_id}/discovery/v2.0/keys"

    @property
    def is_microsoft_host(self) -> bool:
        host = urlsplit(self.authority_host).hostname or ""
        return host.endswith((".microsoftonline.com", ".microsoftonline.us", ".partner.microsoftonline.cn"))

    @cached_property  # read for every first-seen access token
    def api_audiences(self) -> frozenset[str]:
        # Not the bare client id: that is every ID token's audience.
        return frozenset({self.api_audience, f"api://{self.client_id}"})


@cache
def entra_config() -> EntraConfig:
    from django.conf import settings

    if not settings.ENTRA_ENABLED:
        raise ImproperlyConfigured("Entra sign-in is not configured: set ENTRA_CLIENT_ID and the other ENTRA_* values")
    return EntraConfig(
        tenant_id=settings.ENTRA_TENANT_ID,
        client_id=settings.ENTRA_CLIENT_ID,
        client_secret=settings.ENTRA_CLIENT_SECRET,
        redirect_uri=settings.ENTRA_REDIRECT_URI,
        authority_host=settings.ENTRA_AUTHORITY_HOST.rstrip("/"),
        graph_url=settings.GRAPH_URL.rstrip("/"),
        ca_bundle=settings.ENTRA_CA_BUNDLE or None,
        allowed_tenants=tuple(settings.ENTRA_ALLOWED_TENANTS),
        api_audience=settings.ENTRA_API_AUDIENCE,
        api_scope=settings.ENTRA_API_SCOPE,
        api_app_role=settings.ENTRA_API_APP_ROLE,
        tenant_domains={k: [d.lower() for d in v] for k, v in settings.ENTRA_TENANT_DOMAINS.items()},
        jit_create=settings.ENTRA_JIT_CREATE,
        staff_roles=frozenset(settings.ENTRA_STAFF_ROLES),
        superuser_roles=frozenset(settings.ENTRA_SUPERUSER_ROLES),
        admin_tenants=frozenset(settings.ENTRA_ADMIN_TENANTS or [settings.ENTRA_TENANT_ID]),
        api_allowed_clients=frozenset(settings.ENTRA_API_ALLOWED_CLIENTS),
        login_flows_per_minute=settings.ENTRA_LOGIN_FLOWS_PER_MINUTE,
        clock_skew_s=settings.ENTRA_CLOCK_SKEW_S,
        keys_ttl_s=settings.ENTRA_KEYS_TTL_S,
        keys_min_refresh_s=settings.ENTRA_KEYS_MIN_REFRESH_S,
        local=settings.ENTRA_LOCAL,
    )


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs) -> None:
    if setting.startswith(("ENTRA_", "GRAPH_")):
        entra_config.cache_clear()
