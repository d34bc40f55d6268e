"""/ws/notifications/ through Channels' WebsocketCommunicator: who may connect, the protocol, the rows.

The whole ASGI application of config/asgi.py (origin check, session middleware, routing)
in this process, with the in-memory channel layer and the local Entra's tokens.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.test import Client

from config.asgi import application
from realtime.models import RealtimeServer, WebSocketSession
from realtime.notifications import asend_to_user
from realtime.runtime import Runtime, stop_runtime
from tests.accounts.entra.conftest import ALICE, PERSONAL
from tests.realtime.communicator import WebsocketCommunicator
from tests.realtime.conftest import API

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("realtime_settings", "entra")]
PATH = "/ws/notifications/"
ORIGIN = (b"origin", b"http://testserver")


def run(scenario) -> None:
    async def main():
        try:
            await asyncio.wait_for(scenario(), timeout=20)
        finally:
            await stop_runtime()

    async_to_sync(main)()


def cookie_headers(client, user, *, origin: bytes | None = b"http://testserver") -> list[tuple[bytes, bytes]]:
    """A browser session of its own for ``user`` (signing in again with ``client`` would end the last one)."""
    browser = Client()
    browser.force_login(user)
    client.cookies = browser.cookies
    headers = [(b"cookie", f"sessionid={browser.cookies['sessionid'].value}".encode()), (b"host", b"testserver")]
    return headers + ([(b"origin", origin)] if origin else [])


def bearer(token: str) -> list[str]:
    return ["platform.v1", f"access_token.{token}"]


async def connect(headers=(), subprotocols=None, path=PATH) -> tuple[WebsocketCommunicator, dict | int]:
    communicator = WebsocketCommunicator(application, path, headers=list(headers), subprotocols=subprotocols)
    connected, detail = await communicator.connect(timeout=10)
    if not connected:
        return communicator, detail
    communicator.subprotocol = detail
    return communicator, await communicator.receive_json_from(timeout=5)


def test_a_signed_in_browser_connects_and_gets_a_welcome_naming_its_row(client, alice):
    headers = cookie_headers(client, alice)

    async def scenario():
        ws, welcome = await connect(headers)
        assert welcome["type"] == "welcome"
        assert welcome["heartbeat_interval_s"] == 1
        row = await Runtime.current().db(WebSocketSession.objects.get, connection_id=welcome["connection_id"])
        assert row.user_id == alice.pk and row.disconnected_at is None
        assert row.server_id == Runtime.current().server_id
        assert row.channel_name.startswith("specific.")
        assert row.client_metadata == {"auth": "cookie", "subprotocol": ""}
        await ws.disconnect()

    run(scenario)
    row = WebSocketSession.objects.get()
    assert row.disconnected_at is not None and row.disconnect_reason == "client closed" and row.close_code == 1000
    assert RealtimeServer.objects.get().stop_reason == "shutdown"


def test_heartbeats_are_acknowledged_with_their_id(client, alice):
    headers = cookie_headers(client, alice)

    async def scenario():
        ws, _ = await connect(headers)
        for beat in ("a", 2, None):
            await ws.send_json_to({"type": "heartbeat", "id": beat})
            assert await ws.receive_json_from(timeout=5) == {"type": "heartbeat_ack", "id": beat}
        await ws.disconnect()

    run(scenario)


def test_a_bearer_client_is_answered_platform_v1_never_its_token(entra, alice):
    token = entra.access_token(ALICE, audience=API, scp="access_as_user")

    async def scenario():
        ws, welcome = await connect([], bearer(token))  # no Origin: an API client
        assert welcome["type"] == "welcome"
        assert ws.subprotocol == "platform.v1"
        await ws.disconnect()

    run(scenario)
    row = WebSocketSession.objects.get()
    assert row.user == alice and row.client_metadata["auth"] == "bearer"
    assert token not in json.dumps(row.client_metadata)


REFUSED_TOKENS = {
    "another audience": lambda e: e.access_token(ALICE, audience="00000003-0000-0000-c000-000000000000", scp="x"),
    "expired": lambda e: e.access_token(ALICE, audience=API, scp="access_as_user", exp=int(time.time()) - 3600),
    "issuer": lambda e: e.access_token(ALICE, audience=API, scp="access_as_user", iss="https://evil.example/"),
    "tenant not allowed": lambda e: e.access_token(PERSONAL, audience=API, scp="access_as_user"),
    "signature": lambda e: e.access_token(ALICE, audience=API, scp="access_as_user")[:-4] + "AAAA",
    "malformed": lambda e: "not-a-jwt",
    "missing scope": lambda e: e.access_token(ALICE, audience=API, scp="something_else"),
}


@pytest.mark.parametrize("case", REFUSED_TOKENS)
def test_every_token_api_me_refuses_is_refused_at_the_handshake(entra, alice, case):
    token = REFUSED_TOKENS[case](entra)

    async def scenario():
        _, detail = await connect([ORIGIN], bearer(token))
        assert isinstance(detail, int), f"{case}: accepted"

    run(scenario)
    assert not WebSocketSession.objects.exists()


def test_a_valid_token_of_nobody_here_is_refused(entra, db):
    token = entra.access_token(ALICE, audience=API, scp="access_as_user")  # Alice has no account here

    async def scenario():
        _, detail = await connect([], bearer(token))
        assert isinstance(detail, int)

    run(scenario)
    assert not WebSocketSession.objects.exists()


def test_refused_handshakes_create_no_row(client, entra, alice):
    token = entra.access_token(ALICE, audience=API, scp="access_as_user")
    cases = {
        "no credentials": ([ORIGIN], None, PATH),
        "token in the URL": ([ORIGIN], None, f"{PATH}?access_token={token}"),
        "token in the URL beside a cookie": (cookie_headers(client, alice), None, f"{PATH}?token={token}"),
        "token without platform.v1": ([], [f"access_token.{token}"], PATH),
        "cookie without Origin": (cookie_headers(client, alice, origin=None), None, PATH),
        "cookie from a foreign Origin": (cookie_headers(client, alice, origin=b"https://evil.example"), None, PATH),
        "bearer from a foreign Origin": ([(b"origin", b"https://evil.example")], bearer(token), PATH),
        "another path": (cookie_headers(client, alice), None, "/ws/other/"),
    }

    async def scenario():
        for name, (headers, subprotocols, path) in cases.items():
            _, detail = await connect(headers, subprotocols, path)
            assert isinstance(detail, int), f"{name}: accepted"

    run(scenario)
    assert not WebSocketSession.objects.exists()


def test_an_inactive_user_cannot_connect(client, alice):
    headers = cookie_headers(client, alice)
    alice.is_active = False
    alice.save()

    async def scenario():
        _, detail = await connect(headers)
        assert isinstance(detail, int)

    run(scenario)
    assert not WebSocketSession.objects.exists()


def test_heartbeats_are_written_for_all_connections_in_one_update(client, alice, bob):
    headers = [cookie_headers(client, user) for user in (alice, alice, bob)]

    async def scenario():
        sockets = [(await connect(h))[0] for h in headers]
        runtime = Runtime.current()
        statements: list[str] = []

        def count(execute, sql, params, many, context):
            statements.append(sql)
            return execute(sql, params, many, context)

        await runtime.db(lambda: connection.execute_wrappers.append(count))  # the one database thread
        for _ in range(5):
            for ws in sockets:
                await ws.send_json_to({"type": "heartbeat", "id": 1})
                await ws.receive_json_from(timeout=5)
        assert statements == []  # nothing written per message
        await runtime.write_heartbeats()
        assert len(statements) == 1 and statements[0].startswith("UPDATE websocket_sessions SET last_heartbeat_at")
        await runtime.write_heartbeats()  # nobody beat since: nothing to write
        assert len(statements) == 1
        await runtime.db(lambda: connection.execute_wrappers.remove(count))
        for ws in sockets:
            await ws.disconnect()

    before = time.time()
    run(scenario)
    rows = WebSocketSession.objects.all()
    assert len(rows) == 3 and all(r.last_heartbeat_at.timestamp() >= before for r in rows)


def test_three_silent_intervals_close_with_4408(client, alice):
    headers = cookie_headers(client, alice)

    async def scenario():
        ws, _ = await connect(headers)
        started = time.monotonic()
        output = await ws.receive_output(timeout=8)
        assert output == {"type": "websocket.close", "code": 4408}
        assert 3 <= time.monotonic() - started < 7  # checked once an interval: between 3 and 4 s, unless loaded

    run(scenario)
    assert WebSocketSession.objects.get().disconnect_reason == "silent"


def test_a_frame_over_64_kib_closes_with_1009(client, alice):
    headers = cookie_headers(client, alice)

    async def scenario():
        ws, _ = await connect(headers)
        await ws.send_to(text_data=json.dumps({"type": "heartbeat", "id": "x" * (64 * 1024)}))
        assert await ws.receive_output(timeout=5) == {"type": "websocket.close", "code": 1009}

    run(scenario)
    row = WebSocketSession.objects.get()
    assert (row.disconnect_reason, row.close_code) == ("message too large", 1009)


def test_an_event_reaches_every_connection_of_its_user_and_no_other(client, alice, bob):
    headers = [cookie_headers(client, user) for user in (alice, alice, bob)]

    async def scenario():
        alices = [(await connect(h))[0] for h in headers[:2]]
        bobs, _ = await connect(headers[2])
        await asend_to_user(alice, {"type": "notice", "text": "Maintenance at 18:00"})
        for ws in alices:
            assert await ws.receive_json_from(timeout=5) == {"type": "notice", "text": "Maintenance at 18:00"}
        assert await bobs.receive_nothing(timeout=0.3)
        for ws in [*alices, bobs]:
            await ws.disconnect()

    run(scenario)


def test_recheck_closes_signed_out_and_disabled_users(client, entra, alice, bob):
    from django.contrib.sessions.models import Session

    alice_headers, bob_headers = cookie_headers(client, alice), cookie_headers(client, bob)
    bob_session = client.cookies["sessionid"].value

    async def scenario():
        alice_ws, _ = await connect(alice_headers)
        bob_ws, _ = await connect(bob_headers)
        runtime = Runtime.current()
        await runtime.db(Session.objects.filter(session_key=bob_session).delete)  # Bob's
        await runtime.db(lambda: type(alice).objects.filter(pk=alice.pk).update(is_active=False))
        await runtime.recheck()
        assert await alice_ws.receive_output(timeout=5) == {"type": "websocket.close", "code": 4403}
        assert await bob_ws.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}

    run(scenario)
    reasons = dict(WebSocketSession.objects.values_list("user__email", "disconnect_reason"))
    assert reasons == {"alice@example.com": "account disabled", "bob@example.com": "signed out"}


def test_recheck_closes_an_expired_bearer_token_with_4401(entra, alice, settings):
    settings.ENTRA_CLOCK_SKEW_S = 0
    token = entra.access_token(ALICE, audience=API, scp="access_as_user", exp=int(time.time()) + 2)

    async def scenario():
        ws, _ = await connect([], bearer(token))
        runtime = Runtime.current()
        await runtime.recheck()
        assert await ws.receive_nothing(timeout=0.1)
        await asyncio.sleep(2.1)
        await runtime.recheck()
        assert await ws.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}

    run(scenario)
    assert WebSocketSession.objects.get().disconnect_reason == "token expired"


def test_shutdown_closes_with_1001_and_settles_every_row(client, alice):
    headers = [cookie_headers(client, alice) for _ in range(3)]

    async def scenario():
        sockets = [(await connect(h))[0] for h in headers]
        await Runtime.current().shutdown()
        for ws in sockets:
            assert await ws.receive_output(timeout=5) == {"type": "websocket.close", "code": 1001}

    run(scenario)
    assert set(WebSocketSession.objects.values_list("disconnect_reason", "close_code")) == {("server shutdown", 1001)}
    assert RealtimeServer.objects.get().stopped_at is not None


def test_the_apps_announcements_become_events_for_the_user_concerned(client, alice, bob):
    from asgiref.sync import sync_to_async

    from accounts.tasks import PROFILE_SYNCED
    from core import events
    from integrations.github.services import SYNC_STATUS

    headers = [cookie_headers(client, user) for user in (alice, bob)]

    async def scenario():
        alice_ws, _ = await connect(headers[0])
        bob_ws, _ = await connect(headers[1])
        await sync_to_async(events.publish)(PROFILE_SYNCED, user_id=alice.pk)
        assert await alice_ws.receive_json_from(timeout=5) == {"type": "profile_synced"}
        await sync_to_async(events.publish)(SYNC_STATUS, project_id=7, record_id=9, status="running", owner_id=bob.pk)
        assert await bob_ws.receive_json_from(timeout=5) == {
            "type": "github_sync",
            "project_id": 7,
            "record_id": 9,
            "status": "running",
        }
        assert await alice_ws.receive_nothing(timeout=0.2)
        assert await bob_ws.receive_nothing(timeout=0.2)

    run(scenario)


def test_cleanup_is_a_dry_run_by_default_then_settles_and_deletes(alice, realtime_settings):
    from datetime import timedelta
    from io import StringIO

    from django.core.management import call_command
    from django.utils import timezone

    realtime_settings.REALTIME_SERVER_BEAT_S = 15
    realtime_settings.REALTIME_HEARTBEAT_WRITE_S = 60
    now = timezone.now()
    stale = WebSocketSession.objects.create(user=alice, channel_name="a", last_heartbeat_at=now - timedelta(hours=1))
    fresh = WebSocketSession.objects.create(user=alice, channel_name="b")
    old = WebSocketSession.objects.create(user=alice, channel_name="c", disconnected_at=now - timedelta(days=40))
    RealtimeServer.objects.create(server_id="gone", hostname="h", pid=1, last_beat_at=now - timedelta(hours=1))
    lost = WebSocketSession.objects.create(user=alice, channel_name="d", server_id="gone")

    out = StringIO()
    call_command("cleanup_realtime_sessions", stdout=out)
    assert "1 lost server(s) would be swept; 1 stale session(s) would be settled" in out.getvalue()
    assert WebSocketSession.objects.filter(disconnected_at__isnull=True).count() == 3

    call_command("cleanup_realtime_sessions", "--execute", "--format", "json", stdout=(out := StringIO()))
    assert json.loads(out.getvalue()) == {
        "execute": True,
        "lost_servers": 1,
        "stale_sessions": 1,
        "deleted_sessions": 1,
        "deleted_servers": 0,
    }
    reasons = {s.pk: s.disconnect_reason for s in WebSocketSession.objects.all()}
    assert reasons == {stale.pk: "stale", fresh.pk: "", lost.pk: "server lost"}
    assert not WebSocketSession.objects.filter(pk=old.pk).exists()


def test_cleanup_refuses_a_threshold_that_would_settle_live_connections(realtime_settings):
    from django.core.management import CommandError, call_command

    realtime_settings.REALTIME_HEARTBEAT_WRITE_S = 60
    with pytest.raises(CommandError, match="at least twice"):
        call_command("cleanup_realtime_sessions", "--stale-after", "90")


def test_notify_needs_a_layer_that_reaches_the_server_processes(alice):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="REDIS_URL"):
        call_command("notify", "--text", "hello", "--user", "alice@example.com")


def test_notify_fails_loudly_when_redis_cannot_be_reached(alice, realtime_settings):
    from django.core.management import CommandError, call_command

    realtime_settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:9"]},
        }
    }
    with pytest.raises(CommandError, match="could not reach the channel layer"):
        call_command("notify", "--text", "hello")


def test_connections_are_counted_in_the_metrics(client, alice):
    from core import metrics

    def value(metric, **labels) -> float:
        return (metric.labels(**labels) if labels else metric)._value.get()

    headers = cookie_headers(client, alice)
    connects, live = value(metrics.websocket_connects), value(metrics.websocket_connections)
    too_large = value(metrics.websocket_disconnects, reason="message too large")

    async def scenario():
        ws, _ = await connect(headers)
        assert value(metrics.websocket_connections) == live + 1
        await ws.send_to(text_data="x" * (65 * 1024))
        assert (await ws.receive_output(timeout=5))["code"] == 1009

    run(scenario)
    assert value(metrics.websocket_connects) == connects + 1
    assert value(metrics.websocket_connections) == live
    assert value(metrics.websocket_disconnects, reason="message too large") == too_large + 1


def test_a_process_taken_for_lost_while_it_stalled_registers_again_and_reopens_its_rows(client, alice):
    from django.utils import timezone

    from realtime import servers

    headers = cookie_headers(client, alice)

    async def scenario():
        ws, welcome = await connect(headers)
        runtime = Runtime.current()

        def taken_for_lost():
            RealtimeServer.objects.filter(server_id=runtime.server_id).update(
                last_beat_at=timezone.now() - timezone.timedelta(hours=1)
            )
            servers.sweep(dead_after_s=60)

        await runtime.db(taken_for_lost)
        row = await runtime.db(WebSocketSession.objects.get, connection_id=welcome["connection_id"])
        assert row.disconnect_reason == "server lost"

        await runtime.beat_and_sweep()

        row = await runtime.db(WebSocketSession.objects.get, connection_id=welcome["connection_id"])
        assert (row.disconnected_at, row.disconnect_reason) == (None, "")
        server = await runtime.db(RealtimeServer.objects.get, server_id=runtime.server_id)
        assert server.stopped_at is None
        await ws.disconnect()

    run(scenario)


def test_cleanup_batches_start_after_the_last_key(alice):
    """Keyset batches: each SELECT starts after the previous batch's last key, not at the table's start."""
    from datetime import timedelta

    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from realtime import sessions

    hour_ago = timezone.now() - timedelta(hours=1)
    rows = [
        WebSocketSession.objects.create(user=alice, channel_name=str(i), last_heartbeat_at=hour_ago)
        if i % 3
        else WebSocketSession.objects.create(user=alice, channel_name=str(i))
        for i in range(10)
    ]
    stale = {row.pk for row in rows if int(row.channel_name) % 3}
    with CaptureQueriesContext(connection) as queries:
        counts = sessions.cleanup(stale_after_s=60, retention_days=30, execute=True, batch=2)
    assert counts.stale == len(stale) == 6
    assert set(WebSocketSession.objects.filter(disconnect_reason="stale").values_list("pk", flat=True)) == stale
    selects = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT") and "LIMIT 2" in q["sql"]]
    assert len(selects) == 4 + 1  # three full batches, the empty one that ends the loop, the deletion's one
    ordered = sorted(stale)
    for sql, after in zip(selects[1:4], ordered[1::2], strict=True):
        assert f'"id" > {after}' in sql, sql


def test_notify_on_a_database_that_is_not_migrated_says_so(tmp_path):
    import os

    from tests.support import startup

    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    result = startup.manage(
        "notify",
        "--text",
        "hello",
        env={**env, "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}", "REDIS_URL": "redis://127.0.0.1:6379/0"},
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    assert "is DATABASE_URL the migrated database?" in result.stderr
    assert "Traceback" not in result.stderr


def test_cleanup_leaves_open_a_session_that_beat_after_its_batch_was_read(alice, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from realtime import sessions

    hour_ago = timezone.now() - timedelta(hours=1)
    rows = [
        WebSocketSession.objects.create(user=alice, channel_name=str(i), last_heartbeat_at=hour_ago) for i in range(2)
    ]
    batches = sessions.pk_batches

    def beat_between_read_and_write(queryset, size):
        for pks in batches(queryset, size):
            sessions.write_heartbeats([str(rows[0].connection_id)])  # the server's heartbeat write, just then
            yield pks

    monkeypatch.setattr(sessions, "pk_batches", beat_between_read_and_write)
    counts = sessions.cleanup(stale_after_s=60, retention_days=30, execute=True)
    assert counts.stale == 1
    assert WebSocketSession.objects.get(pk=rows[0].pk).disconnected_at is None
    assert WebSocketSession.objects.get(pk=rows[1].pk).disconnect_reason == "stale"
