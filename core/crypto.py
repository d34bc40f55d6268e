"""Keyed hashes kept in place of tokens, and Fernet encryption with one key per purpose."""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import cache

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver


def hash_token(token: str) -> str:
    """The keyed hash kept in place of a token: HMAC-SHA256 with ``TOKEN_HASH_KEY``, 64 hex digits."""
    return hmac.new(settings.TOKEN_HASH_KEY.encode(), token.encode(), hashlib.sha256).hexdigest()


@cache
def fernet(purpose: str, key: str = "") -> Fernet:
    """A Fernet for one purpose: ``key`` when given, else a key derived from ``SECRET_KEY`` for ``purpose``.

    Each purpose gets its own derived key, so a ciphertext of one purpose never decrypts as another's.
    """
    if not key:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(
            settings.SECRET_KEY.encode()
        )
        key = base64.urlsafe_b64encode(derived).decode()
    return Fernet(key)


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs) -> None:
    if setting == "SECRET_KEY" or setting.endswith("_KEY"):
        fernet.cache_clear()
