"""The local Entra ID and Graph stand-in, driven by msal and requests as the project drives the real ones."""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlsplit

import jwt
import msal
import pytest
import requests

from core import http
from devtools.local_entra import LocalEntra, LocalUser, solid_png
from devtools.local_entra.graph import GRAPH_APP_ID

pytestmark = pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended:UserWarning")

TENANT = "6f1c0a52-0000-4000-8000-0000000000aa"
OTHER_TENANT = "6f1c0a52-0000-4000-8000-0000000000bb"
CLIENT_ID = "0c0ffee0-0000-4000-8000-00000000c11e"
SECRET = "local-test-secret"
API = f"api://{CLIENT_ID}"
REDIRECT_URI = "http://localhost:8000/auth/entra/callback"
SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


@pytest.fixture
def alice() -> LocalUser:
    return LocalUser(
        oid="a11ce000-0000-4000-8000-000000000001",
        tid=TENANT,
        email="alice@example.com",
        name="Alice Admin",
        roles=["Admin"],
        xms_edov=True,
        company_name="Example Ltd",
        department="Platform",
        photo=solid_png((10, 20, 30)),
    )


@pytest.fixture
def bob() -> LocalUser:
    return LocalUser(oid="b0b00000-0000-4000-8000-000000000002", tid=TENANT, email="bob@example.com", name="Bob")


@pytest.fixture
def charlie() -> LocalUser:
    return LocalUser(
        oid="c4a11e00-0000-4000-8000-000000000003", tid=OTHER_TENANT, email="charlie@other.example", name="Charlie"
    )


@pytest.fixture
def server(tmp_path, alice, bob, charlie):
    with LocalEntra(
        cert_dir=tmp_path / "certs",
        users=[alice, bob, charlie],
        tenant_id=TENANT,
        client_id=CLIENT_ID,
        client_secret=SECRET,
        api_audience=API,
    ) as entra:
        yield entra


def make_app(server: LocalEntra, *, secret: str = SECRET, tenant: str | None = None):
    return msal.ConfidentialClientApplication(
        CLIENT_ID,
        client_credential=secret,
        authority=server.authority(tenant),
        instance_discovery=False,
        http_client=http.session(ca_bundle=str(server.ca_path)),
    )


@pytest.fixture
def app(server):
    return make_app(server)


def sign_in(server, app, user, *, scopes=("User.Read",), **flow_kwargs):
    """The whole browser round trip; returns (flow, the redirect's parameters)."""
    flow = app.initiate_auth_code_flow(scopes=list(scopes), redirect_uri=REDIRECT_URI, **flow_kwargs)
    return flow, server.sign_in(flow["auth_uri"], user).params


class SignInPage(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.title, self.action, self.hidden, self.buttons, self._in_title = "", "", {}, [], False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self._in_title = tag == "title"
        if tag == "form":
            self.action = a["action"]
        elif tag == "input" and a.get("type") == "hidden":
            self.hidden[a["name"]] = a["value"]
        elif tag == "button":
            self.buttons.append((a.get("name"), a.get("value")))

    def handle_data(self, data):
        if self._in_title:
            self.title += data

    def handle_endtag(self, tag):
        self._in_title = False


def parse_page(text: str) -> SignInPage:
    page = SignInPage()
    page.feed(text)
    return page


def jwks_key(server, token):
    keys = jwt.PyJWKSet.from_dict(http.session(ca_bundle=str(server.ca_path)).get(jwks_uri(server)).json())
    return keys[jwt.get_unverified_header(token)["kid"]].key


def jwks_uri(server, tenant=TENANT):
    return f"{server.url}/{tenant}/discovery/v2.0/keys"


def graph(server, path, token=None, **headers):
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return http.session(ca_bundle=str(server.ca_path)).get(f"{server.url}{path}", headers=headers)


# --- the authorization code flow, as msal runs it ------------------------------------------------------------


def test_msal_runs_the_authorization_code_flow_with_pkce(server, app, alice):
    browser = http.session(ca_bundle=str(server.ca_path))
    flow = app.initiate_auth_code_flow(scopes=["User.Read"], redirect_uri=REDIRECT_URI)
    sent = dict(parse_qsl(urlsplit(flow["auth_uri"]).query))
    assert sent["code_challenge_method"] == "S256"

    page = browser.get(flow["auth_uri"])
    assert page.status_code == 200
    form = parse_page(page.text)
    assert form.title == "Sign in — local Entra ID"
    assert ("user", alice.oid) in form.buttons
    assert form.hidden["state"] == flow["state"]
    pressed = browser.post(f"{server.url}{form.action}", data={**form.hidden, "user": alice.oid}, allow_redirects=False)
    assert pressed.status_code == 302
    location = pressed.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?")
    query = dict(parse_qsl(urlsplit(location).query))
    assert set(query) == {"code", "state", "session_state", "client_info"}

    result = app.acquire_token_by_auth_code_flow(flow, query)

    assert "error" not in result, result
    claims = result["id_token_claims"]
    assert (claims["oid"], claims["tid"], claims["email"]) == (alice.oid, TENANT, "alice@example.com")
    # msal sends a hash of its nonce, and checks the id token carries that hash back.
    assert claims["nonce"] == sent["nonce"] == hashlib.sha256(flow["nonce"].encode()).hexdigest()
    assert claims["roles"] == ["Admin"] and claims["xms_edov"] is True
    assert claims["sub"] != alice.oid  # pairwise, as Entra's
    assert result["access_token"] and result["refresh_token"]
    redeemed = server.token_requests[-1]
    assert redeemed["grant_type"] == "authorization_code"
    assert redeemed["code_verifier"] == flow["code_verifier"]
    assert {query["code"], result["access_token"], result["refresh_token"], result["id_token"]} <= set(server.issued)

    verified = jwt.decode(
        result["id_token"],
        jwks_key(server, result["id_token"]),
        algorithms=["RS256"],
        audience=CLIENT_ID,
        issuer=server.issuer(TENANT),
    )
    assert verified["oid"] == alice.oid
    assert jwt.get_unverified_header(result["id_token"])["kid"] == server.current_kid


def test_graph_access_token_is_a_v1_token_for_graph(server, app, alice):
    flow, query = sign_in(server, app, alice)
    result = app.acquire_token_by_auth_code_flow(flow, query)

    claims = jwt.decode(
        result["access_token"], jwks_key(server, result["access_token"]), algorithms=["RS256"], audience=GRAPH_APP_ID
    )
    assert claims["iss"] == server.issuer_v1(TENANT) == f"{server.url}/{TENANT}/"
    assert claims["ver"] == "1.0"
    assert "User.Read" in claims["scp"].split()
    assert claims["oid"] == alice.oid


def test_form_post_response_mode(server, app, alice):
    flow = app.initiate_auth_code_flow(scopes=["User.Read"], redirect_uri=REDIRECT_URI, response_mode="form_post")
    answer = server.sign_in(flow["auth_uri"], alice)

    assert (answer.method, answer.redirect_uri) == ("POST", REDIRECT_URI)
    result = app.acquire_token_by_auth_code_flow(flow, answer.params)
    assert result["id_token_claims"]["oid"] == alice.oid


def test_an_api_scope_gets_a_token_for_the_api(server, app, alice):
    flow, query = sign_in(server, app, alice, scopes=[f"{API}/access_as_user"])
    result = app.acquire_token_by_auth_code_flow(flow, query)

    claims = jwt.decode(
        result["access_token"],
        jwks_key(server, result["access_token"]),
        algorithms=["RS256"],
        audience=API,
        issuer=server.issuer(TENANT),
    )
    assert (claims["scp"], claims["roles"], claims["azp"]) == ("access_as_user", ["Admin"], CLIENT_ID)


def test_scopes_of_two_resources_are_refused(server, app, alice):
    flow, query = sign_in(server, app, alice, scopes=["User.Read", f"{API}/access_as_user"])
    result = app.acquire_token_by_auth_code_flow(flow, query)

    assert result["error"] == "invalid_scope"
    assert "AADSTS28000" in result["error_description"]


def test_silent_token_refreshes_through_the_refresh_token(server, app, alice):
    flow, query = sign_in(server, app, alice)
    first = app.acquire_token_by_auth_code_flow(flow, query)
    [account] = app.get_accounts()
    assert account["local_account_id"] == alice.oid

    refreshed = app.acquire_token_silent(["User.Read"], account=account, force_refresh=True)

    assert refreshed["token_source"] == "identity_provider"
    request = server.token_requests[-1]
    assert request["grant_type"] == "refresh_token"
    assert request["refresh_token"] == first["refresh_token"]
    assert refreshed["access_token"] != first["access_token"]
    assert refreshed["id_token_claims"]["oid"] == alice.oid
    assert "nonce" not in refreshed["id_token_claims"]


def test_revoked_and_unknown_refresh_tokens_are_invalid_grant(server, app, alice):
    flow, query = sign_in(server, app, alice)
    first = app.acquire_token_by_auth_code_flow(flow, query)

    assert server.revoke_refresh_tokens(alice) == 1
    revoked = app.acquire_token_by_refresh_token(first["refresh_token"], scopes=["User.Read"])
    unknown = app.acquire_token_by_refresh_token("not-a-refresh-token", scopes=["User.Read"])

    assert revoked["error"] == unknown["error"] == "invalid_grant"
    assert "AADSTS50173" in revoked["error_description"]


def test_a_replayed_code_is_invalid_grant(server, app, alice):
    flow, query = sign_in(server, app, alice)
    assert "error" not in app.acquire_token_by_auth_code_flow(dict(flow), query)

    replay = app.acquire_token_by_auth_code_flow(dict(flow), query)

    assert replay["error"] == "invalid_grant"
    assert "AADSTS54005: OAuth2 Authorization code was already redeemed" in replay["error_description"]


def test_a_wrong_pkce_verifier_is_invalid_grant(server, app, alice):
    flow, query = sign_in(server, app, alice)
    result = app.acquire_token_by_auth_code_flow({**flow, "code_verifier": "x" * 43}, query)

    assert result["error"] == "invalid_grant"
    assert "AADSTS50148" in result["error_description"]
    assert "access_token" not in result


def test_an_expired_code_is_invalid_grant(server, app, alice):
    flow, query = sign_in(server, app, alice)
    server.clock_offset = 601

    result = app.acquire_token_by_auth_code_flow(flow, query)

    assert result["error"] == "invalid_grant"
    assert "AADSTS70008" in result["error_description"]


def test_a_wrong_client_secret_is_invalid_client(server, app, alice):
    flow, query = sign_in(server, app, alice)
    result = make_app(server, secret="not-the-secret").acquire_token_by_auth_code_flow(flow, query)

    assert result["error"] == "invalid_client"
    assert "AADSTS7000215" in result["error_description"]
    basic = http.session(ca_bundle=str(server.ca_path)).post(
        f"{server.url}/{TENANT}/oauth2/v2.0/token",
        data={"grant_type": "authorization_code", "code": query["code"], "redirect_uri": REDIRECT_URI},
        auth=(CLIENT_ID, "not-the-secret"),
    )
    assert (basic.status_code, basic.json()["error"]) == (401, "invalid_client")
    # The code was never redeemed: the right client still can.
    assert "access_token" in app.acquire_token_by_auth_code_flow(flow, query)


# --- the authorize endpoint ---------------------------------------------------------------------------------


def authorize_url(server, tenant=TENANT, **params):
    base = {
        "client_id": CLIENT_ID,
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile User.Read",
        "state": "st",
        "nonce": "n",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
    }
    base.update(params)
    return f"{server.url}/{tenant}/oauth2/v2.0/authorize", {k: v for k, v in base.items() if v is not None}


@pytest.mark.parametrize(
    "change",
    [
        {"code_challenge": None},
        {"code_challenge_method": None},
        {"code_challenge_method": "plain"},
        {"client_id": "someone-else"},
        {"redirect_uri": None},
        {"response_type": "token"},
    ],
)
def test_authorize_refuses_requests_without_pkce_or_a_known_client(server, change):
    url, params = authorize_url(server, **change)
    page = http.session(ca_bundle=str(server.ca_path)).get(url, params=params, allow_redirects=False)

    assert page.status_code == 400
    assert "AADSTS" in page.text


def test_next_authorize_error_goes_back_to_the_redirect_uri_once(server):
    server.next_authorize_error = ("access_denied", "AADSTS65004: User declined to consent.")
    browser = http.session(ca_bundle=str(server.ca_path))
    url, params = authorize_url(server)

    refused = browser.get(url, params=params, allow_redirects=False)

    assert refused.status_code == 302
    location = refused.headers["Location"]
    assert location.split("?")[0] == REDIRECT_URI
    assert dict(parse_qsl(urlsplit(location).query)) == {
        "error": "access_denied",
        "error_description": "AADSTS65004: User declined to consent.",
        "state": "st",
    }
    assert server.next_authorize_error is None
    assert browser.get(url, params=params, allow_redirects=False).status_code == 200


def test_strict_tenants_sign_in_their_own_users_and_organizations_anyone(server, alice, charlie):
    browser = http.session(ca_bundle=str(server.ca_path))

    def offered(tenant):
        url, params = authorize_url(server, tenant=tenant)
        return [value for _, value in parse_page(browser.get(url, params=params).text).buttons]

    assert charlie.oid in offered(TENANT)  # by default anyone, anywhere
    server.strict_tenants = True
    assert alice.oid in offered(TENANT) and charlie.oid not in offered(TENANT)
    assert charlie.oid in offered("organizations")
    app = make_app(server, tenant="organizations")
    flow, query = sign_in(server, app, charlie)
    claims = app.acquire_token_by_auth_code_flow(flow, query)["id_token_claims"]
    assert (claims["tid"], claims["iss"]) == (OTHER_TENANT, server.issuer(OTHER_TENANT))


# --- discovery and keys -------------------------------------------------------------------------------------


def test_discovery_documents(server):
    browser = http.session(ca_bundle=str(server.ca_path))
    concrete = browser.get(f"{server.url}/{TENANT}/v2.0/.well-known/openid-configuration").json()
    organizations = browser.get(f"{server.url}/organizations/v2.0/.well-known/openid-configuration").json()

    assert concrete["issuer"] == server.issuer(TENANT)
    assert concrete["authorization_endpoint"] == f"{server.url}/{TENANT}/oauth2/v2.0/authorize"
    assert concrete["token_endpoint"] == f"{server.url}/{TENANT}/oauth2/v2.0/token"
    assert concrete["jwks_uri"] == jwks_uri(server)
    assert concrete["end_session_endpoint"] == f"{server.url}/{TENANT}/oauth2/v2.0/logout"
    assert concrete["id_token_signing_alg_values_supported"] == ["RS256"]
    assert organizations["issuer"] == f"{server.url}/{{tenantid}}/v2.0"
    unknown = browser.get(f"{server.url}/not-a-tenant/v2.0/.well-known/openid-configuration")
    assert (unknown.status_code, unknown.json()["error"]) == (400, "invalid_tenant")
    assert browser.get(f"{server.url}/{TENANT}/nothing/here").status_code == 404
    assert browser.post(f"{server.url}/{TENANT}/v2.0/.well-known/openid-configuration").status_code == 404


def test_rotated_keys_sign_new_tokens_and_the_jwks_lists_both(server, app, alice):
    old_kid = server.current_kid
    flow, query = sign_in(server, app, alice)
    before = app.acquire_token_by_auth_code_flow(flow, query)["id_token"]

    new_kid = server.rotate_keys()
    flow, query = sign_in(server, app, alice)
    after = app.acquire_token_by_auth_code_flow(flow, query)["id_token"]

    assert new_kid != old_kid
    assert jwt.get_unverified_header(before)["kid"] == old_kid
    assert jwt.get_unverified_header(after)["kid"] == new_kid
    keys = http.session(ca_bundle=str(server.ca_path)).get(jwks_uri(server)).json()["keys"]
    assert {key["kid"] for key in keys} == {old_kid, new_kid}
    assert all(key["kty"] == "RSA" and key["use"] == "sig" and key["n"] and key["e"] for key in keys)
    for token in (before, after):
        jwt.decode(token, jwks_key(server, token), algorithms=["RS256"], audience=CLIENT_ID)

    newest = server.rotate_keys(keep_old=False)
    keys = http.session(ca_bundle=str(server.ca_path)).get(jwks_uri(server)).json()["keys"]
    assert [key["kid"] for key in keys] == [newest]


def test_jwks_down_answers_503_and_fetches_are_counted(server):
    browser = http.session(ca_bundle=str(server.ca_path))
    assert server.jwks_requests == 0

    assert browser.get(jwks_uri(server)).status_code == 200
    server.jwks_down = True
    assert browser.get(jwks_uri(server)).status_code == 503
    server.jwks_down = False
    assert browser.get(f"{server.url}/organizations/discovery/v2.0/keys").status_code == 200

    assert server.jwks_requests == 3


# --- tokens the tests forge -----------------------------------------------------------------------------------


def test_access_token_versions_have_entras_issuers(server, alice):
    v1 = jwt.decode(server.access_token(alice, audience=API, version=1), options={"verify_signature": False})
    v2 = jwt.decode(server.access_token(alice, audience=API), options={"verify_signature": False})

    assert (v1["iss"], v1["ver"], v1["appid"]) == (f"{server.url}/{TENANT}/", "1.0", CLIENT_ID)
    assert (v2["iss"], v2["ver"], v2["azp"]) == (server.issuer(TENANT), "2.0", CLIENT_ID)


def test_id_token_overrides_set_and_remove_claims(server, bob):
    token = server.id_token(bob, nonce=None, exp=1, email=None, tid=OTHER_TENANT)
    claims = jwt.decode(token, options={"verify_signature": False})

    assert (claims["exp"], claims["tid"]) == (1, OTHER_TENANT)
    assert "email" not in claims and "nonce" not in claims and "xms_edov" not in claims and "roles" not in claims
    assert token in server.issued


def test_sign_forges_the_tokens_a_validator_must_refuse(server, alice):
    claims = {"aud": CLIENT_ID, "iss": server.issuer(TENANT), "exp": int(time.time()) + 60, "oid": alice.oid}
    pem = server.public_key_pem()

    confused = server.sign(claims, algorithm="HS256", key=pem)
    unsigned = server.sign(claims, algorithm="none")
    unknown_kid = server.sign(claims, kid="no-such-kid")

    assert jwt.get_unverified_header(confused)["alg"] == "HS256"
    # It really is an HMAC under the PEM: a validator that trusted the header would accept it.
    signing_input, _, signature = confused.rpartition(".")
    expected = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    assert jwt.utils.base64url_decode(signature) == expected
    assert unsigned.endswith(".") and jwt.get_unverified_header(unsigned)["alg"] == "none"
    assert jwt.get_unverified_header(unknown_kid)["kid"] == "no-such-kid"
    with pytest.raises(jwt.InvalidTokenError):
        jwt.decode(confused, jwks_key(server, server.sign(claims)), algorithms=["RS256"], audience=CLIENT_ID)


# --- Graph --------------------------------------------------------------------------------------------------


def test_graph_me_and_photo_with_an_etag(server, app, alice, bob):
    flow, query = sign_in(server, app, alice)
    token = app.acquire_token_by_auth_code_flow(flow, query)["access_token"]

    me = graph(server, "/v1.0/me", token)
    assert me.status_code == 200
    assert {k: v for k, v in me.json().items() if not k.startswith("@")} == {
        "id": alice.oid,
        "displayName": "Alice Admin",
        "mail": "alice@example.com",
        "userPrincipalName": "alice@example.com",
        "companyName": "Example Ltd",
        "department": "Platform",
        "jobTitle": None,
    }
    selected = graph(server, "/v1.0/me?$select=id,department", token).json()
    assert {k for k in selected if not k.startswith("@")} == {"id", "department"}

    photo = graph(server, "/v1.0/me/photo/$value", token)
    assert (photo.status_code, photo.headers["Content-Type"], photo.content) == (200, "image/png", alice.photo)
    etag = photo.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    unchanged = graph(server, "/v1.0/me/photo/$value", token, **{"If-None-Match": etag})
    assert (unchanged.status_code, unchanged.content, unchanged.headers["ETag"]) == (304, b"", etag)
    assert graph(server, "/v1.0/me/photo/$value", token, **{"If-None-Match": '"other"'}).status_code == 200
    assert server.graph_requests["/v1.0/me/photo/$value"] == 3

    flow, query = sign_in(server, app, bob)
    bobs = graph(server, "/v1.0/me/photo/$value", app.acquire_token_by_auth_code_flow(flow, query)["access_token"])
    assert (bobs.status_code, bobs.json()["error"]["code"]) == (404, "ImageNotFound")


def test_graph_strict_select_leaves_out_what_graph_leaves_out(server, alice):
    server.graph_strict_select = True
    token = server.access_token(alice, audience=GRAPH_APP_ID, scp="User.Read", version=1)

    assert "companyName" not in graph(server, "/v1.0/me", token).json()
    assert graph(server, "/v1.0/me?$select=companyName", token).json()["companyName"] == "Example Ltd"


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda s, u: None, id="no token"),
        pytest.param(lambda s, u: s.access_token(u, audience=API, scp="User.Read"), id="wrong audience"),
        pytest.param(
            lambda s, u: s.access_token(u, audience=GRAPH_APP_ID, scp="User.Read", exp=int(time.time()) - 10),
            id="expired",
        ),
        pytest.param(
            lambda s, u: s.access_token(u, audience=GRAPH_APP_ID, scp="User.Read", iss="https://evil.example/"),
            id="foreign issuer",
        ),
        pytest.param(
            lambda s, u: s.sign(
                {"aud": GRAPH_APP_ID, "tid": TENANT, "iss": s.issuer(TENANT), "exp": int(time.time()) + 60},
                algorithm="HS256",
                key=s.public_key_pem(),
            ),
            id="HS256 with the public key",
        ),
        pytest.param(
            lambda s, u: s.sign(
                {"aud": GRAPH_APP_ID, "tid": TENANT, "iss": s.issuer(TENANT), "exp": int(time.time()) + 60},
                algorithm="none",
            ),
            id="alg none",
        ),
        pytest.param(
            lambda s, u: s.sign(
                jwt.decode(
                    s.access_token(u, audience=GRAPH_APP_ID, scp="User.Read"), options={"verify_signature": False}
                ),
                kid="unknown",
            ),
            id="unknown kid",
        ),
    ],
)
def test_graph_refuses_tokens_it_did_not_issue_for_itself(server, alice, forge):
    good = graph(server, "/v1.0/me", server.access_token(alice, audience=GRAPH_APP_ID, scp="User.Read", version=1))
    assert good.status_code == 200

    answer = graph(server, "/v1.0/me", forge(server, alice))

    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_app_only_token_reads_users(server, app, alice, charlie):
    result = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
    token = result["access_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["roles"] == ["User.Read.All"] and claims["tid"] == TENANT and claims["idtyp"] == "app"
    assert claims["oid"] not in {alice.oid, charlie.oid}

    user = graph(server, f"/v1.0/users/{alice.oid}", token)
    assert (user.status_code, user.json()["id"], user.json()["mail"]) == (200, alice.oid, "alice@example.com")
    photo = graph(server, f"/v1.0/users/{alice.oid}/photo/$value", token)
    assert (photo.status_code, photo.content) == (200, alice.photo)
    assert graph(server, f"/v1.0/users/{charlie.oid}", token).status_code == 404  # another tenant's user
    assert graph(server, "/v1.0/me", token).status_code == 400  # /me needs a delegated token


# --- TLS ----------------------------------------------------------------------------------------------------


def test_the_certificate_is_refused_without_the_ca_bundle(server, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", SYSTEM_BUNDLE)
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{server.url}/{TENANT}/v2.0/.well-known/openid-configuration", verify=True, timeout=5)


def test_the_pinned_session_trusts_the_ca_whatever_requests_ca_bundle_says(server, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", SYSTEM_BUNDLE)
    url = f"{server.url}/{TENANT}/v2.0/.well-known/openid-configuration"

    assert http.session(ca_bundle=str(server.ca_path)).get(url).status_code == 200
    # The environment variable is in force: a plain Session with verify set loses to it.
    plain = requests.Session()
    plain.verify = str(server.ca_path)
    with pytest.raises(requests.exceptions.SSLError):
        plain.get(url, timeout=5)


def test_certificates_are_reused_and_the_server_certificate_reissued_from_the_same_ca(tmp_path, alice):
    def run():
        with LocalEntra(
            cert_dir=tmp_path, users=[alice], tenant_id=TENANT, client_id=CLIENT_ID, client_secret=SECRET
        ) as entra:
            url = f"{entra.url}/{TENANT}/discovery/v2.0/keys"
            assert http.session(ca_bundle=str(entra.ca_path)).get(url).status_code == 200
        return (tmp_path / "ca.pem").read_bytes(), (tmp_path / "server.pem").read_bytes()

    first_ca, first_cert = run()
    assert run() == (first_ca, first_cert)

    (tmp_path / "server.pem").unlink()
    ca, cert = run()
    assert ca == first_ca and cert != first_cert
    assert oct((tmp_path / "server-key.pem").stat().st_mode & 0o777) == "0o600"


def test_a_stopped_server_answers_nobody(server):
    browser = http.session(ca_bundle=str(server.ca_path), timeout=2)
    assert browser.get(jwks_uri(server)).status_code == 200  # a kept-alive connection now exists

    server.stop()

    with pytest.raises(requests.exceptions.ConnectionError):
        browser.get(jwks_uri(server))


# --- logout and logs ----------------------------------------------------------------------------------------


def test_logout_is_recorded_and_links_back(server, alice):
    answer = http.session(ca_bundle=str(server.ca_path)).get(
        f"{server.url}/{TENANT}/oauth2/v2.0/logout",
        params={"post_logout_redirect_uri": "http://localhost:8000/signed-out", "logout_hint": alice.email},
    )

    assert answer.status_code == 200
    assert "You have signed out" in answer.text
    assert 'href="http://localhost:8000/signed-out"' in answer.text
    assert server.logout_requests == [
        {"tenant": TENANT, "post_logout_redirect_uri": "http://localhost:8000/signed-out", "logout_hint": alice.email}
    ]


def test_nothing_it_issues_reaches_logs_or_stderr(server, app, alice, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    flow, query = sign_in(server, app, alice)
    result = app.acquire_token_by_auth_code_flow(flow, query)
    graph(server, "/v1.0/me", result["access_token"])
    graph(server, "/v1.0/me", "garbage")
    http.session(ca_bundle=str(server.ca_path)).get(f"{server.url}/nowhere?code={query['code']}")

    out, err = capfd.readouterr()
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(("accounts", "core", "devtools")))
    logged = ours + out + err
    assert "local Entra: POST" in ours  # the server did log its requests
    assert len(server.issued) >= 4
    leaked = [value for value in server.issued if value in logged]
    assert leaked == []


# --- hooks for the project's tests --------------------------------------------------------------------------


def test_a_replaced_user_shows_in_the_next_tokens_refresh_included(server, app, alice):
    flow, query = sign_in(server, app, alice)
    first = app.acquire_token_by_auth_code_flow(flow, query)
    server.users[alice.oid] = LocalUser(**{**alice.__dict__, "email": "alice.new@example.com", "xms_edov": None})

    refreshed = app.acquire_token_by_refresh_token(first["refresh_token"], scopes=["User.Read"])

    assert first["id_token_claims"]["email"] == "alice@example.com"
    assert refreshed["id_token_claims"]["email"] == "alice.new@example.com"
    assert "xms_edov" not in refreshed["id_token_claims"]
    del server.users[alice.oid]
    gone = app.acquire_token_by_refresh_token(first["refresh_token"], scopes=["User.Read"])
    assert gone["error"] == "invalid_grant"


def test_id_token_hook_puts_a_forged_id_token_in_the_real_flow(server, app, alice):
    seen = []

    def hook(claims):
        seen.append(dict(claims))
        return server.sign({**claims, "aud": "someone-else"})

    server.id_token_hook = hook
    flow, query = sign_in(server, app, alice)
    result = app.acquire_token_by_auth_code_flow(flow, query)

    assert seen[0]["nonce"] == hashlib.sha256(flow["nonce"].encode()).hexdigest()
    assert result["id_token_claims"]["aud"] == "someone-else"
    assert result["id_token"] in server.issued


def test_time_claims_follow_the_servers_clock(server):
    before = server.time_claims()
    server.clock_offset = -7200

    after = server.time_claims(lifetime=60)

    assert before["exp"] - before["iat"] == 3600 and before["nbf"] == before["iat"]
    assert abs(before["iat"] - int(time.time())) <= 1
    assert after["iat"] <= before["iat"] - 7199 and after["exp"] == after["iat"] + 60


def test_a_failing_hook_is_a_500_that_msal_does_not_replay(server, app, alice):
    def broken(claims):
        raise RuntimeError("a bug in a test's hook")

    server.id_token_hook = broken
    flow, query = sign_in(server, app, alice)
    with pytest.raises(msal.exceptions.MsalServiceError, match="500"):
        app.acquire_token_by_auth_code_flow(flow, query)

    server.id_token_hook = None
    flow, query = sign_in(server, app, alice)
    # Without Retry-After: 0 msal would answer this from its throttle cache, for 5 s, without asking.
    assert "access_token" in app.acquire_token_by_auth_code_flow(flow, query)
    assert [body["grant_type"] for body in server.token_requests] == ["authorization_code"] * 2
