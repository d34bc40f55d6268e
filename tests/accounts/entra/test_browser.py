"""Sign-in in a real browser: headless Chromium (Debian's), the app on a live server, the local Entra."""

from __future__ import annotations

import shutil

import pytest

from accounts.models import User
from tests.accounts.entra.conftest import ALICE, legacy_user
from tests.support.browser import headless_chrome

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not shutil.which("chromium") or not shutil.which("chromedriver"), reason="needs chromium"),
]


@pytest.fixture
def chrome(tmp_path):
    driver = headless_chrome(tmp_path / "profile")
    yield driver
    driver.quit()


def test_sign_in_in_chromium_lands_signed_in_on_the_account_page(chrome, live_server, entra, settings, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    settings.ENTRA_REDIRECT_URI = f"{live_server.url}/auth/callback/"
    settings.ALLOWED_HOSTS = ["*"]
    alice = legacy_user("alice@example.com")

    chrome.get(f"{live_server.url}/account/")
    WebDriverWait(chrome, 20).until(expected_conditions.title_contains("Sign in"))
    assert chrome.current_url.startswith(entra.url)
    chrome.find_element(By.CSS_SELECTOR, f'button[name="user"][value="{ALICE.oid}"]').click()
    WebDriverWait(chrome, 20).until(expected_conditions.url_to_be(f"{live_server.url}/account/"))

    assert chrome.find_element(By.ID, "email").text == "alice@example.com"
    chrome.save_screenshot(str(tmp_path / "account.png"))
    alice.refresh_from_db()
    assert alice.azure_entra_id == ALICE.oid
    assert User.objects.get(pk=alice.pk).requires_entra_migration is False

    chrome.find_element(By.ID, "sign-out").click()
    WebDriverWait(chrome, 20).until(expected_conditions.url_contains("/oauth2/v2.0/logout"))
