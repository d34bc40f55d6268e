"""The WebSocket sessions admin: live and past connections, read-only."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from realtime.models import WebSocketSession
from tests.support.admin import shown

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:realtime_websocketsession_changelist")


def session(user: User, address: str, *, disconnected: bool) -> WebSocketSession:
    now = timezone.now()
    return WebSocketSession.objects.create(
        user=user,
        channel_name=f"specific.{uuid.uuid4().hex}",
        client_address=address,
        connected_at=now - timedelta(hours=1),
        disconnected_at=now if disconnected else None,
    )


@pytest.fixture
def sessions() -> dict[str, WebSocketSession]:
    alice = User.objects.create_user("alice@example.com")
    bob = User.objects.create_user("bob@example.com")
    return {
        "alice_live": session(alice, "10.0.0.7", disconnected=False),
        "alice_gone": session(alice, "2001:db8::17", disconnected=True),
        "bob_live": session(bob, "192.168.1.20", disconnected=False),
    }


def listed(response) -> set[int]:
    return {s.pk for s in shown(response)}


def pks(sessions: dict[str, WebSocketSession], *names: str) -> set[int]:
    return {sessions[name].pk for name in names}


def test_changelist_lists_sessions_with_their_state(client, operator, sessions):
    response = client.get(CHANGELIST)

    assert listed(response) == pks(sessions, *sessions)
    html = response.content.decode()
    assert html.count('<td class="field-connection">live</td>') == 2
    assert html.count('<td class="field-connection">disconnected</td>') == 1
    assert str(sessions["bob_live"].connection_id) in html


def test_changelist_joins_users(client, operator, sessions):
    with CaptureQueriesContext(connection) as few:
        client.get(CHANGELIST)
    for i in range(5):
        session(User.objects.create_user(f"u{i}@example.com"), "10.1.0.1", disconnected=False)
    with CaptureQueriesContext(connection) as many:
        response = client.get(CHANGELIST)

    assert len(listed(response)) == 8
    assert len(many) == len(few)


def test_filter_live_and_disconnected(client, operator, sessions):
    assert listed(client.get(CHANGELIST, {"connection": "live"})) == pks(sessions, "alice_live", "bob_live")
    assert listed(client.get(CHANGELIST, {"connection": "disconnected"})) == pks(sessions, "alice_gone")


def test_search_by_user_email(client, operator, sessions):
    assert listed(client.get(CHANGELIST, {"q": "alice@"})) == pks(sessions, "alice_live", "alice_gone")


def test_search_by_connection_id(client, operator, sessions):
    connection_id = str(sessions["bob_live"].connection_id)

    assert listed(client.get(CHANGELIST, {"q": connection_id})) == pks(sessions, "bob_live")


def test_search_by_client_address(client, operator, sessions):
    assert listed(client.get(CHANGELIST, {"q": "192.168.1"})) == pks(sessions, "bob_live")
    assert listed(client.get(CHANGELIST, {"q": "2001:db8"})) == pks(sessions, "alice_gone")


def test_sessions_are_read_only(client, operator, sessions):
    record = sessions["alice_live"]
    url = reverse("admin:realtime_websocketsession_change", args=[record.pk])

    response = client.get(url)

    assert response.status_code == 200
    assert not response.context["adminform"].form.fields
    assert client.post(url, {"disconnected_at_0": "2026-01-01", "disconnected_at_1": "00:00"}).status_code == 403
    assert client.get(reverse("admin:realtime_websocketsession_add")).status_code == 403
    assert (
        client.post(reverse("admin:realtime_websocketsession_delete", args=[record.pk]), {"post": "yes"}).status_code
        == 403
    )
    record.refresh_from_db()
    assert record.disconnected_at is None
