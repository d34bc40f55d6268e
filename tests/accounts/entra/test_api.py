"""/api/me: bearer tokens for this API, validated locally (RFC 6750 errors, never a 500)."""

from __future__ import annotations

import time

import pytest

from tests.accounts.entra.conftest import ALICE, BOB, CLIENT_ID, PERSONAL, TENANT, legacy_user

pytestmark = pytest.mark.django_db
API = f"api://{CLIENT_ID}"


@pytest.fixture
def alice(db):
    return legacy_user(
        "alice@example.com", azure_entra_id=ALICE.oid, azure_tenant_id=TENANT, requires_entra_migration=False
    )


def call(client, token: str | None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token is not None else {}
    return client.get("/api/me", **headers)


def error_of(response) -> tuple[str, str]:
    header = response["WWW-Authenticate"]
    assert header.startswith("Bearer ")
    return response.json()["error"], header


@pytest.mark.parametrize("audience", [API, CLIENT_ID])
@pytest.mark.parametrize("version", [1, 2])
def test_a_valid_token_returns_the_callers_profile(client, entra, settings, alice, audience, version):
    # The bare client id (a v2 access token's audience) counts only when configured as the API's audience.
    settings.ENTRA_API_AUDIENCE = audience
    token = entra.access_token(ALICE, audience=audience, scp="access_as_user", version=version)
    response = call(client, token)
    assert response.status_code == 200, response.content
    assert response.json()["email"] == "alice@example.com"
    assert response.json()["entra_object_id"] == ALICE.oid


def test_an_app_role_is_as_good_as_the_scope(client, entra, alice):
    token = entra.access_token(ALICE, audience=API, roles=["Api.Read"])
    assert call(client, token).status_code == 200


def test_missing_scope_is_403_insufficient_scope(client, entra, alice):
    response = call(client, entra.access_token(ALICE, audience=API, scp="something_else"))
    assert response.status_code == 403
    error, header = error_of(response)
    assert error == "insufficient_scope" and 'error="insufficient_scope"' in header


@pytest.mark.parametrize(
    ("make", "description"),
    [
        (
            lambda e: e.access_token(ALICE, audience="00000003-0000-0000-c000-000000000000", scp="User.Read"),
            "another audience",
        ),
        (lambda e: e.access_token(ALICE, audience=API, scp="access_as_user", exp=int(time.time()) - 3600), "expired"),
        (lambda e: e.access_token(ALICE, audience=API, scp="access_as_user", iss="https://evil.example/"), "issuer"),
        (lambda e: e.access_token(PERSONAL, audience=API, scp="access_as_user"), "tenant that is not allowed"),
        (lambda e: e.access_token(ALICE, audience=API, scp="access_as_user")[:-4] + "AAAA", "signature"),
        (lambda e: "not-a-jwt", "malformed"),
    ],
)
def test_bad_tokens_are_401_invalid_token(client, entra, alice, make, description):
    response = call(client, make(entra))
    assert response.status_code == 401, response.content
    error, header = error_of(response)
    assert error == "invalid_token"
    assert 'error="invalid_token"' in header and description in header


def test_no_token_is_401(client, entra):
    response = call(client, None)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_valid_token_for_an_unknown_user_is_403_and_creates_nobody(client, entra, alice, settings):
    settings.ENTRA_JIT_CREATE = True
    from accounts.models import User

    response = call(client, entra.access_token(BOB, audience=API, scp="access_as_user"))
    assert response.status_code == 403
    assert User.objects.count() == 1
