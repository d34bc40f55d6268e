"""Connecting a GitHub account through the local GitHub's web flow: kept as a username and a keyed hash, the token revoked."""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlsplit

import pytest

from accounts.models import User
from core.crypto import hash_token
from tests.integrations.conftest import OCTOCAT

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(client, db):
    user = User.objects.create_user("alice@example.com")
    client.force_login(user)
    return user


def start(client) -> str:
    response = client.get("/account/github/connect/")
    assert response.status_code == 302, response.content
    return response["Location"]


def callback(client, params: dict):
    return client.get("/account/github/callback/", params)


def test_connect_keeps_the_username_and_a_keyed_hash_then_revokes_the_token(github_settings, client, alice, caplog):
    github = github_settings
    caplog.set_level(logging.DEBUG)
    auth_uri = start(client)
    query = parse_qs(urlsplit(auth_uri).query)
    assert query["client_id"] == [github.client_id] and query["state"][0]
    assert query["redirect_uri"] == ["http://testserver/account/github/callback/"]

    response = callback(client, github.sign_in(auth_uri, OCTOCAT).params)
    assert response.status_code == 302 and response["Location"] == "/account/"
    alice.refresh_from_db()
    (token,) = github.revoked_tokens
    assert (alice.github_username, alice.github_access_token_hash) == ("octocat", hash_token(token))
    assert alice.github_connected_at is not None
    assert github.user_for_token(token) is None  # revoked: the platform keeps no user token
    assert token not in caplog.text
    page = client.get("/account/")
    assert b"octocat" in page.content


def test_a_denied_authorization_stores_nothing(github_settings, client, alice):
    response = callback(client, github_settings.deny(start(client)).params)
    assert response.status_code == 400
    assert b"did not connect your account" in response.content
    alice.refresh_from_db()
    assert alice.github_username is None and alice.github_access_token_hash is None


@pytest.mark.parametrize("forge", ["state", "no-state", "replay"])
def test_a_forged_or_replayed_callback_stores_nothing(github_settings, client, alice, forge):
    github = github_settings
    params = github.sign_in(start(client), OCTOCAT).params
    if forge == "state":
        params = {**params, "state": "forged"}
    elif forge == "no-state":
        params = {k: v for k, v in params.items() if k != "state"}
    else:
        assert callback(client, params).status_code == 302
        alice.github_username = None
        alice.save()
    response = callback(client, params)
    assert response.status_code == 400
    assert b"already used, has expired or is not yours" in response.content
    alice.refresh_from_db()
    assert alice.github_username is None


def test_another_users_callback_is_refused(github_settings, client, alice):
    from django.test import Client

    params = github_settings.sign_in(start(client), OCTOCAT).params
    mallory = Client()
    mallory.force_login(User.objects.create_user("mallory@example.com"))
    assert mallory.get("/account/github/callback/", params).status_code == 400
    assert User.objects.get(email="mallory@example.com").github_username is None


def test_disconnect_is_a_post_that_clears_the_connection(github_settings, client, alice):
    callback(client, github_settings.sign_in(start(client), OCTOCAT).params)
    assert client.get("/account/github/disconnect/").status_code == 405
    assert client.post("/account/github/disconnect/").status_code == 302
    alice.refresh_from_db()
    assert (alice.github_username, alice.github_access_token_hash, alice.github_connected_at) == (None, None, None)


def test_the_integration_off_says_so(client, alice, settings):
    settings.GITHUB_ENABLED = False
    response = client.get("/account/github/connect/")
    assert response.status_code == 503
    assert b"GitHub integration is off" in response.content
