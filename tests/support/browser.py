"""Headless Chromium (Debian's chromium and chromium-driver), as every browser test drives it."""

from __future__ import annotations

import shutil
from pathlib import Path

HAVE_CHROMIUM = bool(shutil.which("chromium") and shutil.which("chromedriver"))

FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-prefers-reduced-motion",
    # The local Entra's certificate comes from a test CA this browser profile does not know.
    "--ignore-certificate-errors",
)


def headless_chrome(profile_dir: Path, *, javascript: bool = True):
    """A new browser with its own profile in ``profile_dir``; the caller quits it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in (*FLAGS, f"--user-data-dir={profile_dir}"):
        options.add_argument(flag)
    if not javascript:
        options.add_argument("--blink-settings=scriptEnabled=false")
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(60)
    return driver
