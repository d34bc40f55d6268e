"""The pages people see: test data, a headless Chromium signed in through the local Entra, screenshots, axe-core.

Screenshots go to ``$TEST_ARTIFACTS_DIR`` (default ``var/test-artifacts/pages/`` under the repository), one PNG
per page and width, with the page's axe-core results beside it as JSON.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import struct
import zlib
from dataclasses import replace
from pathlib import Path

import pytest

from accounts.models import User
from devtools.local_entra import LocalUser
from projects.models import GeneratedFile, Project
from tests.accounts.entra import conftest as entra_conftest
from tests.accounts.entra.conftest import ALICE, legacy_user
from tests.support.browser import headless_chrome

# The local Entra's fixtures, here too.
entra_server = entra_conftest.entra_server
entra = entra_conftest.entra

ROOT = Path(__file__).resolve().parents[2]
AXE_VERSION = "4.14.1"
AXE_SHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"
AXE_JS = ROOT / "tests" / "vendor" / f"axe-core-{AXE_VERSION}" / "axe.min.js"
WIDTHS = (1280, 390)
HEIGHTS = {1280: 800, 390: 844}
# What a person cannot get past: axe's two top impacts fail the test; the others are written to the report.
BLOCKING_IMPACTS = {"serious", "critical"}

needs_chromium = pytest.mark.skipif(
    not shutil.which("chromium") or not shutil.which("chromedriver"), reason="needs chromium and chromedriver"
)


def png(rgb: tuple[int, int, int], size: int = 96) -> bytes:
    """A real single-colour PNG, so that the browser has a photo to draw."""
    raw = zlib.compress((b"\x00" + bytes(rgb) * size) * size)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def make_project(owner: User, name: str, *, files: int = 2, **fields) -> Project:
    fields.setdefault("cloud_provider", Project.CloudProvider.AZURE)
    fields.setdefault("iac_tool", Project.IacTool.TERRAFORM)
    project = Project.objects.create(owner=owner, name=name, **fields)
    GeneratedFile.objects.bulk_create(
        GeneratedFile(
            project=project,
            path=f"modules/network/file-{i}.tf" if i else "main.tf",
            content=f'resource "azurerm_resource_group" "{name}-{i}" {{\n  name     = "{name}-{i}"\n  location = "westeurope"\n}}\n',
            sha256=hashlib.sha256(f"{name}-{i}".encode()).hexdigest(),
        )
        for i in range(files)
    )
    return project


@pytest.fixture
def artifacts_dir() -> Path:
    path = Path(os.environ.get("TEST_ARTIFACTS_DIR") or ROOT / "var" / "test-artifacts" / "pages")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def site(live_server, settings, request):
    """The app on a live server, signing in through the local Entra; Alice's photo is a real PNG."""
    entra = request.getfixturevalue("entra")
    settings.ENTRA_REDIRECT_URI = f"{live_server.url}/auth/callback/"
    settings.ALLOWED_HOSTS = ["*"]
    entra.users[ALICE.oid] = replace(ALICE, photo=png((46, 125, 50)))
    yield live_server
    entra.users[ALICE.oid] = ALICE


def _chrome(tmp_path: Path, *, javascript: bool):
    return headless_chrome(tmp_path / ("profile" if javascript else "profile-nojs"), javascript=javascript)


@pytest.fixture
def chrome(tmp_path):
    driver = _chrome(tmp_path, javascript=True)
    yield driver
    driver.quit()


@pytest.fixture
def chrome_without_js(tmp_path):
    driver = _chrome(tmp_path, javascript=False)
    yield driver
    driver.quit()


def set_width(driver, width: int) -> None:
    """The viewport exactly ``width`` CSS pixels wide; below 600 as a phone, which honours the meta viewport."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": HEIGHTS.get(width, 800), "deviceScaleFactor": 1, "mobile": width < 600},
    )


def sign_in(driver, live_server, user: LocalUser, *, next_path: str = "/account/") -> None:
    """Through the local Entra's sign-in page, as a person would: pick the account."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{live_server.url}{next_path}")
    WebDriverWait(driver, 20).until(expected_conditions.title_contains("Sign in"))
    driver.find_element(By.CSS_SELECTOR, f'button[name="user"][value="{user.oid}"]').click()
    WebDriverWait(driver, 20).until(expected_conditions.url_to_be(f"{live_server.url}{next_path}"))


def screenshot(driver, path: Path) -> None:
    """The whole page, not only what fits in the viewport."""
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    path.write_bytes(base64.b64decode(shot["data"]))


def axe_violations(driver) -> list[dict]:
    """axe-core's violations on the current page (every impact)."""
    source = AXE_JS.read_bytes()
    assert hashlib.sha256(source).hexdigest() == AXE_SHA256, f"{AXE_JS} is not axe-core {AXE_VERSION} as vendored"
    driver.execute_script(source.decode())
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        "  .then(r => done({violations: r.violations})).catch(e => done({error: String(e)}));"
    )
    assert "error" not in result, result
    return result["violations"]


def blocking(violations: list[dict]) -> list[str]:
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in violations
        if v["impact"] in BLOCKING_IMPACTS
    ]


def check_page(driver, artifacts: Path, name: str, *, width: int, h1: str, axe: bool = True) -> None:
    """What every page owes a person at this width: one h1 (this one), no sideways scrolling, no serious axe finding.

    Writes ``<name>-<width>.png`` and, with ``axe``, ``<name>-<width>.axe.json`` to ``artifacts``.
    """
    from selenium.webdriver.common.by import By

    headings = [element.text for element in driver.find_elements(By.TAG_NAME, "h1")]
    assert headings == [h1], f"{name} at {width}px: h1s {headings}"
    inner, scroll = driver.execute_script("return [window.innerWidth, document.documentElement.scrollWidth]")
    assert inner == width, f"{name}: the viewport is {inner}px, not {width}px (is the meta viewport missing?)"
    assert scroll <= inner, f"{name} scrolls sideways at {width}px: {scroll}px of content in {inner}px"
    screenshot(driver, artifacts / f"{name}-{width}.png")
    if axe:
        violations = axe_violations(driver)
        (artifacts / f"{name}-{width}.axe.json").write_text(json.dumps(violations, indent=2))
        assert blocking(violations) == [], f"{name} at {width}px"


@pytest.fixture
def alice_with_projects(db):
    """Alice (a migrated legacy user) with two projects; Bob with one of his own."""
    alice = legacy_user("alice@example.com")
    bob = User.objects.create(email="bob@example.com", full_name="Bob")
    older = make_project(alice, "network-hub", files=3, cloud_provider="aws", iac_tool="terraform")
    newer = make_project(alice, "data-platform", files=1, cloud_provider="azure", iac_tool="bicep")
    bobs = make_project(bob, "bobs-secret-project", files=1)
    return {"alice": alice, "bob": bob, "older": older, "newer": newer, "bobs": bobs}
