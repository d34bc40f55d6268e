"""Behind a TLS-terminating proxy: the proxy's header makes requests secure, and sign-in URLs follow."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from accounts.models import User

# What a TLS-terminating proxy sends on: the Host the browser asked for, and the scheme it used.
PROXY = {"Host": "testserver", "X-Forwarded-Proto": "https"}


@pytest.fixture
def behind_proxy(settings, entra):
    # What SECURE_PROXY_SSL_HEADER=X-Forwarded-Proto makes of the environment, off DEBUG.
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    return entra


def test_the_proxy_header_makes_the_request_secure(client, behind_proxy, db):
    response = client.get("/auth/signed-out/", headers=PROXY)
    assert response.status_code == 200
    assert response.wsgi_request.is_secure()
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def test_plain_http_is_redirected_to_https(client, behind_proxy, db):
    response = client.get("/auth/login/?next=/account/")
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/auth/login/?next=/account/"


def test_a_forged_header_value_is_not_https(client, behind_proxy, db):
    response = client.get("/auth/signed-out/", headers={**PROXY, "X-Forwarded-Proto": "http"})
    assert response.status_code == 301 and not response.wsgi_request.is_secure()


def test_sign_in_over_https_refuses_to_return_to_plain_http(client, behind_proxy, db):
    response = client.get("/auth/login/", {"next": "http://testserver/account/"}, headers=PROXY)
    assert response.status_code == 400
    assert b"must be on this site" in response.content

    response = client.get("/auth/login/", {"next": "https://testserver/account/"}, headers=PROXY)
    assert response.status_code == 302
    assert response["Location"].startswith(behind_proxy.url)


def test_sign_out_over_https_returns_to_https(client, behind_proxy, db):
    client.force_login(User.objects.create(email="alice@example.com"), backend="accounts.backends.NoPasswordBackend")
    response = client.post("/auth/logout/", headers=PROXY)
    assert response.status_code == 302
    query = dict(parse_qsl(urlsplit(response["Location"]).query))
    assert query["post_logout_redirect_uri"] == "https://testserver/auth/signed-out/"


def test_session_and_csrf_cookies_are_secure_off_debug(client, behind_proxy, db):
    client.force_login(User.objects.create(email="alice@example.com"), backend="accounts.backends.NoPasswordBackend")
    response = client.get("/account/", headers=PROXY)
    assert response.status_code == 200
    assert response.cookies["csrftoken"]["secure"] is True
    client.get("/auth/login/", {"next": "/account/"}, headers=PROXY)
    session_cookie = client.cookies["sessionid"]
    assert session_cookie["secure"] is True and session_cookie["httponly"] is True
