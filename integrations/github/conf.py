"""GitHub settings: checked once at start-up (``IntegrationsConfig.ready``), read through ``github_config()``."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

API_VERSION = "2022-11-28"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(name: str, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImproperlyConfigured(f"{name} must be an absolute https:// URL, not {value!r}")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ImproperlyConfigured(f"{name}: http:// is accepted only for a loopback host, not {value!r}")


def load_private_key(path: str):
    """The App's private key: PKCS#1 (as GitHub hands it out) or PKCS#8 PEM."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ImproperlyConfigured(f"GITHUB_APP_PRIVATE_KEY_FILE: cannot read {path}: {exc.strerror}") from exc
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured("GITHUB_APP_PRIVATE_KEY_FILE must be an RSA private key in PEM") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ImproperlyConfigured("GITHUB_APP_PRIVATE_KEY_FILE must be an RSA private key in PEM")
    return key


def check_settings(values: dict) -> None:
    """Stop start-up, naming the variable, when the GitHub integration is misconfigured."""
    for name in ("GITHUB_APP_PRIVATE_KEY_FILE", "GITHUB_APP_CLIENT_ID", "GITHUB_APP_CLIENT_SECRET"):
        if not values[name]:
            raise ImproperlyConfigured(f"{name} is required when GITHUB_APP_ID is set")
    if not str(values["GITHUB_APP_ID"]).isdigit():
        raise ImproperlyConfigured(f"GITHUB_APP_ID must be the App's numeric id, not {values['GITHUB_APP_ID']!r}")
    _check_url("GITHUB_API_URL", values["GITHUB_API_URL"])
    _check_url("GITHUB_WEB_URL", values["GITHUB_WEB_URL"])
    if not values["GITHUB_LOCAL"]:
        load_private_key(values["GITHUB_APP_PRIVATE_KEY_FILE"])
    bundle = values["GITHUB_CA_BUNDLE"]
    if bundle and not Path(bundle).is_file():
        raise ImproperlyConfigured(f"GITHUB_CA_BUNDLE: no such file {bundle!r}")
    for name in ("GITHUB_SYNC_MAX_ATTEMPTS", "GITHUB_WRITES_PER_MINUTE", "GITHUB_WRITES_PER_HOUR"):
        if values[name] < 1:
            raise ImproperlyConfigured(f"{name} must be at least 1")
    for name in ("GITHUB_SYNC_STALE_AFTER_S", "GITHUB_SYNC_RETRY_BASE_S", "GITHUB_SYNC_HEARTBEAT_S"):
        if values[name] <= 0:
            raise ImproperlyConfigured(f"{name} must be positive")
    if values["GITHUB_SYNC_HEARTBEAT_S"] * 3 > values["GITHUB_SYNC_STALE_AFTER_S"]:
        raise ImproperlyConfigured(
            "GITHUB_SYNC_STALE_AFTER_S must be at least three heartbeats (GITHUB_SYNC_HEARTBEAT_S)"
        )


@dataclass(frozen=True)
class GitHubConfig:
    app_id: str
    api_url: str
    web_url: str
    private_key_file: str
    client_id: str
    client_secret: str
    ca_bundle: str | None
    max_attempts: int
    stale_after_s: int
    retry_base_s: float
    heartbeat_s: float
    writes_per_minute: int
    writes_per_hour: int
    timeout: tuple[float, float]  # (connect, read)

    @property
    def is_github_com(self) -> bool:
        return urlsplit(self.api_url).hostname == "api.github.com"


@cache
def github_config() -> GitHubConfig:
    from django.conf import settings

    if not settings.GITHUB_ENABLED:
        raise ImproperlyConfigured("The GitHub integration is off: set GITHUB_APP_ID and the other GITHUB_APP_* values")
    return GitHubConfig(
        app_id=str(settings.GITHUB_APP_ID),
        api_url=settings.GITHUB_API_URL.rstrip("/"),
        web_url=settings.GITHUB_WEB_URL.rstrip("/"),
        private_key_file=settings.GITHUB_APP_PRIVATE_KEY_FILE,
        client_id=settings.GITHUB_APP_CLIENT_ID,
        client_secret=settings.GITHUB_APP_CLIENT_SECRET,
        ca_bundle=settings.GITHUB_CA_BUNDLE or None,
        max_attempts=settings.GITHUB_SYNC_MAX_ATTEMPTS,
        stale_after_s=settings.GITHUB_SYNC_STALE_AFTER_S,
        retry_base_s=settings.GITHUB_SYNC_RETRY_BASE_S,
        heartbeat_s=settings.GITHUB_SYNC_HEARTBEAT_S,
        writes_per_minute=settings.GITHUB_WRITES_PER_MINUTE,
        writes_per_hour=settings.GITHUB_WRITES_PER_HOUR,
        timeout=(settings.GITHUB_CONNECT_TIMEOUT_S, settings.GITHUB_READ_TIMEOUT_S),
    )


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs) -> None:
    if setting.startswith("GITHUB_"):
        github_config.cache_clear()
