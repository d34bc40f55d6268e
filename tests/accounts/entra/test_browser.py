"""Sign-in in a real browser: headless Chromium (Debian's), the app on a live server, the local Entra."""

from __future__ import annotations

import shutil

import pytest

from accounts.models import User
from tests.accounts.entra.conftest import ALICE, legacy_user

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not shutil.which("chromium") or not shutil.which("chromedriver"), reason="needs chromium"),
]


@pytest.fixture
def chrome(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        # The local Entra's certificate comes from a test CA this browser profile does not know.
        "--ignore-certificate-errors",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    driver.set_page_load_timeout(30)
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
