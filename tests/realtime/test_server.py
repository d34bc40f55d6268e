"""Against real uvicorn processes with a real WebSocket client (``websockets``): two servers sharing Redis.

Server A re-checks credentials only every 30 s, server B every second. A trigger counts
the heartbeat writes of every row. Processes of their own are killed with
``kill -9`` and stopped with SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.accounts.entra.conftest import ALICE, BOB, CAROL, TENANT
from tests.core.test_channel_layers import REDIS_URL, _redis_up
from tests.realtime.conftest import API
from tests.realtime.server import ROOT, LiveDatabase, Server, cookie_of, server_env, sign_in

pytestmark = pytest.mark.skipif(not _redis_up() and not os.environ.get("CI"), reason="needs Redis on 127.0.0.1:6379")


@pytest.fixture(scope="module")
def live_db(realtime_template, tmp_path_factory):
    db = LiveDatabase.clone(realtime_template, tmp_path_factory.mktemp("realtime-db"))
    for persona in (ALICE, BOB, CAROL):
        db.execute(
            "INSERT INTO users (email, full_name, azure_entra_id, azure_tenant_id) VALUES (%s, %s, %s, %s)",
            [persona.email.lower(), persona.name, persona.oid, TENANT],
        )
    count_heartbeat_writes(db)
    yield db
    db.drop()


def count_heartbeat_writes(db) -> None:
    """Every write of a row's ``last_heartbeat_at`` leaves a row in ``heartbeat_writes`` (a trigger)."""
    db.execute("CREATE TABLE heartbeat_writes (connection_id varchar(36) NOT NULL)")
    if db.vendor == "postgresql":
        db.execute(
            "CREATE FUNCTION count_heartbeat() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN INSERT INTO heartbeat_writes VALUES (NEW.connection_id::text); RETURN NEW; END $$"
        )
        db.execute(
            "CREATE TRIGGER heartbeat_written AFTER UPDATE OF last_heartbeat_at ON websocket_sessions "
            "FOR EACH ROW EXECUTE FUNCTION count_heartbeat()"
        )
    else:
        db.execute(
            "CREATE TRIGGER heartbeat_written AFTER UPDATE OF last_heartbeat_at ON websocket_sessions FOR EACH ROW "
            "BEGIN INSERT INTO heartbeat_writes VALUES (NEW.connection_id); END"
        )


def heartbeat_writes(db, connection_id: str) -> int:
    key = connection_id if db.vendor == "postgresql" else uuid.UUID(connection_id).hex
    [(count,)] = db.execute("SELECT count(*) FROM heartbeat_writes WHERE connection_id = %s", [key])
    return count


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    return tmp_path_factory.mktemp("realtime-logs")


@pytest.fixture(scope="module")
def servers(live_db, entra_server, logs):
    a = Server(live_db, entra_server, logs / "a.log", env={"REDIS_URL": REDIS_URL, "REALTIME_RECHECK_S": "30"})
    b = Server(live_db, entra_server, logs / "b.log", env={"REDIS_URL": REDIS_URL, "ENTRA_CLOCK_SKEW_S": "0"})
    for server in (a, b):
        server.start()
    yield a, b
    for server in (a, b):
        server.stop()


def open_ws(server: Server, *, headers=None, origin: str | None = "", subprotocols=None, query: str = ""):
    ws = connect(
        server.ws_url + query,
        origin=server.url if origin == "" else origin,
        additional_headers=headers,
        subprotocols=subprotocols,
        compression=None,
        open_timeout=10,
        legacy=True,
    )
    welcome = json.loads(ws.recv(timeout=5))
    assert welcome["type"] == "welcome"
    return ws, welcome


def bearer(token: str) -> list[str]:
    return ["platform.v1", f"access_token.{token}"]


def next_notice(ws, timeout: float = 10) -> dict:
    """The next notice, past the events a sign-in sets off (its profile sync's ``profile_synced``)."""
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        if message["type"] == "notice":
            return message


def close_code(ws, timeout: float = 5) -> int:
    try:
        while True:
            ws.recv(timeout=timeout)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else -1


def rows(db, where: str = "1 = 1", params=()) -> list[tuple]:
    return db.execute(
        f"SELECT connection_id, server_id, disconnected_at, disconnect_reason, close_code FROM websocket_sessions WHERE {where}",
        params,
    )


def row_of(db, connection_id: str) -> tuple:
    key = connection_id if db.vendor == "postgresql" else uuid.UUID(connection_id).hex
    [row] = rows(db, "connection_id = %s", [key])
    return row


def wait_until(check, timeout: float = 10, step: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(step)
    raise AssertionError("timed out")


def test_a_signed_in_browser_connects_and_beats(servers, live_db):
    a, _ = servers
    browser = sign_in(a, ALICE)
    ws, welcome = open_ws(a, headers=cookie_of(browser))
    assert welcome["heartbeat_interval_s"] == 1
    ws.send(json.dumps({"type": "heartbeat", "id": 7}))
    assert json.loads(ws.recv(timeout=5)) == {"type": "heartbeat_ack", "id": 7}
    assert row_of(live_db, welcome["connection_id"])[1] == a.server_id()
    ws.close()
    wait_until(lambda: row_of(live_db, welcome["connection_id"])[2] is not None)
    assert row_of(live_db, welcome["connection_id"])[3:] == ("client closed", 1000)


def test_refused_handshakes_are_http_403_and_create_no_row(servers, live_db, entra_server):
    a, _ = servers
    browser = sign_in(a, BOB)
    token = entra_server.access_token(BOB, audience=API, scp="access_as_user")
    before = len(rows(live_db))
    cases = {
        "no session": {},
        "a bad token": {"subprotocols": bearer(token[:-4] + "AAAA"), "origin": None},
        "an expired token": {
            "subprotocols": bearer(
                entra_server.access_token(BOB, audience=API, scp="access_as_user", exp=int(time.time()) - 600)
            ),
            "origin": None,
        },
        "a token in the URL": {"query": f"?access_token={token}", "origin": None},
        "a cookie from a foreign origin": {"headers": cookie_of(browser), "origin": "https://evil.example"},
        "a cookie without an origin": {"headers": cookie_of(browser), "origin": None},
    }
    for name, kwargs in cases.items():
        with pytest.raises(InvalidStatus) as refused:
            open_ws(a, **kwargs)
        assert refused.value.response.status_code == 403, name
    assert len(rows(live_db)) == before


def test_a_bearer_client_is_answered_platform_v1(servers, entra_server):
    _, b = servers
    token = entra_server.access_token(BOB, audience=API, scp="access_as_user")
    ws, _ = open_ws(b, subprotocols=bearer(token), origin=None)
    assert ws.subprotocol == "platform.v1"
    assert token not in str(ws.response.headers)
    ws.close()


def test_heartbeats_are_written_at_most_once_an_interval_however_often_clients_beat(servers, live_db, entra_server):
    a, _ = servers  # REALTIME_HEARTBEAT_WRITE_S=1 here; a minute by default
    token = entra_server.access_token(BOB, audience=API, scp="access_as_user")
    sockets = [open_ws(a, subprotocols=bearer(token), origin=None) for _ in range(3)]
    started = time.monotonic()
    beats = 0
    while time.monotonic() - started < 3:
        for ws, _ in sockets:
            ws.send(json.dumps({"type": "heartbeat", "id": beats}))
            ws.recv(timeout=5)
            beats += 1
        time.sleep(0.02)
    time.sleep(1.1)  # the write of the last interval
    elapsed = time.monotonic() - started

    writes = [heartbeat_writes(live_db, welcome["connection_id"]) for _, welcome in sockets]
    assert beats / 3 >= 30
    assert all(2 <= w <= elapsed + 1 for w in writes), (writes, elapsed)
    for ws, _ in sockets:
        ws.close()


def test_a_notice_reaches_every_connection_of_one_user_on_both_processes_and_no_other(servers, live_db, entra_server):
    a, b = servers
    alice_on_a, _ = open_ws(a, headers=cookie_of(sign_in(a, ALICE)))
    alice_on_b, _ = open_ws(
        b, subprotocols=bearer(entra_server.access_token(ALICE, audience=API, scp="access_as_user")), origin=None
    )
    bob_on_b, _ = open_ws(
        b, subprotocols=bearer(entra_server.access_token(BOB, audience=API, scp="access_as_user")), origin=None
    )

    result = subprocess.run(
        [sys.executable, "manage.py", "notify", "--text", "Maintenance at 18:00", "--user", "ALICE@example.com"],
        cwd=ROOT,
        env=server_env(live_db, entra_server, REDIS_URL=REDIS_URL),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert "Notice sent to alice@example.com (2 live connection(s))" in result.stdout
    for ws in (alice_on_a, alice_on_b):
        assert next_notice(ws) == {"type": "notice", "text": "Maintenance at 18:00"}
    with pytest.raises(TimeoutError):
        next_notice(bob_on_b, timeout=0.5)
    for ws in (alice_on_a, alice_on_b, bob_on_b):
        ws.close()


def test_sign_out_closes_that_browsers_sockets_at_once_on_every_process(servers, live_db):
    a, b = servers  # A re-checks only every 30 s: what closes its socket is the sign-out itself
    leaving, staying = sign_in(b, ALICE), sign_in(b, ALICE)
    ws, _ = open_ws(a, headers=cookie_of(leaving))
    other, _ = open_ws(a, headers=cookie_of(staying))
    page = leaving.get(f"{b.url}/account/")
    assert page.status_code == 200

    started = time.monotonic()
    out = leaving.post(
        f"{b.url}/auth/logout/", headers={"X-CSRFToken": leaving.cookies["csrftoken"]}, allow_redirects=False
    )
    assert out.status_code == 302, out.text

    assert close_code(ws) == 4401
    assert time.monotonic() - started < 5  # A's own re-check would take 30 s
    other.send(json.dumps({"type": "heartbeat", "id": 1}))
    assert json.loads(other.recv(timeout=5))["type"] == "heartbeat_ack"
    other.close()


def test_a_disabled_user_is_closed_within_the_recheck(servers, live_db, entra_server):
    _, b = servers
    ws, welcome = open_ws(
        b, subprotocols=bearer(entra_server.access_token(CAROL, audience=API, scp="access_as_user")), origin=None
    )
    live_db.execute("UPDATE users SET is_active = %s WHERE email = %s", [False, "carol@example.com"])
    started = time.monotonic()
    try:
        assert close_code(ws) == 4403
        assert time.monotonic() - started < 5  # B re-checks every second
        wait_until(lambda: row_of(live_db, welcome["connection_id"])[3] == "account disabled")
    finally:
        live_db.execute("UPDATE users SET is_active = %s WHERE email = %s", [True, "carol@example.com"])


def test_an_expired_bearer_token_is_closed_within_the_recheck(servers, entra_server):
    _, b = servers  # B allows no clock skew
    token = entra_server.access_token(BOB, audience=API, scp="access_as_user", exp=int(time.time()) + 2)
    ws, _ = open_ws(b, subprotocols=bearer(token), origin=None)
    assert close_code(ws, timeout=10) == 4401


def test_a_server_killed_with_kill_9_has_its_sessions_settled_by_the_sweep(servers, live_db, entra_server, logs):
    doomed = Server(live_db, entra_server, logs / "doomed.log").start()
    token = entra_server.access_token(BOB, audience=API, scp="access_as_user")
    sockets = [open_ws(doomed, subprotocols=bearer(token), origin=None) for _ in range(2)]
    server_id = doomed.server_id()

    doomed.signal(signal.SIGKILL)
    doomed.process.wait()

    for _, welcome in sockets:
        row = wait_until(lambda w=welcome: (r := row_of(live_db, w["connection_id"]))[2] is not None and r, timeout=10)
        assert row[3] == "server lost"
    [(reason,)] = live_db.execute("SELECT stop_reason FROM realtime_servers WHERE server_id = %s", [server_id])
    assert reason == "lost"


def test_sigterm_closes_with_1001_and_settles_the_rows(live_db, entra_server, logs):
    server = Server(live_db, entra_server, logs / "sigterm.log").start()
    token = entra_server.access_token(BOB, audience=API, scp="access_as_user")
    sockets = [open_ws(server, subprotocols=bearer(token), origin=None) for _ in range(2)]
    server_id = server.server_id()

    server.signal(signal.SIGTERM)

    assert [close_code(ws) for ws, _ in sockets] == [1001, 1001]
    server.process.wait(timeout=15)
    for _, welcome in sockets:
        assert row_of(live_db, welcome["connection_id"])[3:] == ("server shutdown", 1001)
    [(reason,)] = live_db.execute("SELECT stop_reason FROM realtime_servers WHERE server_id = %s", [server_id])
    assert reason == "shutdown"


def test_a_burst_of_connects_and_a_mass_disconnect(servers, live_db, entra_server):
    """300 handshakes at once (rows inserted in batches), then all closed at once (rows settled in batches)."""
    import asyncio

    from websockets.asyncio.client import connect as aconnect

    a, _ = servers
    token = entra_server.access_token(BOB, audience=API, scp="access_as_user")

    async def burst() -> list[str]:
        async def one():
            ws = await aconnect(a.ws_url, subprotocols=bearer(token), compression=None, open_timeout=30)
            return ws, json.loads(await ws.recv())["connection_id"]

        opened = await asyncio.gather(*(one() for _ in range(300)))
        await asyncio.gather(*(ws.close() for ws, _ in opened))
        return [connection_id for _, connection_id in opened]

    started = time.monotonic()
    ids = asyncio.run(burst())
    assert time.monotonic() - started < 15
    keys = ids if live_db.vendor == "postgresql" else [uuid.UUID(i).hex for i in ids]
    placeholders = ", ".join(["%s"] * len(keys))

    def settled() -> bool:
        [(n,)] = live_db.execute(
            f"SELECT count(*) FROM websocket_sessions WHERE connection_id IN ({placeholders}) "
            "AND disconnect_reason = 'client closed'",
            keys,
        )
        return n == 300

    wait_until(settled, timeout=10)
