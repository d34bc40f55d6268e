"""Findings of the security audit: privileged roles, live sessions, access tokens, crafted input."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from dataclasses import replace

import pytest
from django.contrib.sessions.models import Session
from django.db import close_old_connections, connection, transaction
from django.test import Client

from accounts.entra.linking import resolve_sign_in
from accounts.entra.tokens import TokenError, validate_access_token, validate_id_token
from accounts.models import User
from tests.accounts.entra.conftest import ADMIN, ALICE, CLIENT_ID, OTHER_TENANT, TENANT, LocalUser, legacy_user

pytestmark = pytest.mark.django_db
API = f"api://{CLIENT_ID}"

# An administrator of another allowed tenant who assigned themselves this app's admin role there.
FOREIGN_ADMIN = LocalUser(
    oid="abababab-0000-4000-8000-00000000000a",
    tid=OTHER_TENANT,
    email="boss@other.example",
    name="Foreign admin",
    roles=["Platform.Admin", "Platform.Staff"],
)


@pytest.fixture
def foreign_admin(entra, settings):
    settings.ENTRA_JIT_CREATE = True
    entra.add_user(FOREIGN_ADMIN)
    yield FOREIGN_ADMIN
    entra.users.pop(FOREIGN_ADMIN.oid, None)


@pytest.fixture
def swap_entra_user(entra):
    """Change what the directory says of a user; restored afterwards."""
    originals: dict[str, LocalUser] = {}

    def swap(user: LocalUser, **changes) -> None:
        originals.setdefault(user.oid, entra.users[user.oid])
        entra.users[user.oid] = replace(user, **changes)

    yield swap
    entra.users.update(originals)


def expire_token(user: User, *, in_s: float = -60) -> None:
    from datetime import timedelta

    from django.utils import timezone

    User.objects.filter(pk=user.pk).update(azure_token_expires_at=timezone.now() + timedelta(seconds=in_s))


# --- roles ----------------------------------------------------------------------------------------------------


def test_roles_from_another_tenant_make_nobody_staff(browser, foreign_admin, caplog):
    caplog.set_level(logging.WARNING, logger="accounts.entra.linking")
    assert browser.sign_in(foreign_admin).status_code == 302
    user = User.objects.get(azure_entra_id=foreign_admin.oid)
    assert (user.is_staff, user.is_superuser) == (False, False)
    assert browser.client.get("/admin/").status_code == 302
    assert any("not an admin tenant" in r.getMessage() for r in caplog.records)


def test_roles_from_a_tenant_in_entra_admin_tenants_count(browser, foreign_admin, settings):
    settings.ENTRA_ADMIN_TENANTS = [TENANT, OTHER_TENANT]
    browser.sign_in(foreign_admin)
    user = User.objects.get(azure_entra_id=foreign_admin.oid)
    assert (user.is_staff, user.is_superuser) == (True, True)


def test_home_tenant_roles_still_count(browser):
    legacy_user("admin@example.com")
    browser.sign_in(ADMIN)
    assert User.objects.get(email="admin@example.com").is_superuser


# --- live sessions ----------------------------------------------------------------------------------------------


def test_a_demotion_in_entra_reaches_the_live_session_at_renewal(browser, swap_entra_user):
    admin_user = legacy_user("admin@example.com")
    browser.sign_in(ADMIN)
    assert browser.client.get("/admin/").status_code == 200

    swap_entra_user(ADMIN, roles=[])
    expire_token(admin_user, in_s=60)  # inside the renewal window
    assert browser.client.get("/account/").status_code == 200

    admin_user.refresh_from_db()
    assert (admin_user.is_staff, admin_user.is_superuser) == (False, False)
    assert browser.client.get("/admin/").status_code == 302


@pytest.mark.parametrize("change", ["disabled", "deleted"])
def test_renewal_ends_the_session_of_a_disabled_or_deleted_account(browser, entra, swap_entra_user, change):
    alice = legacy_user("alice@example.com")
    browser.sign_in(ALICE)
    if change == "disabled":
        swap_entra_user(ALICE, account_enabled=False)
    else:
        swap_entra_user(ALICE)
        del entra.users[ALICE.oid]
    expire_token(alice, in_s=60)

    response = browser.client.get("/account/")
    assert response.status_code == 302 and response["Location"].startswith("/auth/login/")
    assert "_auth_user_id" not in browser.client.session


def test_renewal_ends_the_session_when_the_tenant_is_no_longer_allowed(browser, entra, settings):
    legacy_user("m@other.example")
    user = LocalUser(oid="acacacac-0000-4000-8000-00000000000c", tid=OTHER_TENANT, email="m@other.example", name="M")
    entra.add_user(user)
    try:
        browser.sign_in(user)
        assert "_auth_user_id" in browser.client.session
        settings.ENTRA_ALLOWED_TENANTS = [TENANT, "0c0c0000-0000-4000-8000-0000000000c0"]
        expire_token(User.objects.get(email="m@other.example"), in_s=60)
        response = browser.client.get("/account/")
    finally:
        entra.users.pop(user.oid)
    assert response.status_code == 302
    assert "_auth_user_id" not in browser.client.session


def test_an_entra_outage_keeps_the_session_until_the_token_expires(browser, entra):
    alice = legacy_user("alice@example.com")
    browser.sign_in(ALICE)
    entra.unreachable = True
    expire_token(alice, in_s=120)

    assert browser.client.get("/account/").status_code == 200
    requests_seen = len(entra.token_requests)
    assert browser.client.get("/account/").status_code == 200  # no second attempt within the retry interval
    assert len(entra.token_requests) == requests_seen

    expire_token(alice, in_s=-1)
    response = browser.client.get("/account/")
    assert response.status_code == 503
    assert b"cannot be reached" in response.content
    assert "_auth_user_id" not in browser.client.session

    entra.unreachable = False
    assert browser.sign_in(ALICE).status_code == 302


# --- access tokens ------------------------------------------------------------------------------------------------


def api(client: Client, token: str):
    return client.get("/api/me", HTTP_AUTHORIZATION=f"Bearer {token}")


@pytest.fixture
def alice(db):
    return legacy_user(
        "alice@example.com", azure_entra_id=ALICE.oid, azure_tenant_id=TENANT, requires_entra_migration=False
    )


@pytest.mark.parametrize("configured_audience", [API, CLIENT_ID])
def test_an_id_token_is_not_an_access_token(client, entra, settings, alice, configured_audience):
    settings.ENTRA_API_AUDIENCE = configured_audience
    id_token = entra.id_token(replace(ALICE, roles=["Api.Read"]), nonce="n" * 64)
    response = api(client, id_token)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


def test_the_bare_client_id_is_an_audience_only_when_configured(client, entra, settings, alice):
    token = entra.access_token(ALICE, audience=CLIENT_ID, scp="access_as_user")
    assert api(client, token).status_code == 401
    settings.ENTRA_API_AUDIENCE = CLIENT_ID
    assert api(client, token).status_code == 200


def test_a_token_naming_no_client_is_refused(client, entra, alice):
    token = entra.access_token(ALICE, audience=API, scp="access_as_user", azp=None)
    assert api(client, token).status_code == 401


def test_entra_api_allowed_clients_limits_the_callers(client, entra, settings, alice):
    settings.ENTRA_API_ALLOWED_CLIENTS = ["99999999-0000-4000-8000-000000000099"]
    refused = entra.access_token(ALICE, audience=API, scp="access_as_user")
    allowed = entra.access_token(ALICE, audience=API, scp="access_as_user", azp="99999999-0000-4000-8000-000000000099")
    assert api(client, refused).status_code == 401
    assert api(client, allowed).status_code == 200


def _raw(header: bytes, payload: bytes) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return f"{b64(header)}.{b64(payload)}.{b64(b'sig')}"


GOOD_HEADER = json.dumps({"alg": "RS256", "kid": "k", "typ": "JWT"}).encode()
CRAFTED = {
    "nested header": _raw(b"[" * 600 + b"]" * 600, b"{}"),
    "nested payload": _raw(GOOD_HEADER, b"[" * 12000 + b"]" * 12000),
    "huge token": _raw(GOOD_HEADER, json.dumps({"x": "a" * 40000}).encode()),
    "huge integer": _raw(GOOD_HEADER, b'{"exp": ' + b"9" * 5000 + b"}"),
    "not utf-8": _raw(b"\xff\xfe", b"{}"),
}


@pytest.mark.parametrize("case", list(CRAFTED))
def test_crafted_bearer_tokens_are_401_not_500(client, entra, alice, case):
    response = api(client, CRAFTED[case])
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


@pytest.mark.parametrize(
    "claims",
    [{"aud": {"a": 1}}, {"aud": 5}, {"aud": [API, 5]}, {"roles": "Api.Read"}, {"roles": [{}]}, {"scp": ["x"]}],
    ids=str,
)
def test_claims_of_the_wrong_type_are_401_not_500(client, entra, alice, claims):
    import jwt

    valid = jwt.decode(entra.access_token(ALICE, audience=API, scp="access_as_user"), options={"verify_signature": False})
    response = api(client, entra.sign({**valid, **claims}))
    assert response.status_code == 401, response.content


@pytest.mark.parametrize("case", list(CRAFTED))
def test_crafted_tokens_raise_token_error_on_every_path(entra, case):
    with pytest.raises(TokenError):
        validate_access_token(CRAFTED[case])
    with pytest.raises(TokenError):
        validate_id_token(CRAFTED[case], nonce="n")


# --- first sign-ins at once ----------------------------------------------------------------------------------------


def _claims(user: LocalUser) -> dict:
    return {"tid": user.tid, "oid": user.oid, "email": user.email, "name": user.name, "roles": []}


def _race(first_claims: dict, second_claims: dict) -> tuple[User, User | BaseException]:
    """The first sign-in holds its transaction open while the second runs, then commits."""
    second_started = threading.Event()
    second: dict[str, User | BaseException] = {}

    def run_second() -> None:
        try:
            second_started.set()
            second["user"] = resolve_sign_in(claims=second_claims)
        except BaseException as exc:  # reported to the test below
            second["user"] = exc
        finally:
            close_old_connections()
            connection.close()

    with transaction.atomic():
        first = resolve_sign_in(claims=first_claims)
        thread = threading.Thread(target=run_second)
        thread.start()
        second_started.wait(5)
        time.sleep(0.3)  # the second is now waiting on our uncommitted row
    thread.join(10)
    assert not thread.is_alive()
    return first, second["user"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_first_sign_ins_at_once_create_one_user(entra, settings):
    settings.ENTRA_JIT_CREATE = True
    first, second = _race(_claims(ALICE), _claims(ALICE))
    assert isinstance(second, User), second
    assert second.pk == first.pk
    assert User.objects.filter(azure_entra_id=ALICE.oid).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_first_sign_ins_at_once_link_the_legacy_user_once(entra):
    from accounts.models import EntraLinkAudit, RefusedEntraLink

    alice = legacy_user("alice@example.com")
    first, second = _race(_claims(ALICE), _claims(ALICE))
    assert isinstance(second, User), second
    assert first.pk == second.pk == alice.pk
    assert RefusedEntraLink.objects.count() == 0
    assert EntraLinkAudit.objects.count() == 1


# --- by reading ------------------------------------------------------------------------------------------------------


def test_xms_edov_vouches_for_email_not_preferred_username(entra):
    from accounts.entra.conf import entra_config
    from accounts.entra.linking import tenant_owns_email

    config = entra_config()
    claims = {"tid": OTHER_TENANT, "xms_edov": True, "email": None, "preferred_username": "alice@example.com"}
    assert not tenant_owns_email(claims=claims, email="alice@example.com", config=config)
    claims = {"tid": OTHER_TENANT, "xms_edov": True, "email": "alice@example.com"}
    assert tenant_owns_email(claims=claims, email="alice@example.com", config=config)


def test_anonymous_sign_in_starts_are_throttled_per_address(entra, settings):
    settings.ENTRA_LOGIN_FLOWS_PER_MINUTE = 3
    for _ in range(3):
        assert Client().get("/auth/login/").status_code == 302
    sessions = Session.objects.count()
    response = Client().get("/auth/login/")
    assert response.status_code == 429
    assert b"Too many sign-ins" in response.content
    assert Session.objects.count() == sessions
    assert Client(REMOTE_ADDR="10.0.0.9").get("/auth/login/").status_code == 302
