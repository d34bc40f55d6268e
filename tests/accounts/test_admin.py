"""The users admin: filters, search, the migration flag actions, masked token hashes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from django.utils import timezone

from accounts.models import LegacyRefreshToken, User, UserPreferences
from core.crypto import hash_token
from tests.support.admin import form_data, messages_of, shown

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:accounts_user_changelist")


@pytest.fixture
def alice():
    """Linked to Entra, migration done."""
    return User.objects.create_user(
        "alice@example.com",
        full_name="Alice Archer",
        azure_entra_id="oid-alice-0001",
        azure_tenant_id="tenant-a",
        entra_linked_at=timezone.now(),
    )


@pytest.fixture
def bob():
    """Not linked, still has to migrate."""
    return User.objects.create_user("bob@example.com", full_name="Bob Baker", requires_entra_migration=True)


@pytest.fixture
def carol():
    """Linked, and still flagged."""
    return User.objects.create_user(
        "carol@example.com",
        full_name="Carol Cole",
        azure_entra_id="oid-carol-0002",
        azure_tenant_id="tenant-b",
        requires_entra_migration=True,
    )


@pytest.fixture
def dave():
    """Not linked, not flagged."""
    return User.objects.create_user("dave@example.com", full_name="Dave Dunn")


def listed(response) -> set[str]:
    return {user.email for user in shown(response)}


def test_changelist_shows_link_status(client, operator, alice, bob):
    response = client.get(CHANGELIST)

    assert listed(response) == {"admin@example.com", "alice@example.com", "bob@example.com"}
    html = response.content.decode()
    assert html.count('<td class="field-entra_link">linked</td>') == 1
    assert html.count('<td class="field-entra_link">not linked</td>') == 2


def test_changelist_is_ordered_by_email(client, operator, dave, carol, alice, bob):
    emails = [user.email for user in shown(client.get(CHANGELIST))]

    assert emails == sorted(emails)


def test_changelist_sorts_by_link_status(client, operator, alice, bob, carol, dave):
    # The changelist puts the action checkbox before list_display.
    column = 1 + list(client.get(CHANGELIST).context["cl"].model_admin.list_display).index("entra_link")

    ascending = client.get(CHANGELIST, {"o": f"{column}.1"}).context["cl"].result_list
    descending = client.get(CHANGELIST, {"o": f"-{column}.1"}).context["cl"].result_list

    assert [user.is_linked_to_entra for user in ascending] == [False, False, False, True, True]
    assert [user.email for user in descending] == [
        "alice@example.com",
        "carol@example.com",
        "admin@example.com",
        "bob@example.com",
        "dave@example.com",
    ]


def test_filter_by_requires_entra_migration(client, operator, alice, bob, carol, dave):
    assert listed(client.get(CHANGELIST, {"requires_entra_migration__exact": "1"})) == {
        "bob@example.com",
        "carol@example.com",
    }
    assert listed(client.get(CHANGELIST, {"requires_entra_migration__exact": "0"})) == {
        "admin@example.com",
        "alice@example.com",
        "dave@example.com",
    }


def test_filter_by_entra_link_status(client, operator, alice, bob, carol, dave):
    assert listed(client.get(CHANGELIST, {"entra_link": "linked"})) == {"alice@example.com", "carol@example.com"}
    assert listed(client.get(CHANGELIST, {"entra_link": "not_linked"})) == {
        "admin@example.com",
        "bob@example.com",
        "dave@example.com",
    }


def test_filters_combine(client, operator, alice, bob, carol, dave):
    response = client.get(CHANGELIST, {"entra_link": "not_linked", "requires_entra_migration__exact": "1"})

    assert listed(response) == {"bob@example.com"}


def test_filter_by_tenant(client, operator, alice, carol):
    assert listed(client.get(CHANGELIST, {"azure_tenant_id": "tenant-b"})) == {"carol@example.com"}


def test_search_by_email(client, operator, alice, bob, carol):
    assert listed(client.get(CHANGELIST, {"q": "BOB@example"})) == {"bob@example.com"}


def test_search_by_entra_id(client, operator, alice, bob, carol):
    assert listed(client.get(CHANGELIST, {"q": "oid-carol-0002"})) == {"carol@example.com"}


def run_action(client, action: str, users: list[User]):
    return client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [user.pk for user in users]},
        follow=True,
    )


def flags() -> dict[str, bool]:
    return dict(User.objects.values_list("email", "requires_entra_migration"))


def test_mark_action_flags_only_the_selected_users(client, operator, alice, bob, carol, dave):
    before = flags()

    response = run_action(client, "mark_requires_entra_migration", [alice, bob, dave])

    assert messages_of(response) == ["Marked 2 users as requiring Entra migration; 1 already did."]
    assert flags() == {**before, "alice@example.com": True, "dave@example.com": True}


def test_clear_action_clears_only_the_selected_users(client, operator, alice, bob, carol, dave):
    before = flags()

    response = run_action(client, "clear_requires_entra_migration", [bob, carol, dave])

    assert messages_of(response) == ["Cleared the Entra migration flag on 2 users; 1 did not have it."]
    assert flags() == {**before, "bob@example.com": False, "carol@example.com": False}


def test_flag_action_touches_updated_at_only_where_the_flag_changed(client, operator, alice, bob):
    long_ago = timezone.now() - timedelta(days=30)
    User.objects.filter(pk__in=[alice.pk, bob.pk]).update(updated_at=long_ago)

    response = run_action(client, "mark_requires_entra_migration", [alice, bob])

    assert messages_of(response) == ["Marked 1 user as requiring Entra migration; 1 already did."]
    alice.refresh_from_db()
    bob.refresh_from_db()
    assert alice.updated_at > long_ago
    assert bob.updated_at == long_ago


@pytest.fixture
def tokens() -> dict[str, str]:
    return {
        "azure_access_token_hash": hash_token("azure-access"),
        "azure_refresh_token_hash": hash_token("azure-refresh"),
        "github_access_token_hash": hash_token("github-access"),
    }


@pytest.fixture
def erin(tokens):
    user = User.objects.create_user(
        "erin@example.com", full_name="Erin Eve", azure_entra_id="oid-erin", azure_tenant_id="tenant-a", **tokens
    )
    UserPreferences.objects.create(user=user, theme=UserPreferences.Theme.DARK, language="de")
    return user


def change_url(user: User) -> str:
    return reverse("admin:accounts_user_change", args=[user.pk])


def test_change_page_shows_only_a_prefix_of_each_token_hash(client, operator, erin, tokens):
    response = client.get(change_url(erin))

    assert response.status_code == 200
    html = response.content.decode()
    for name, value in tokens.items():
        assert value not in html, name
        assert f"{value[:6]}…" in html, name
        assert f'name="{name}"' not in html
    assert not set(tokens) & set(response.context["adminform"].form.fields)


def test_change_page_shows_a_dash_for_missing_token_hashes(client, operator, dave):
    response = client.get(change_url(dave))

    readonly = {
        field.field["name"]: field.contents()
        for fieldset in response.context["adminform"]
        for line in fieldset
        for field in line
        if field.is_readonly
    }
    assert readonly["azure_access_token"] == "—"
    assert readonly["github_access_token"] == "—"


def test_change_form_post_cannot_change_token_hashes(client, operator, erin, tokens):
    data = form_data(client.get(change_url(erin)))
    data.update(full_name="Erin Renamed", **{name: hash_token("forged") for name in tokens})

    response = client.post(change_url(erin), data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    erin.refresh_from_db()
    assert erin.full_name == "Erin Renamed"
    assert {name: getattr(erin, name) for name in tokens} == tokens


def test_change_form_post_cannot_change_the_entra_link(client, operator, erin):
    data = form_data(client.get(change_url(erin)))
    data.update(full_name="Erin Renamed", azure_entra_id="oid-someone-else", azure_tenant_id="tenant-z")

    assert client.post(change_url(erin), data).status_code == 302
    erin.refresh_from_db()
    assert (erin.full_name, erin.azure_entra_id, erin.azure_tenant_id) == ("Erin Renamed", "oid-erin", "tenant-a")


def test_preferences_inline_is_on_the_change_page(client, operator, erin):
    response = client.get(change_url(erin))

    [inline] = response.context["inline_admin_formsets"]
    assert inline.opts.model is UserPreferences
    [form] = inline.formset.forms
    assert form.instance.pk == erin.preferences.pk
    html = response.content.decode()
    assert 'name="preferences-0-theme"' in html
    assert 'name="preferences-0-language"' in html and 'value="de"' in html


def test_preferences_can_be_edited_through_the_inline(client, operator, erin):
    data = form_data(client.get(change_url(erin)))
    data["preferences-0-theme"] = "light"

    assert client.post(change_url(erin), data).status_code == 302
    erin.preferences.refresh_from_db()
    assert erin.preferences.theme == "light"


def test_users_cannot_be_added(client, operator):
    assert client.get(reverse("admin:accounts_user_add")).status_code == 403
    assert client.post(reverse("admin:accounts_user_add"), {"email": "new@example.com"}).status_code == 403
    assert not User.objects.filter(email="new@example.com").exists()


@pytest.fixture
def legacy_token(bob):
    return LegacyRefreshToken.objects.create(
        user=bob, token_hash=hash_token("legacy-refresh"), expires_at=timezone.now() + timedelta(days=7)
    )


def test_legacy_refresh_tokens_are_listed_with_masked_hashes(client, operator, legacy_token):
    response = client.get(reverse("admin:accounts_legacyrefreshtoken_changelist"))

    assert response.status_code == 200
    assert shown(response) == [legacy_token]
    html = response.content.decode()
    assert legacy_token.token_hash not in html
    assert f"{legacy_token.token_hash[:6]}…" in html


def test_legacy_refresh_token_page_is_read_only_and_masked(client, operator, legacy_token):
    url = reverse("admin:accounts_legacyrefreshtoken_change", args=[legacy_token.pk])

    response = client.get(url)

    assert response.status_code == 200
    assert legacy_token.token_hash not in response.content.decode()
    assert f"{legacy_token.token_hash[:6]}…" in response.content.decode()
    assert not response.context["adminform"].form.fields
    assert client.post(url, {"token_hash": hash_token("forged")}).status_code == 403
    assert client.get(reverse("admin:accounts_legacyrefreshtoken_add")).status_code == 403
    legacy_token.refresh_from_db()
    assert legacy_token.token_hash == hash_token("legacy-refresh")


def test_legacy_refresh_tokens_can_be_deleted(client, operator, legacy_token):
    url = reverse("admin:accounts_legacyrefreshtoken_delete", args=[legacy_token.pk])

    response = client.post(url, {"post": "yes"})

    assert response.status_code == 302
    assert not LegacyRefreshToken.objects.filter(pk=legacy_token.pk).exists()


@pytest.fixture
def helpdesk(client, db):
    """Staff, not superuser, with the permissions an operator of the migration flag needs."""
    user = User.objects.create_user("helpdesk@example.com", full_name="Help Desk", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="accounts", codename__in=["view_user", "change_user"])
    )
    client.force_login(user)
    return user


PRIVILEGE_FIELDS = {"is_superuser", "is_staff", "groups", "user_permissions"}


def privileges(user: User) -> tuple:
    user.refresh_from_db()
    return user.is_superuser, user.is_staff, set(user.groups.all()), set(user.user_permissions.all())


def escalation(response) -> dict:
    """The change form as sent back, with every privilege the form could grant switched on."""
    data = form_data(response)
    data.update(
        full_name="Renamed",
        is_superuser="on",
        is_staff="on",
        groups=[Group.objects.get_or_create(name="operators")[0].pk],
        user_permissions=list(Permission.objects.values_list("pk", flat=True)),
    )
    return data


def test_privilege_fields_are_read_only_for_staff_who_are_not_superusers(client, helpdesk, dave):
    response = client.get(change_url(dave))

    assert response.status_code == 200
    assert not PRIVILEGE_FIELDS & set(response.context["adminform"].form.fields)


def test_staff_who_are_not_superusers_cannot_grant_superuser(client, helpdesk, dave):
    before = privileges(dave)

    response = client.post(change_url(dave), escalation(client.get(change_url(dave))))

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert privileges(dave) == before
    assert dave.full_name == "Renamed"


def test_staff_who_are_not_superusers_cannot_grant_themselves_superuser(client, helpdesk):
    before = privileges(helpdesk)

    response = client.post(change_url(helpdesk), escalation(client.get(change_url(helpdesk))))

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert privileges(helpdesk) == before


def test_staff_who_are_not_superusers_cannot_change_a_superuser(client, helpdesk):
    # Otherwise a new email on an unlinked superuser would let its owner link to it.
    root = User.objects.create_superuser("root@example.com", requires_entra_migration=True)

    response = client.get(change_url(root))
    assert response.status_code == 200
    assert not response.context["adminform"].form.fields
    assert client.post(change_url(root), {"email": "helpdesk-alt@example.com"}).status_code == 403
    root.refresh_from_db()
    assert root.email == "root@example.com"


def test_superusers_can_change_privileges(client, operator, dave):
    response = client.post(change_url(dave), escalation(client.get(change_url(dave))))

    assert response.status_code == 302, response.context["adminform"].form.errors
    is_superuser, is_staff, groups, permissions = privileges(dave)
    assert (is_superuser, is_staff) == (True, True)
    assert {group.name for group in groups} == {"operators"}
    assert permissions == set(Permission.objects.all())
