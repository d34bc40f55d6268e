"""Every bad input is refused with a clear page, changes no user, and is logged without the token."""

from __future__ import annotations

import base64
import html
import json
import logging
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from accounts.models import User
from tests.accounts.entra.conftest import ALICE, PERSONAL, TENANT, legacy_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(db):
    return legacy_user("alice@example.com")


def assert_refused(response, alice, caplog, *, text: str, tokens=()):
    assert response.status_code in (400, 401, 403), response.status_code
    page = html.unescape(response.content.decode())
    assert text in page, page[-600:]
    alice.refresh_from_db()
    assert alice.azure_entra_id is None and alice.requires_entra_migration
    assert User.objects.count() == 1
    assert "_auth_user_id" not in response.wsgi_request.session
    for token in tokens:
        assert token not in caplog.text


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def sign_in_with_id_token(browser, entra, forge):
    """Run the real flow; the token endpoint answers with ``forge(claims)`` as the ID token."""
    forged = []

    def hook(claims: dict) -> str:
        token = forge(dict(claims))
        forged.append(token)
        return token

    entra.id_token_hook = hook
    try:
        response = browser.sign_in(ALICE)
    finally:
        entra.id_token_hook = None
    return response, forged


def _now() -> int:
    return int(time.time())


FORGERIES = {
    "tampered signature": (
        lambda entra, c: entra.sign(c)[:-6] + ("AAAAAA" if not entra.sign(c).endswith("AAAAAA") else "BBBBBB"),
        "signature is invalid",
    ),
    "alg none": (lambda entra, c: f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(c)}.", "'none' is not accepted"),
    "HS256 signed with the public key": (
        lambda entra, c: entra.sign(c, algorithm="HS256", key=entra.public_key_pem()),
        "'HS256' is not accepted",
    ),
    "unknown signing key": (
        lambda entra, c: entra.sign(
            c, kid="not-a-known-key", key=rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ),
        "signed by an unknown key",
    ),
    "wrong audience": (lambda entra, c: entra.sign({**c, "aud": "some-other-app"}), "for another audience"),
    "wrong issuer": (
        lambda entra, c: entra.sign({**c, "iss": f"https://login.microsoftonline.com/{TENANT}/v2.0"}),
        "issuer does not match",
    ),
    "issuer of another tenant": (
        lambda entra, c: entra.sign({**c, "iss": entra.issuer("0b0b0000-0000-4000-8000-0000000000b0")}),
        "issuer does not match",
    ),
    "expired": (
        lambda entra, c: entra.sign({**c, "iat": _now() - 7200, "nbf": _now() - 7200, "exp": _now() - 3600}),
        "has expired",
    ),
    "not yet valid": (
        lambda entra, c: entra.sign({**c, "nbf": _now() + 3600, "iat": _now(), "exp": _now() + 7200}),
        "not valid yet",
    ),
    # Python's json reads NaN, and no comparison with NaN is true: such a token would never expire.
    "expiry NaN": (lambda entra, c: entra.sign({**c, "exp": float("nan")}), "malformed token"),
    "expiry a boolean": (lambda entra, c: entra.sign({**c, "exp": True}), "times are not numbers"),
    # msal checks the nonce too, and first: its refusal is what the page shows.
    "nonce mismatch": (lambda entra, c: entra.sign({**c, "nonce": "0" * 64}), "did not match this sign-in"),
    "missing oid": (lambda entra, c: entra.sign({k: v for k, v in c.items() if k != "oid"}), "no 'oid' claim"),
    "missing tid": (lambda entra, c: entra.sign({k: v for k, v in c.items() if k != "tid"}), "no 'tid' claim"),
}


@pytest.mark.parametrize("case", list(FORGERIES))
def test_forged_id_tokens_are_refused(browser, entra, alice, caplog, case):
    forge, message = FORGERIES[case]
    caplog.set_level(logging.DEBUG)
    response, forged = sign_in_with_id_token(browser, entra, lambda claims: forge(entra, claims))
    assert forged, "the local Entra did not use the forged token"
    assert_refused(response, alice, caplog, text=message, tokens=forged)


def test_a_tenant_outside_the_allow_list_is_refused(browser, alice, caplog):
    response = browser.sign_in(PERSONAL)
    assert_refused(response, alice, caplog, text="tenant that is not allowed")


def test_an_error_returned_by_entra_is_shown(browser, entra, alice, caplog):
    entra.next_authorize_error = ("access_denied", "AADSTS65004: User declined to consent.")
    query = browser.pick_error(browser.start())
    response = browser.callback(query)
    assert_refused(response, alice, caplog, text="User declined to consent")


def test_a_replayed_state_is_refused(browser, alice, caplog):
    query = browser.pick(browser.start(), ALICE)
    assert browser.callback(query).status_code == 302
    browser.client.logout()
    User.objects.filter(pk=alice.pk).update(azure_entra_id=None, azure_tenant_id=None, requires_entra_migration=True)
    response = browser.callback(query)
    assert_refused(response, alice, caplog, text="already used or has expired")


def test_a_state_that_was_never_issued_is_refused(browser, alice, caplog):
    query = browser.pick(browser.start(), ALICE)
    response = browser.callback({**query, "state": "forged-state"})
    assert_refused(response, alice, caplog, text="already used or has expired")


def test_a_replayed_authorization_code_is_refused(browser, alice, caplog):
    first = browser.pick(browser.start(), ALICE)
    assert browser.callback(first).status_code == 302
    browser.client.logout()
    User.objects.filter(pk=alice.pk).update(azure_entra_id=None, azure_tenant_id=None, requires_entra_migration=True)
    # A new sign-in of this browser, completed with the code already redeemed.
    second = browser.pick(browser.start(), ALICE)
    response = browser.callback({**second, "code": first["code"]})
    assert_refused(response, alice, caplog, text="did not accept this sign-in", tokens=[first["code"]])


@pytest.mark.parametrize("next_url", ["https://evil.example/", "//evil.example/path", "javascript:alert(1)"])
def test_next_pointing_at_another_site_is_refused(client, entra, next_url):
    response = client.get("/auth/login/", {"next": next_url})
    assert response.status_code == 400
    assert b"must be on this site" in response.content


def test_our_own_nonce_check_refuses_a_token_of_another_sign_in(entra):
    from accounts.entra.tokens import TokenError, expected_nonce, validate_id_token

    token = entra.id_token(ALICE, nonce=expected_nonce("this-sign-in"))
    assert validate_id_token(token, nonce=expected_nonce("this-sign-in"))["oid"] == ALICE.oid
    with pytest.raises(TokenError, match="nonce does not match"):
        validate_id_token(token, nonce=expected_nonce("another-sign-in"))
