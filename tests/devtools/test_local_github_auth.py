"""The local GitHub's credentials: the web flow, the App's JWT, installation tokens and their scoping."""

from __future__ import annotations

import stat
from urllib.parse import parse_qsl, urlencode

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from integrations.github.conf import load_private_key
from tests.devtools.conftest import CALLBACK, OCTOCAT

OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def authorize_url(github, state: str = "s1", redirect_uri: str = CALLBACK) -> str:
    query = {"client_id": github.client_id, "redirect_uri": redirect_uri, "state": state}
    return f"{github.url}/login/oauth/authorize?{urlencode(query)}"


def exchange(api, code: str, **extra):
    data = {"client_id": api.github.client_id, "client_secret": api.github.client_secret, "code": code}
    return api("POST", "/login/oauth/access_token", data={**data, "redirect_uri": CALLBACK, **extra},
               headers={"Accept": "application/json"})  # fmt: skip


def test_the_authorize_page_offers_each_test_user_and_cancel(github):
    page = github.http_session().get(authorize_url(github))
    assert page.status_code == 200
    assert 'value="octocat"' in page.text and 'value="hubot"' in page.text and 'name="deny"' in page.text


def test_the_web_flow_gives_a_user_token_that_says_who_and_stops_working_once_revoked(github, api):
    callback = github.sign_in(authorize_url(github, state="xyz"), OCTOCAT)
    assert callback.redirect_uri == CALLBACK
    assert callback.params["state"] == "xyz"

    answer = exchange(api, callback.params["code"])
    assert answer.status_code == 200
    token = answer.json()["access_token"]
    assert token.startswith("ghu_")
    assert answer.json() == {"access_token": token, "token_type": "bearer", "scope": ""}

    for scheme in ("Bearer", "token"):
        me = api("GET", "/user", token=token, scheme=scheme)
        assert me.status_code == 200
        assert {k: me.json()[k] for k in ("login", "id", "name")} == {"login": "octocat", "id": 583231,
                                                                      "name": "The Octocat"}  # fmt: skip

    # A code is good once; GitHub answers a used one with 200 and an error.
    again = exchange(api, callback.params["code"])
    assert again.status_code == 200
    assert again.json()["error"] == "bad_verification_code"

    wrong = api("DELETE", f"/applications/{github.client_id}/token", auth=(github.client_id, "nope"),
                json={"access_token": token})  # fmt: skip
    assert wrong.status_code == 401
    revoked = api("DELETE", f"/applications/{github.client_id}/token",
                  auth=(github.client_id, github.client_secret), json={"access_token": token})  # fmt: skip
    assert revoked.status_code == 204
    assert github.revoked_tokens == [token]
    assert api("GET", "/user", token=token, scheme="Bearer").status_code == 401


def test_the_token_endpoint_refuses_unknown_codes_wrong_secrets_and_answers_forms_without_accept_json(github, api):
    assert exchange(api, "no-such-code").json()["error"] == "bad_verification_code"
    code = github.sign_in(authorize_url(github), "hubot").params["code"]
    assert exchange(api, code, client_secret="wrong").json()["error"] == "incorrect_client_credentials"
    code = github.sign_in(authorize_url(github), "hubot").params["code"]
    assert exchange(api, code, redirect_uri="http://elsewhere/").json()["error"] == "redirect_uri_mismatch"

    code = github.sign_in(authorize_url(github), "hubot").params["code"]
    data = {"client_id": github.client_id, "client_secret": github.client_secret, "code": code}
    form = api("POST", "/login/oauth/access_token", data=data, headers={"Accept": "*/*"})
    assert form.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert dict(parse_qsl(form.text))["access_token"].startswith("ghu_")


def test_a_code_expires_after_ten_minutes(github, api):
    code = github.sign_in(authorize_url(github), OCTOCAT).params["code"]
    github.clock_offset = 601
    assert exchange(api, code).json()["error"] == "bad_verification_code"


def test_deny_sends_access_denied_back_with_the_state(github):
    callback = github.deny(authorize_url(github, state="st"))
    assert callback.params["error"] == "access_denied"
    assert callback.params["error_description"]
    assert callback.params["state"] == "st"
    assert "code" not in callback.params


def test_an_unregistered_redirect_uri_goes_back_to_the_registered_one_with_an_error(github):
    callback = github.sign_in(authorize_url(github, redirect_uri="http://evil.example/cb"), OCTOCAT)
    assert callback.redirect_uri == CALLBACK
    assert callback.params["error"] == "redirect_uri_mismatch"


def test_the_installation_answers_a_valid_app_jwt(github, api):
    github.create_repo("acme", "infra")
    answer = api("GET", "/repos/acme/infra/installation", token=github.app_jwt(), scheme="Bearer")
    assert answer.status_code == 200
    assert answer.json()["id"] == github.installation_id("acme")
    assert api.github.request_log[-1].auth == "jwt"


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda g, now: g.app_jwt(iat=now - 700, exp=now - 100), id="expired"),
        pytest.param(lambda g, now: g.app_jwt(key=OTHER_KEY), id="wrong-key"),
        pytest.param(lambda g, now: g.app_jwt(iss="2"), id="wrong-iss"),
        pytest.param(lambda g, now: g.app_jwt(iat=now - 60, exp=now + 700), id="longer-than-ten-minutes"),
        pytest.param(lambda g, now: g.app_jwt(iat=now + 120, exp=now + 500), id="issued-in-the-future"),
        pytest.param(lambda g, now: "not.a.jwt", id="garbage"),
    ],
)
def test_a_bad_app_jwt_is_refused_with_401(github, api, forge):
    github.create_repo("acme", "infra")
    answer = api("GET", "/repos/acme/infra/installation", token=forge(github, int(github.clock())), scheme="Bearer")
    assert answer.status_code == 401
    assert answer.json()["message"]
    path = f"/app/installations/{github.installation_id('acme')}/access_tokens"
    forged = forge(github, int(github.clock()))
    assert api("POST", path, token=forged, scheme="Bearer", json={}).status_code == 401
    assert api("POST", path, token=github.app_jwt(), scheme="Bearer", json={}).status_code == 201


def test_a_jwt_within_the_drift_allowance_is_accepted(github, api):
    github.create_repo("acme", "infra")
    now = int(github.clock())
    jwt = github.app_jwt(iat=now + 30, exp=now + 30 + 660)
    assert api("GET", "/repos/acme/infra/installation", token=jwt, scheme="Bearer").status_code == 200


def test_no_installation_on_a_repository_without_the_app(github, api):
    github.create_repo("acme", "infra", installed=False)
    jwt = github.app_jwt()
    assert api("GET", "/repos/acme/infra/installation", token=jwt, scheme="Bearer").status_code == 404
    assert api("GET", "/repos/acme/missing/installation", token=jwt, scheme="Bearer").status_code == 404


def test_an_installation_token_opens_only_the_repositories_it_was_scoped_to(github, api):
    github.create_repo("acme", "infra")
    github.create_repo("acme", "other")
    token = api.token("acme", "infra")
    (asked,) = github.token_requests
    assert (asked.repositories, asked.permissions, asked.token) == (["infra"], {"contents": "write"}, token)
    assert asked.installation_id == github.installation_id("acme")

    assert api("GET", "/repos/acme/infra", token=token).status_code == 200
    assert api("GET", "/repos/ACME/Infra", token=token).status_code == 200  # names are case-insensitive
    assert api("GET", "/repos/acme/other", token=token).status_code == 401
    assert github.request_log[-1].auth == "installation"


def test_a_read_only_token_cannot_write(github, api):
    github.create_repo("acme", "infra")
    token = api.token("acme", "infra", permissions={"contents": "read"})
    assert api("GET", "/repos/acme/infra/git/ref/heads/main", token=token).status_code == 200
    answer = api("POST", "/repos/acme/infra/git/blobs", token=token, json={"content": "x"})
    assert answer.status_code == 403


def test_tokens_are_refused_for_repositories_or_permissions_the_installation_lacks(github, api):
    github.create_repo("acme", "infra")
    github.create_repo("acme", "private", installed=False)
    jwt = github.app_jwt()
    installation = github.installation_id("acme")
    path = f"/app/installations/{installation}/access_tokens"
    assert api("POST", path, token=jwt, scheme="Bearer", json={"repositories": ["private"]}).status_code == 422
    github.installation_permissions = {"contents": "read", "metadata": "read"}
    answer = api("POST", path, token=jwt, scheme="Bearer", json={"permissions": {"contents": "write"}})
    assert answer.status_code == 422
    assert api("POST", "/app/installations/999999/access_tokens", token=jwt, scheme="Bearer").status_code == 404


def test_installation_tokens_last_an_hour_and_can_be_expired_or_revoked(github, api):
    github.create_repo("acme", "infra")
    answer = api("POST", f"/app/installations/{github.installation_id('acme')}/access_tokens",
                 token=github.app_jwt(), scheme="Bearer", json={"repositories": ["infra"]})  # fmt: skip
    assert answer.json()["expires_at"].endswith("Z")
    assert [r["name"] for r in answer.json()["repositories"]] == ["infra"]
    first, second = answer.json()["token"], api.token("acme", "infra")
    github.revoke_installation_tokens(first)
    assert api("GET", "/repos/acme/infra", token=first).status_code == 401
    assert api("GET", "/repos/acme/infra", token=second).status_code == 200
    github.clock_offset = 3601
    assert api("GET", "/repos/acme/infra", token=second).status_code == 401
    github.clock_offset = 0
    github.expire_installation_tokens()
    assert api("GET", "/repos/acme/infra", token=api.token("acme", "infra")).status_code == 200
    assert api("GET", "/repos/acme/infra", token=second).status_code == 401


def test_the_private_key_is_written_as_pkcs1_for_the_settings(github, api, tmp_path):
    path = github.write_private_key(tmp_path / "keys" / "app-key.pem")
    assert path.read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    github.create_repo("acme", "infra")
    jwt = github.app_jwt(key=load_private_key(str(path)))
    assert api("GET", "/repos/acme/infra/installation", token=jwt, scheme="Bearer").status_code == 200


def test_every_api_request_needs_the_api_version_header(github, api):
    github.create_repo("acme", "infra")
    token = api.token("acme", "infra")
    missing = api("GET", "/repos/acme/infra", token=token, version=False)
    assert missing.status_code == 400
    assert "X-GitHub-Api-Version" in missing.json()["message"]
    other = api("GET", "/repos/acme/infra", token=token, version=False, headers={"X-GitHub-Api-Version": "2020-01-01"})
    assert other.status_code == 400
    # The browser's page needs none.
    assert github.http_session().get(authorize_url(github)).status_code == 200


def test_every_answer_carries_a_request_id_and_its_credentials_rate_limit(github, api):
    github.create_repo("acme", "infra")
    token = api.token("acme", "infra")
    github.set_rate_limit(3, token=token)
    answers = [api("GET", "/repos/acme/infra", token=token) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 403]
    assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert {a.headers["x-ratelimit-limit"] for a in answers} == {"3"}
    assert answers[-1].headers["x-ratelimit-used"] == "3"
    assert int(answers[-1].headers["x-ratelimit-reset"]) > github.clock()
    assert len({a.headers["x-github-request-id"] for a in answers}) == 4
    # Another credential has its own budget.
    other = api("GET", "/repos/acme/infra", token=api.token("acme", "infra"))
    assert (other.status_code, other.headers["x-ratelimit-limit"]) == (200, "5000")


def test_the_token_endpoint_takes_json_too(github, api):
    code = github.sign_in(authorize_url(github), OCTOCAT).params["code"]
    body = {"client_id": github.client_id, "client_secret": github.client_secret, "code": code}
    answer = api("POST", "/login/oauth/access_token", json=body, headers={"Accept": "application/json"})
    assert answer.json()["access_token"].startswith("ghu_")


def test_installation_ids_stay_put_as_owners_come_and_go(github):
    github.create_repo("zeta", "infra")
    zeta = github.installation_id("zeta")
    github.create_repo("alpha", "infra")
    assert github.installation_id("alpha") != zeta
    assert github.installation_id("ZETA") == zeta
    github.repo("zeta", "infra").installed = False
    assert github.installation_id("zeta") is None
