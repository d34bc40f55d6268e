"""The admin's migration page: the figures, each linking to the filtered list, and the chart (Chromium screenshot)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import RefusedEntraLink, User
from tests.pages.conftest import artifacts_dir, chrome, needs_chromium, screenshot  # noqa: F401
from tests.support.admin import sign_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def migration(db):
    now = timezone.now()
    for i in range(12):
        User.objects.create(
            email=f"linked{i}@example.com",
            azure_entra_id=f"oid-{i}",
            azure_tenant_id="t",
            entra_linked_at=now - timedelta(days=i % 6),
        )
    for i in range(8):
        User.objects.create(email=f"flagged{i}@example.com", requires_entra_migration=True)
    RefusedEntraLink.objects.create(reason="ambiguous_email", tenant_id="t", object_id="o")
    return User.objects.create(email="admin@example.com", is_staff=True, is_superuser=True)


def test_the_page_shows_the_figures_linking_to_the_filtered_lists(client, migration):
    sign_in(client, migration)
    response = client.get("/admin/ops/migration/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "12 of 21 users linked" in html and "8 still to sign in" in html
    assert 'href="/admin/accounts/user/?requires_entra_migration__exact=1">8</a>' in html
    assert 'href="/admin/accounts/user/?entra_link=linked">12</a>' in html
    assert 'href="/admin/accounts/refusedentralink/?resolved__exact=0">1</a>' in html
    assert html.count('<rect class="bar"') == 30 and '<polyline class="to-go"' in html
    # The list the figure links to shows exactly those users.
    listed = client.get("/admin/accounts/user/?requires_entra_migration__exact=1")
    assert listed.context["cl"].result_count == 8


def test_the_page_needs_the_admin(client, migration):
    assert client.get("/admin/ops/migration/").status_code == 302  # to the sign-in
    nobody = User.objects.create(email="nobody@example.com", is_staff=True)
    sign_in(client, nobody)
    assert client.get("/admin/ops/migration/").status_code == 403


@needs_chromium
@pytest.mark.django_db(transaction=True)
def test_the_chart_renders_in_chromium(live_server, chrome, artifacts_dir, migration, client):  # noqa: F811
    from selenium.webdriver.common.by import By

    sign_in(client, migration)
    cookie = client.cookies["sessionid"].value
    chrome.get(f"{live_server.url}/admin/")  # the cookie's domain must be open before it can be set
    chrome.add_cookie({"name": "sessionid", "value": cookie, "path": "/"})
    chrome.get(f"{live_server.url}/admin/ops/migration/")
    svg = chrome.find_element(By.ID, "migration-chart")
    size = svg.size
    assert size["width"] > 300 and size["height"] > 100
    bars = svg.find_elements(By.CSS_SELECTOR, "rect.bar")
    assert len(bars) == 30 and any(bar.size["height"] > 10 for bar in bars)
    screenshot(chrome, artifacts_dir / "admin-migration-1280.png")
    assert (artifacts_dir / "admin-migration-1280.png").stat().st_size > 5000


def test_the_admin_home_links_to_the_page(client, migration):
    sign_in(client, migration)
    html = client.get("/admin/").content.decode()
    assert 'href="/admin/ops/migration/"' in html and "Users" in html  # the apps are still there
