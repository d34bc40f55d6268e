"""LocalEntra.reset(): a server shared by a test session returns to the state it was constructed with."""

from __future__ import annotations

from dataclasses import replace

import jwt
import msal
import pytest
import requests

from core import http
from devtools.local_entra import LocalEntra, LocalUser

pytestmark = pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended:UserWarning")

TENANT = "5e7e0000-0000-4000-8000-0000000000aa"
CLIENT_ID = "5e7e0000-0000-4000-8000-00000000c11e"
SECRET = "reset-test-secret"
REDIRECT_URI = "http://localhost:8000/auth/callback/"
ALICE = LocalUser(oid="a11ce000-0000-4000-8000-0000000000a1", tid=TENANT, email="alice@example.com", name="Alice")
BOB = LocalUser(oid="b0b00000-0000-4000-8000-0000000000b2", tid=TENANT, email="bob@example.com", name="Bob")


@pytest.fixture
def server(tmp_path):
    with LocalEntra(
        cert_dir=tmp_path,
        users=[ALICE, BOB],
        tenant_id=TENANT,
        client_id=CLIENT_ID,
        client_secret=SECRET,
        redirect_uris=[REDIRECT_URI],
        api_token_version=1,
        strict_tenants=True,
        graph_strict_select=True,
    ) as entra:
        yield entra


def app(server: LocalEntra) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        CLIENT_ID,
        client_credential=SECRET,
        authority=server.authority(),
        instance_discovery=False,
        http_client=server.http_session(),
    )


def sign_in(server: LocalEntra, client: msal.ConfidentialClientApplication, user: LocalUser) -> dict:
    flow = client.initiate_auth_code_flow(scopes=["User.Read"], redirect_uri=REDIRECT_URI)
    return client.acquire_token_by_auth_code_flow(flow, server.sign_in(flow["auth_uri"], user).params)


def test_reset_restores_the_users_it_was_constructed_with(server):
    carol = server.add_user(LocalUser(oid="cccccccc-0000-4000-8000-000000000003", tid=TENANT, email=None, name="C"))
    server.users[ALICE.oid] = replace(ALICE, email="alice.new@example.com")
    server.users[BOB.oid].roles.append("Platform.Admin")  # changed in place

    server.reset()

    assert server.users == {ALICE.oid: ALICE, BOB.oid: BOB}
    assert carol.oid not in server.users and BOB.roles == []


def test_reset_returns_to_the_first_signing_key_so_rotations_do_not_pile_up(server):
    first = server.current_kid
    before = server.id_token(ALICE, nonce=None)
    server.rotate_keys()
    server.rotate_keys()
    server.rotate_keys(keep_old=False)

    server.reset()

    assert server.kids == [first] and server.current_kid == first
    listed = server.http_session().get(f"{server.url}/{TENANT}/discovery/v2.0/keys").json()["keys"]
    assert [key["kid"] for key in listed] == [first]
    # The same key, not a new one: a token signed before still verifies with the JWKS.
    key = jwt.PyJWK(listed[0]).key
    assert jwt.decode(before, key, algorithms=["RS256"], audience=CLIENT_ID)["oid"] == ALICE.oid


def test_reset_clears_every_injected_fault(server):
    browser = server.http_session()
    keys_url = f"{server.url}/{TENANT}/discovery/v2.0/keys"
    server.jwks_down = True
    server.next_authorize_error = ("access_denied", "AADSTS65004: User declined to consent.")
    server.id_token_hook = lambda claims: "forged"
    server.unreachable = True
    with pytest.raises(requests.ConnectionError):
        browser.get(keys_url)

    server.reset()

    assert (server.jwks_down, server.next_authorize_error, server.id_token_hook) == (False, None, None)
    assert browser.get(keys_url).status_code == 200
    client = app(server)
    result = sign_in(server, client, ALICE)  # no authorize error, a signed id token
    assert result["id_token_claims"]["oid"] == ALICE.oid


def test_reset_restores_the_settings_it_was_constructed_with(server):
    server.redirect_uris.append("http://localhost:9999/elsewhere")
    server.api_token_version = 2
    server.strict_tenants = False
    server.graph_strict_select = False
    server.access_token_lifetime = 60
    server.clock_offset = -7200
    server.client_certificates.append(object())

    server.reset()

    assert server.redirect_uris == [REDIRECT_URI]
    assert (server.api_token_version, server.strict_tenants, server.graph_strict_select) == (1, True, True)
    assert (server.access_token_lifetime, server.clock_offset, server.client_certificates) == (3600, 0, [])


def test_reset_forgets_what_it_saw_and_what_it_handed_out(server):
    client = app(server)
    result = sign_in(server, client, ALICE)
    browser = server.http_session()
    browser.get(f"{server.url}/{TENANT}/discovery/v2.0/keys")
    browser.get(f"{server.url}/{TENANT}/oauth2/v2.0/logout")
    http.session(ca_bundle=str(server.ca_path)).get(
        f"{server.url}/v1.0/me", headers={"Authorization": f"Bearer {result['access_token']}"}
    )
    assert server.issued and server.token_requests and server.jwks_requests
    assert server.logout_requests and server.graph_requests and server.request_log

    server.reset()

    assert (server.issued, server.token_requests, server.jwks_requests) == ([], [], 0)
    assert (server.logout_requests, dict(server.graph_requests), server.request_log) == ([], {}, [])
    # Codes and refresh tokens of before the reset are unknown to it now.
    refreshed = client.acquire_token_by_refresh_token(result["refresh_token"], scopes=["User.Read"])
    assert refreshed["error"] == "invalid_grant" and "AADSTS9002313" in refreshed["error_description"]
