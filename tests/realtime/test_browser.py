"""In headless Chromium against a real uvicorn process: sign in, open /account/, an operator's notice appears live."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.accounts.entra.conftest import ALICE, TENANT
from tests.core.test_channel_layers import REDIS_URL, _redis_up
from tests.realtime.server import ROOT, LiveDatabase, Server, server_env
from tests.support.browser import headless_chrome

pytestmark = [
    pytest.mark.skipif(not _redis_up() and not os.environ.get("CI"), reason="needs Redis on 127.0.0.1:6379"),
    pytest.mark.skipif(
        not shutil.which("chromium") or not shutil.which("chromedriver"), reason="needs chromium and chromedriver"
    ),
]


@pytest.fixture(scope="module")
def browser_db(realtime_template, tmp_path_factory):
    db = LiveDatabase.clone(realtime_template, tmp_path_factory.mktemp("realtime-browser-db"))
    db.execute(
        "INSERT INTO users (email, full_name, azure_entra_id, azure_tenant_id) VALUES (%s, %s, %s, %s)",
        [ALICE.email, ALICE.name, ALICE.oid, TENANT],
    )
    yield db
    db.drop()


def new_server(db, entra_server, log, **fields) -> Server:
    server = Server(db, entra_server, log, **fields)
    server.env.update(REDIS_URL=REDIS_URL, REALTIME_HEARTBEAT_S="20", REALTIME_RECHECK_S="60")
    return server.start()


@pytest.fixture(scope="module")
def server(browser_db, entra_server, tmp_path_factory):
    server = new_server(browser_db, entra_server, tmp_path_factory.mktemp("realtime-browser") / "server.log")
    yield server
    server.stop()


def sign_in_to_account(chrome, server) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as until
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(chrome, 30)
    chrome.get(f"{server.url}/account/")
    wait.until(until.title_contains("Sign in"))
    chrome.find_element(By.CSS_SELECTOR, f'button[name="user"][value="{ALICE.oid}"]').click()
    wait.until(until.url_to_be(f"{server.url}/account/"))


def wait_for_state(chrome, state: str, timeout: float = 30) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as until
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(chrome, timeout).until(
        until.presence_of_element_located((By.CSS_SELECTOR, f"#live[data-state='{state}']"))
    )


@pytest.fixture
def chrome(tmp_path):
    driver = headless_chrome(tmp_path / "profile")
    yield driver
    driver.quit()


def test_a_notice_sent_with_the_command_appears_on_the_account_page(chrome, server, entra_server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as until
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(chrome, 30)
    sign_in_to_account(chrome, server)
    wait_for_state(chrome, "live")

    result = subprocess.run(
        [sys.executable, "manage.py", "notify", "--text", "Maintenance tonight at 22:00", "--user", ALICE.email],
        cwd=ROOT,
        env=server_env(server.db, entra_server, REDIS_URL=REDIS_URL),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr

    notice = wait.until(until.visibility_of_element_located((By.CSS_SELECTOR, "#live-notices .live-notice")))
    assert notice.text == "Maintenance tonight at 22:00"


def test_the_page_reconnects_after_a_restart_and_not_after_sign_out(chrome, browser_db, entra_server, tmp_path):
    import time

    first = new_server(browser_db, entra_server, tmp_path / "first.log")
    try:
        sign_in_to_account(chrome, first)
        wait_for_state(chrome, "live")
        first.stop()  # SIGTERM: the page's socket closes with 1001 and the page retries with backoff
        wait_for_state(chrome, "reconnecting", timeout=10)
    finally:
        first.stop()
    again = new_server(browser_db, entra_server, tmp_path / "again.log", port=first.port)
    try:
        wait_for_state(chrome, "live", timeout=30)  # the same session cookie, a new process

        chrome.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "const form = document.querySelector(\"form[action='/auth/logout/']\");"
            "fetch(form.action, {method: 'POST', body: new FormData(form), redirect: 'manual'}).then(() => done());"
        )
        wait_for_state(chrome, "closed", timeout=10)  # 4401: signed out, at once
        time.sleep(3)
        assert chrome.find_element("css selector", "#live").get_attribute("data-state") == "closed"  # no retry
    finally:
        again.stop()
