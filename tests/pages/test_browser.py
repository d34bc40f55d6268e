"""The pages in headless Chromium, signed in through the local Entra: at 1280 and 390 px, with axe-core, without JS.

Every page visited is written as a screenshot to the artifacts folder (see conftest), with its axe-core report.
"""

from __future__ import annotations

import pytest

from accounts.models import UserPreferences
from tests.accounts.entra.conftest import ADMIN, ALICE, MALLORY, legacy_user
from tests.pages.conftest import WIDTHS, check_page, needs_chromium, screenshot, set_width, sign_in

pytestmark = [pytest.mark.django_db(transaction=True), needs_chromium]


def by(driver, css: str):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, css)


def texts(driver, css: str) -> list[str]:
    return [element.text for element in by(driver, css)]


def image_is_drawn(driver, css: str) -> bool:
    (image,) = by(driver, css)
    return driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", image)


def wait_for(driver, css: str):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, 20).until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css)))


def test_a_signed_in_user_sees_each_page_at_desktop_and_phone_widths(
    chrome, site, alice_with_projects, artifacts_dir
):
    data = alice_with_projects
    project, bobs = data["older"], data["bobs"]
    main_tf = project.files.get(path="main.tf")
    sign_in(chrome, site, ALICE)
    pages = [
        ("account", "/account/", "Your account"),
        ("projects", "/projects/", "Your projects"),
        ("project", f"/projects/{project.pk}/", "network-hub"),
        ("file", f"/projects/{project.pk}/files/{main_tf.pk}/", "main.tf"),
        ("not-found", f"/projects/{bobs.pk}/", "Page not found"),
    ]

    for width in WIDTHS:
        set_width(chrome, width)
        for name, path, h1 in pages:
            chrome.get(f"{site.url}{path}")
            check_page(chrome, artifacts_dir, f"alice-{name}", width=width, h1=h1)
            # The layout on every page: her name and photo, the navigation, a way out, the version.
            assert texts(chrome, "#user-name") == ["Alice Example"]
            assert image_is_drawn(chrome, ".site-header img.avatar")
            assert texts(chrome, ".site-nav a") == ["Projects", "Account"]  # no Admin: she is not staff
            assert by(chrome, "form[action='/auth/logout/'][method='post'] button#sign-out")
            assert texts(chrome, "#version") == ["0.1.0"]

            if name == "account":
                assert image_is_drawn(chrome, "#profile-photo")
                assert texts(chrome, "#email") == ["alice@example.com"]
                assert texts(chrome, "#organization") == ["Example Corp"]
                assert texts(chrome, "#department") == ["Platform"]
                assert texts(chrome, "#directory") == [ALICE.tid]
                assert texts(chrome, "label[for='id_language']") == ["Language"]
            elif name == "projects":
                rows = [row.text for row in by(chrome, "#projects tbody tr")]
                assert len(rows) == 2
                assert rows[0].startswith("data-platform Azure Bicep 1")  # newest first
                assert rows[1].startswith("network-hub AWS Terraform 3")
                assert "bobs-secret-project" not in chrome.page_source
            elif name == "project":
                assert texts(chrome, "#files tbody td:first-child") == [
                    "main.tf",
                    "modules/network/file-1.tf",
                    "modules/network/file-2.tf",
                ]
            elif name == "file":
                assert chrome.title.startswith("main.tf")
                assert 'resource "azurerm_resource_group" "network-hub-0"' in texts(chrome, "#file-content")[0]
            elif name == "not-found":
                assert "bobs-secret-project" not in chrome.page_source

    # Focus is visible: the first Tab shows the skip link, outlined; the next ones outline each link.
    set_width(chrome, 1280)
    chrome.get(f"{site.url}/account/")
    from selenium.webdriver.common.keys import Keys

    for expected in ("Skip to content", "Infrastructure code platform", "Projects"):
        chrome.switch_to.active_element.send_keys(Keys.TAB)
        focused = chrome.switch_to.active_element
        assert focused.text == expected
        style = chrome.execute_script(
            "const s = getComputedStyle(arguments[0]); const r = arguments[0].getBoundingClientRect();"
            "return [s.outlineStyle, parseFloat(s.outlineWidth), r.top >= 0]",
            focused,
        )
        assert style == ["solid", 3, True], (expected, style)
    screenshot(chrome, artifacts_dir / "alice-account-focus-1280.png")

    # Preferences, saved through the form: it says so once, and the dark theme is what she now sees.
    from selenium.webdriver.support.ui import Select

    Select(by(chrome, "#id_theme")[0]).select_by_visible_text("Dark")
    by(chrome, "#save-preferences")[0].click()
    assert wait_for(chrome, ".messages .success").text == "Your preferences have been saved."
    assert chrome.find_element("css selector", "html").get_attribute("data-theme") == "dark"
    check_page(chrome, artifacts_dir, "alice-account-dark", width=1280, h1="Your account")
    assert UserPreferences.objects.get(user=data["alice"]).theme == "dark"
    chrome.refresh()
    assert not by(chrome, ".messages")  # shown once
    set_width(chrome, 390)
    chrome.get(f"{site.url}/projects/")
    check_page(chrome, artifacts_dir, "alice-projects-dark", width=390, h1="Your projects")

    by(chrome, "#sign-out")[0].click()
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(chrome, 20).until(expected_conditions.url_contains("/oauth2/v2.0/logout"))
    for width in WIDTHS:
        set_width(chrome, width)
        chrome.get(f"{site.url}/auth/signed-out/")
        check_page(chrome, artifacts_dir, "signed-out", width=width, h1="You have signed out")
        assert not by(chrome, ".site-nav") and texts(chrome, "#sign-in") == ["Sign in"]


def test_staff_see_admin_in_the_navigation_and_every_project_with_its_owner(
    chrome, site, alice_with_projects, artifacts_dir
):
    legacy_user("admin@example.com")
    sign_in(chrome, site, ADMIN, next_path="/projects/")
    for width in WIDTHS:
        set_width(chrome, width)
        chrome.get(f"{site.url}/projects/")
        check_page(chrome, artifacts_dir, "staff-projects", width=width, h1="All projects")
        assert texts(chrome, ".site-nav a") == ["Projects", "Account", "Admin"]
        assert "Owner" in texts(chrome, "#projects th")
        assert sorted(texts(chrome, "#projects td.owner")) == ["alice@example.com", "alice@example.com", "bob@example.com"]
        assert not by(chrome, ".site-header img.avatar")  # no photo in Entra: none shown
    by(chrome, "#nav-admin")[0].click()
    assert wait_for(chrome, "#site-name").text  # Django's admin, open to them


def test_a_refused_sign_in_says_what_to_do_next(chrome, site, artifacts_dir):
    legacy_user("alice@example.com")
    chrome.get(f"{site.url}/account/")
    wait_for(chrome, f'button[name="user"][value="{MALLORY.oid}"]').click()
    wait_for(chrome, "#sign-in-error")
    for width in WIDTHS:
        set_width(chrome, width)
        check_page(chrome, artifacts_dir, "sign-in-refused", width=width, h1="Sign-in failed")
        assert "administrator" in texts(chrome, "#next-step")[0]
        assert by(chrome, "#next-step a[href='/auth/login/']")


def test_every_form_works_without_javascript(chrome_without_js, site, alice_with_projects, artifacts_dir):
    chrome = chrome_without_js
    chrome.get("data:text/html,<title>off</title><script>document.title = 'on'</script>")
    assert chrome.title == "off"  # scripts really are off in this browser

    sign_in(chrome, site, ALICE)
    from selenium.webdriver.support.ui import Select

    Select(by(chrome, "#id_language")[0]).select_by_visible_text("Français (French)")
    by(chrome, "label[for='id_in_app_notifications']")[0].click()  # the label toggles its checkbox
    by(chrome, "#save-preferences")[0].click()
    assert wait_for(chrome, ".messages .success").text == "Your preferences have been saved."
    set_width(chrome, 390)
    check_page(chrome, artifacts_dir, "nojs-account-saved", width=390, h1="Your account", axe=False)
    prefs = UserPreferences.objects.get(user=alice_with_projects["alice"])
    assert (prefs.language, prefs.in_app_notifications, prefs.email_notifications) == ("fr", False, True)

    # Links all the way down to a file, then out through the sign-out button.
    by(chrome, ".site-nav a[href='/projects/']")[0].click()
    wait_for(chrome, "#projects a")
    [link] = [a for a in by(chrome, "#projects a") if a.text == "network-hub"]
    link.click()
    wait_for(chrome, "#files a").click()
    assert texts(chrome, "h1") == ["main.tf"]
    by(chrome, "#sign-out")[0].click()
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(chrome, 20).until(expected_conditions.url_contains("/oauth2/v2.0/logout"))
