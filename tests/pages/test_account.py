"""/account/: the profile from Entra with the photo, and preferences with proper controls that say when saved."""

from __future__ import annotations

import re

import pytest

from accounts.models import ProfilePhoto, User, UserPreferences
from tests.pages.conftest import png

pytestmark = pytest.mark.django_db

TENANT = "7a3f0000-0000-4000-8000-00000000c0de"


@pytest.fixture
def alice(client):
    user = User.objects.create(
        email="alice@example.com",
        full_name="Alice Example",
        organization="Example Corp",
        department="Platform",
        azure_entra_id="aaaaaaaa-0000-4000-8000-000000000001",
        azure_tenant_id=TENANT,
        profile_picture_url="/account/photo/",
    )
    ProfilePhoto.objects.create(user=user, content=png((46, 125, 50)), content_type="image/png", etag='"p1"')
    client.force_login(user)
    return user


def html(response) -> str:
    return response.content.decode()


def test_the_profile_shows_the_photo_organization_department_and_directory(client, alice):
    page = html(client.get("/account/"))

    assert '<img class="avatar" id="profile-photo" src="/account/photo/" alt="Your photo"' in page
    assert '<dd id="organization">Example Corp</dd>' in page
    assert '<dd id="department">Platform</dd>' in page
    assert f'<span class="mono">{TENANT}</span>' in page
    assert '<dd id="email">alice@example.com</dd>' in page
    assert page.count("<h1>") == 1


def test_without_a_photo_none_is_shown(client):
    client.force_login(User.objects.create(email="bob@example.com"))
    page = html(client.get("/account/"))
    assert "/account/photo/" not in page
    assert '<dd id="directory">—</dd>' in page


def test_language_and_theme_are_chosen_from_lists_and_every_control_has_a_label(client, alice):
    page = html(client.get("/account/"))

    assert '<select name="language" id="id_language">' in page
    assert '<option value="de">Deutsch (German)</option>' in page
    assert '<option value="en" selected>English</option>' in page
    assert '<select name="theme" id="id_theme">' in page
    assert re.findall(r'<option value="(\w+)"', page.split('id="id_theme"')[1].split("</select>")[0]) == [
        "system",
        "light",
        "dark",
    ]
    for name in ("theme", "language", "email_notifications", "in_app_notifications", "notify_on_sync_failure"):
        assert f'<label for="id_{name}">' in page, name
        assert f'id="id_{name}"' in page, name
    assert page.count('type="checkbox"') == 3
    assert "<legend>Notifications</legend>" in page


def test_saving_preferences_says_so_once(client, alice):
    response = client.post("/account/", {"theme": "dark", "language": "ja", "email_notifications": "on"}, follow=True)

    assert response.redirect_chain == [("/account/", 302)]
    assert '<li class="success">Your preferences have been saved.</li>' in html(response)
    prefs = UserPreferences.objects.get(user=alice)
    assert (prefs.theme, prefs.language) == ("dark", "ja")
    assert (prefs.email_notifications, prefs.in_app_notifications, prefs.notify_on_sync_failure) == (True, False, False)
    assert 'data-theme="dark"' in html(response)  # the layout follows the chosen theme
    assert "have been saved" not in html(client.get("/account/"))


def test_every_switch_can_be_turned_off(client, alice):
    response = client.post("/account/", {"theme": "light", "language": "en"})
    assert response.status_code == 302
    prefs = UserPreferences.objects.get(user=alice)
    assert not (prefs.email_notifications or prefs.in_app_notifications or prefs.notify_on_sync_failure)


def test_a_language_not_on_the_list_is_refused_and_nothing_is_saved(client, alice):
    response = client.post("/account/", {"theme": "dark", "language": "xx-evil"})

    assert response.status_code == 200
    assert "Select a valid choice" in html(response)
    assert UserPreferences.objects.get(user=alice).theme == "system"
    assert "have been saved" not in html(response)


def test_a_language_saved_before_the_list_existed_stays_selected(client, alice):
    UserPreferences.objects.create(user=alice, language="pt-BR")
    page = html(client.get("/account/"))
    assert '<option value="pt-BR" selected>pt-BR</option>' in page
    assert client.post("/account/", {"theme": "system", "language": "pt-BR"}).status_code == 302
