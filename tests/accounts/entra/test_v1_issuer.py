"""v1 tokens name the cloud's security token service, which is not always the sign-in host."""

from __future__ import annotations

from dataclasses import fields

import pytest

from accounts.entra.conf import EntraConfig

TID = "7a3f0000-0000-4000-8000-00000000c0de"


def config(authority_host: str) -> EntraConfig:
    # The v1 issuer depends on the authority host alone: the other fields stay empty.
    return EntraConfig(**{f.name: None for f in fields(EntraConfig)} | {"authority_host": authority_host})


@pytest.mark.parametrize(
    ("authority_host", "v1_issuers"),
    [
        ("https://login.microsoftonline.com", [f"https://sts.windows.net/{TID}/"]),
        ("https://LOGIN.microsoftonline.com", [f"https://sts.windows.net/{TID}/"]),
        # US Government: what Microsoft's table of sovereign clouds says, and what some of its SDKs expect.
        (
            "https://login.microsoftonline.us",
            [f"https://sts.windows.net/{TID}/", f"https://login.microsoftonline.us/{TID}/"],
        ),
        ("https://login.chinacloudapi.cn", [f"https://sts.chinacloudapi.cn/{TID}/"]),  # operated by 21Vianet
        ("https://login.partner.microsoftonline.cn", [f"https://sts.chinacloudapi.cn/{TID}/"]),
        # The local Entra, or any other host: its own address.
        ("https://127.0.0.1:8443", [f"https://127.0.0.1:8443/{TID}/"]),
        ("https://login.example.com", [f"https://login.example.com/{TID}/"]),
    ],
)
def test_the_v1_issuers_follow_the_authority_host(authority_host, v1_issuers):
    assert list(config(authority_host).v1_issuers(TID)) == v1_issuers


def test_a_local_entra_host_never_issues_as_microsoft():
    assert not any("sts.windows.net" in issuer for issuer in config("https://127.0.0.1:8443").v1_issuers(TID))
