"""The browser sign-in flow, end to end: this site, msal unchanged, the local Entra over HTTPS."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from accounts.models import EntraLinkAudit, EntraTokenCache, ProfilePhoto, RefusedEntraLink, User, UserPreferences
from tests.accounts.entra.conftest import ADMIN, ALICE, BOB, CAROL, MALLORY, TENANT, legacy_user

pytestmark = pytest.mark.django_db


def test_first_sign_in_links_the_flagged_legacy_user(browser, django_capture_on_commit_callbacks):
    alice = legacy_user("Alice@Example.com")
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.sign_in(ALICE, next_url="/account/?tab=profile")

    assert response.status_code == 302
    assert response["Location"] == "/account/?tab=profile"
    alice.refresh_from_db()
    assert (alice.azure_entra_id, alice.azure_tenant_id) == (ALICE.oid, TENANT)
    assert alice.requires_entra_migration is False
    assert alice.entra_linked_at is not None
    audit = EntraLinkAudit.objects.get(user=alice)
    assert (audit.event, audit.object_id, audit.matched_email) == ("linked", ALICE.oid, "alice@example.com")
    assert UserPreferences.objects.filter(user=alice).count() == 1
    # Tokens: keyed hashes and an encrypted cache, nothing in plain text.
    assert len(alice.azure_access_token_hash) == 64 and len(alice.azure_refresh_token_hash) == 64
    assert alice.azure_token_expires_at is not None
    assert b"refresh_token" not in bytes(EntraTokenCache.objects.get(user=alice).ciphertext)
    # Profile synced from Graph after the sign-in.
    assert (alice.full_name, alice.organization, alice.department) == ("Alice Example", "Example Corp", "Platform")
    assert alice.profile_picture_url == "/account/photo/"
    assert bytes(ProfilePhoto.objects.get(user=alice).content) == ALICE.photo

    page = browser.client.get("/account/")
    assert page.status_code == 200
    assert b"Alice@Example.com" in page.content
    photo = browser.client.get("/account/photo/")
    assert photo.content == ALICE.photo
    assert browser.client.get("/account/photo/", HTTP_IF_NONE_MATCH=photo["ETag"]).status_code == 304


def test_returning_user_is_found_by_object_id_after_an_email_change(browser, entra):
    alice = legacy_user("alice@example.com")
    browser.sign_in(ALICE)
    browser.client.logout()
    entra.users[ALICE.oid] = ALICE.__class__(**{**ALICE.__dict__, "email": "alice.new@example.com"})
    try:
        response = browser.sign_in(ALICE)
    finally:
        entra.users[ALICE.oid] = ALICE
    assert response.status_code == 302
    assert browser.client.session["_auth_user_id"] == str(alice.pk)
    assert User.objects.count() == 1
    assert EntraLinkAudit.objects.count() == 1


def test_roles_map_to_staff_and_superuser_at_every_sign_in(browser):
    admin_user = legacy_user("admin@example.com")
    browser.sign_in(ADMIN)
    admin_user.refresh_from_db()
    assert admin_user.is_staff and admin_user.is_superuser
    assert browser.client.get("/admin/").status_code == 200

    User.objects.filter(pk=admin_user.pk).update(is_superuser=False, is_staff=False)
    browser.client.logout()
    browser.sign_in(ADMIN)
    admin_user.refresh_from_db()
    assert admin_user.is_superuser  # re-applied from the token's roles


def test_admin_sign_in_goes_through_entra(client):
    response = client.get("/admin/login/")
    assert response.status_code == 302
    assert response["Location"] == "/auth/login/?next=/admin/"


def test_admin_sign_out_signs_out_of_entra_too(browser, entra):
    legacy_user("admin@example.com")
    browser.sign_in(ADMIN)
    response = browser.client.post("/admin/logout/")
    assert response.status_code == 302
    assert response["Location"].startswith(f"{entra.url}/{TENANT}/oauth2/v2.0/logout?")


def refused(response, reason: str) -> RefusedEntraLink:
    assert response.status_code == 403, response.content
    assert b"Sign-in failed" in response.content
    return RefusedEntraLink.objects.get(reason=reason)


def test_two_users_with_colliding_emails_are_not_linked(browser):
    first, second = legacy_user("alice@example.com"), legacy_user("ALICE@example.com")
    response = browser.sign_in(ALICE)
    record = refused(response, "ambiguous_email")
    assert sorted(record.candidate_ids) == sorted([first.pk, second.pk])
    assert User.objects.filter(azure_entra_id__isnull=False).count() == 0
    assert "_auth_user_id" not in browser.client.session


def test_a_candidate_linked_to_another_entra_account_is_refused(browser):
    user = legacy_user("alice@example.com", azure_entra_id="someone-else", azure_tenant_id=TENANT)
    refused(browser.sign_in(ALICE), "linked_elsewhere")
    user.refresh_from_db()
    assert user.azure_entra_id == "someone-else"


def test_an_inactive_user_is_refused(browser):
    legacy_user("carol@example.com", is_active=False)
    refused(browser.sign_in(CAROL), "inactive")
    assert not User.objects.get(email="carol@example.com").azure_entra_id


def test_an_email_asserted_by_a_tenant_that_does_not_own_it_is_never_linked(browser):
    alice = legacy_user("alice@example.com")
    refused(browser.sign_in(MALLORY), "unverified_email")
    alice.refresh_from_db()
    assert alice.azure_entra_id is None and alice.requires_entra_migration


def test_a_verified_domain_claim_lets_another_tenant_link(browser, entra):
    alice = legacy_user("alice@example.com")
    entra.users[MALLORY.oid] = MALLORY.__class__(**{**MALLORY.__dict__, "xms_edov": True})
    try:
        response = browser.sign_in(MALLORY)
    finally:
        entra.users[MALLORY.oid] = MALLORY
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.azure_tenant_id == MALLORY.tid


def test_without_an_account_and_without_jit_sign_in_is_refused(browser):
    refused(browser.sign_in(BOB), "no_account")
    assert User.objects.count() == 0


def test_just_in_time_creation_makes_a_new_user(browser, settings):
    settings.ENTRA_JIT_CREATE = True
    response = browser.sign_in(BOB)
    assert response.status_code == 302
    bob = User.objects.get(azure_entra_id=BOB.oid)
    assert bob.email == "Bob@Example.com" and not bob.requires_entra_migration
    assert EntraLinkAudit.objects.get(user=bob).event == "created"


def test_sign_out_ends_the_session_drops_the_cache_and_goes_to_entra(browser, entra):
    alice = legacy_user("alice@example.com")
    browser.sign_in(ALICE)
    assert EntraTokenCache.objects.filter(user=alice).exists()
    assert browser.client.get("/auth/logout/").status_code == 405

    response = browser.client.post("/auth/logout/")

    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}" == entra.url
    assert location.path == f"/{TENANT}/oauth2/v2.0/logout"
    query = parse_qs(location.query)
    assert query["post_logout_redirect_uri"] == ["http://testserver/auth/signed-out/"]
    assert query["logout_hint"]
    assert not EntraTokenCache.objects.filter(user=alice).exists()
    assert "_auth_user_id" not in browser.client.session
    assert browser.client.get("/account/").status_code == 302


def test_access_token_is_renewed_before_it_expires(browser, entra):
    alice = legacy_user("alice@example.com")
    browser.sign_in(ALICE)
    alice.refresh_from_db()
    before = alice.azure_access_token_hash
    refreshes = sum(1 for body in entra.token_requests if body.get("grant_type") == "refresh_token")
    User.objects.filter(pk=alice.pk).update(azure_token_expires_at="2000-01-01T00:00:00Z")

    assert browser.client.get("/account/").status_code == 200

    alice.refresh_from_db()
    assert alice.azure_access_token_hash != before
    assert sum(1 for body in entra.token_requests if body.get("grant_type") == "refresh_token") == refreshes + 1


def test_failed_renewal_sends_the_user_to_sign_in_again(browser):
    alice = legacy_user("alice@example.com")
    browser.sign_in(ALICE)
    EntraTokenCache.objects.filter(user=alice).delete()
    User.objects.filter(pk=alice.pk).update(azure_token_expires_at="2000-01-01T00:00:00Z")

    response = browser.client.get("/account/")

    assert response.status_code == 302
    assert response["Location"] == "/auth/login/?next=%2Faccount%2F"
    assert "_auth_user_id" not in browser.client.session


def test_each_tab_has_its_own_flow(browser):
    legacy_user("alice@example.com")
    first_tab, second_tab = browser.start("/account/?tab=1"), browser.start("/account/?tab=2")
    second = browser.callback(browser.pick(second_tab, ALICE))
    first = browser.callback(browser.pick(first_tab, ALICE))
    assert (second["Location"], first["Location"]) == ("/account/?tab=2", "/account/?tab=1")


def test_sign_in_works_when_a_machine_wide_ca_bundle_is_set(browser, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
    legacy_user("alice@example.com")
    assert browser.sign_in(ALICE).status_code == 302


def test_preferences_are_edited_on_the_account_page(browser):
    alice = legacy_user("alice@example.com")
    browser.sign_in(ALICE)
    response = browser.client.post(
        "/account/", {"theme": "dark", "language": "de", "email_notifications": "on", "notify_on_sync_failure": "on"}
    )
    assert response.status_code == 302
    prefs = UserPreferences.objects.get(user=alice)
    assert (prefs.theme, prefs.language, prefs.email_notifications, prefs.in_app_notifications) == (
        "dark",
        "de",
        True,
        False,
    )


def test_a_graph_failure_never_blocks_sign_in(browser, settings, django_capture_on_commit_callbacks, caplog):
    alice = legacy_user("alice@example.com")
    settings.GRAPH_URL = "https://127.0.0.1:9"  # nothing listens there
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.sign_in(ALICE)
    assert response.status_code == 302
    assert browser.client.get("/account/").status_code == 200
    alice.refresh_from_db()
    assert alice.azure_entra_id == ALICE.oid and alice.organization is None
    assert "profile sync of user" in caplog.text


def test_key_rotation_mid_session(browser, entra):
    from accounts.entra.keys import key_cache

    legacy_user("alice@example.com")
    assert browser.sign_in(ALICE).status_code == 302
    old_kid = entra.current_kid
    entra.rotate_keys()
    assert entra.current_kid != old_kid
    key_cache()._attempted_at -= 61  # a minute later
    browser.client.logout()
    assert browser.sign_in(ALICE).status_code == 302


@pytest.mark.parametrize("path", ["/auth/login/", "/auth/callback/?state=x&code=y", "/api/me"])
def test_without_entra_configuration_sign_in_answers_503_not_500(client, settings, path):
    settings.ENTRA_ENABLED = False
    response = client.get(path)
    assert response.status_code == 503
    assert b"not configured" in response.content
