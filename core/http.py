"""The one HTTP chokepoint for every external system: Entra ID, Microsoft Graph, GitHub.

Every call to the authority (msal's included, through ``http_client``), to the
keys endpoint and to Graph goes through ``session()``: one place for timeouts,
the CA bundle and logging (never of tokens).

``requests`` lets the ``REQUESTS_CA_BUNDLE`` environment variable override a
session's ``verify``; a machine-wide bundle would then silently replace
``ENTRA_CA_BUNDLE``. ``PinnedSession`` passes ``verify`` on every request,
which the environment cannot override.
"""

from __future__ import annotations

import logging

import requests

logger = logging.getLogger("core.http")

DEFAULT_TIMEOUT_S = 10.0


class PinnedSession(requests.Session):
    def __init__(self, *, ca_bundle: str | None = None, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        super().__init__()
        self.verify = ca_bundle or True
        self.timeout = timeout

    def request(self, method, url, *args, **kwargs):
        # An explicit per-request verify wins over REQUESTS_CA_BUNDLE.
        if kwargs.get("verify") in (None, True):
            kwargs["verify"] = self.verify
        kwargs.setdefault("timeout", self.timeout)
        response = super().request(method, url, *args, **kwargs)
        logger.info("%s %s -> %s", method, url.split("?", 1)[0], response.status_code)
        return response


def session(*, ca_bundle: str | None = None, timeout: float = DEFAULT_TIMEOUT_S) -> PinnedSession:
    return PinnedSession(ca_bundle=ca_bundle, timeout=timeout)
