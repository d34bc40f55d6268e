"""A session lasts SESSION_COOKIE_AGE (8 hours) from the last activity, and is saved at most once a minute for it."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.utils import timezone

from accounts.models import User
from core.middleware import REFRESHED_AT

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client):
    client.force_login(User.objects.create(email="alice@example.com"), backend="accounts.backends.NoPasswordBackend")
    return client


def expiry(client) -> timedelta:
    return Session.objects.get(session_key=client.session.session_key).expire_date - timezone.now()


def last_extended(client, *, seconds_ago: int, expires_in: timedelta) -> None:
    session = client.session
    session[REFRESHED_AT] = int(time.time()) - seconds_ago
    session.save()
    Session.objects.filter(session_key=session.session_key).update(expire_date=timezone.now() + expires_in)


def test_the_session_lasts_eight_hours(settings):
    assert settings.SESSION_COOKIE_AGE == 8 * 3600


def test_activity_extends_the_session(signed_in):
    last_extended(signed_in, seconds_ago=120, expires_in=timedelta(hours=1))

    response = signed_in.get("/account/")

    assert response.status_code == 200
    assert response.cookies["sessionid"]["max-age"] == 8 * 3600
    assert expiry(signed_in) > timedelta(hours=7, minutes=59)


def test_the_session_is_saved_at_most_once_a_minute(signed_in):
    last_extended(signed_in, seconds_ago=10, expires_in=timedelta(hours=1))

    response = signed_in.get("/account/")

    assert response.status_code == 200
    assert "sessionid" not in response.cookies
    assert expiry(signed_in) < timedelta(hours=1)


def test_an_idle_session_ends(signed_in):
    last_extended(signed_in, seconds_ago=8 * 3600, expires_in=timedelta(seconds=-1))

    response = signed_in.get("/account/")

    assert response.status_code == 302 and response["Location"].startswith("/auth/login/")


def test_no_session_is_made_for_a_visitor_without_one(client):
    response = client.get("/auth/signed-out/")
    assert "sessionid" not in response.cookies
    assert not Session.objects.exists()
