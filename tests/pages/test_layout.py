"""The base layout every page shares, and the error pages in it: plain words on what to do next, no stack trace."""

from __future__ import annotations

import tomllib

import pytest
from django.test import Client

from accounts.models import User
from config.urls import server_error
from tests.pages.conftest import ROOT

pytestmark = pytest.mark.django_db


def html(response) -> str:
    return response.content.decode()


def in_layout(page: str) -> bool:
    return all(
        part in page
        for part in (
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            "/static/core/site.css",
            '<a class="brand" href="/">Infrastructure code platform</a>',
            '<main id="main"',
            '<footer class="site-footer">',
        )
    )


@pytest.fixture
def alice(client):
    user = User.objects.create(email="alice@example.com", full_name="Alice Example", profile_picture_url="/account/photo/")
    client.force_login(user)
    return user


def test_the_footer_shows_the_version_from_pyproject(client, alice):
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert f'version <span id="version">{version}</span>' in html(client.get("/projects/"))


def test_the_header_shows_who_is_signed_in_and_how_to_sign_out(client, alice):
    page = html(client.get("/projects/"))

    assert in_layout(page)
    assert '<span class="name" id="user-name">Alice Example</span>' in page
    assert '<img class="avatar" src="/account/photo/" alt=""' in page
    assert '<form class="inline" method="post" action="/auth/logout/">' in page
    assert 'name="csrfmiddlewaretoken"' in page
    assert '<a href="/projects/" aria-current="page">Projects</a>' in page
    assert '<a href="/account/">Account</a>' in page
    assert "Admin</a>" not in page


def test_admin_is_in_the_navigation_for_staff_only(client):
    client.force_login(User.objects.create(email="staff@example.com", is_staff=True))
    page = html(client.get("/account/"))
    assert '<a href="/admin/" id="nav-admin">Admin</a>' in page
    assert '<span class="name" id="user-name">staff@example.com</span>' in page  # no name: the email


def test_a_visitor_sees_a_sign_in_link_and_no_navigation(client):
    page = html(client.get("/auth/signed-out/"))
    assert in_layout(page)
    assert '<a href="/auth/login/" id="sign-in">Sign in</a>' in page
    assert 'class="site-nav"' not in page


def test_a_missing_page_is_a_404_in_the_layout(client, alice):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    page = html(response)
    assert in_layout(page) and "<h1>Page not found</h1>" in page
    assert '<a href="/projects/">your projects</a>' in page
    assert 'id="user-name"' in page  # still signed in, and shown so


@pytest.mark.urls("tests.pages.urls")
def test_a_server_error_is_a_500_in_the_layout_without_any_detail(client, alice, settings):
    settings.DEBUG = False
    client.raise_request_exception = False

    response = client.get("/test/broken/")

    assert response.status_code == 500
    page = html(response)
    assert in_layout(page) and "<h1>Something went wrong on our side</h1>" in page
    assert "Wait a minute and try again" in page
    assert "version <span" in page
    assert "secret detail" not in page and "Traceback" not in page and "RuntimeError" not in page


def test_the_500_handler_renders_without_context_processors_or_a_session(rf):
    response = server_error(rf.get("/anything/"))
    assert response.status_code == 500
    assert "<h1>Something went wrong on our side</h1>" in html(response)
    assert "Sign out" not in html(response)


@pytest.mark.urls("tests.pages.urls")
def test_a_refusal_is_a_403_in_the_layout(client, alice):
    response = client.get("/test/forbidden/")
    assert response.status_code == 403
    page = html(response)
    assert in_layout(page) and "<h1>You do not have access to this page</h1>" in page
    assert "ask your platform administrator" in page and "secret detail" not in page


@pytest.mark.urls("tests.pages.urls")
def test_a_bad_request_is_a_400_in_the_layout(client, alice):
    response = client.get("/test/bad/")
    assert response.status_code == 400
    page = html(response)
    assert in_layout(page) and "<h1>The request could not be understood</h1>" in page
    assert "secret detail" not in page


def test_an_expired_form_is_a_403_that_says_to_reload(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post("/account/", {"theme": "dark", "language": "en"})
    assert response.status_code == 403
    page = html(response)
    assert in_layout(page) and "<h1>The form has expired</h1>" in page
    assert "reload the page" in page


def test_a_failed_sign_in_is_in_the_layout_and_says_what_to_do_next(client, settings):
    settings.ENTRA_ENABLED = True
    response = client.get("/auth/callback/", {"state": "nothing-started", "code": "x"})

    assert response.status_code == 400
    page = html(response)
    assert in_layout(page) and "<h1>Sign-in failed</h1>" in page
    assert 'id="sign-in-error"' in page and "<h2>What to do next</h2>" in page
    assert '<a href="/auth/login/">Sign in with Microsoft</a> again' in page


@pytest.mark.parametrize(
    ("status", "advice"),
    [(403, "refused sign-ins are recorded"), (429, "Wait a minute"), (503, "This is on our side")],
)
def test_each_kind_of_sign_in_failure_has_its_own_next_step(rf, status, advice):
    from django.contrib.auth.models import AnonymousUser

    from accounts.entra.views import _error

    request = rf.get("/auth/callback/")
    request.user = AnonymousUser()
    response = _error(request, "Something failed.", status=status)
    assert response.status_code == status
    assert advice in html(response)
