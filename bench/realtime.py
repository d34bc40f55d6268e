"""Real-time at load: 5,000 authenticated WebSocket connections on one uvicorn process, then on two with Redis.

    .venv/bin/python bench/realtime.py [--connections 5000] [--users 500] [--hold 60] [--notices 200]
                                        [--processes 1 2] [--heartbeat 20]

Starts a local Entra (for the signing keys), a PostgreSQL database of its own (migrated, with
``--users`` linked users) and uvicorn exactly as the README runs it, with Redis (``REDIS_URL``,
default redis://127.0.0.1:6379/0) as the channel layer. One client process (asyncio, the
``websockets`` library) opens the connections, each with a bearer token of one of the users
(each token presented connections/users times, so most handshakes hit the validated-token
cache), keeps them beating every ``--heartbeat`` seconds at evenly spread phases for ``--hold``
seconds, then sends notices to one user (connections/users connections, spread over the
processes) with ``asend_to_user`` (what ``notify_user`` does once the transaction commits),
while all connections are held. Reports:

- connect time, server CPU per handshake, server memory per connection (RSS growth / connections);
- heartbeat round trip: median, p99, max;
- database writes per connection per minute (a row trigger counts every write of
  ``last_heartbeat_at``) and heartbeat UPDATE statements per process per minute;
- notice latency from the call to the frame's arrival on the last of the user's connections: p50, p99.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORK = Path(tempfile.mkdtemp(prefix="bench-realtime-"))
TENANT = "7a3f0000-0000-4000-8000-00000000c0de"
CLIENT = "11111111-2222-3333-4444-555555555555"
SECRET = "bench-secret"
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB_NAME = f"bench_realtime_{uuid.uuid4().hex[:8]}"
REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
UVICORN = [
    "-m", "uvicorn", "config.asgi:application",
    "--ws", "websockets-sansio", "--ws-per-message-deflate", "false", "--ws-max-size", "65536",
    "--ws-ping-interval", "20", "--ws-ping-timeout", "20", "--backlog", "2048",
    "--timeout-graceful-shutdown", "10", "--lifespan", "on", "--no-access-log", "--log-level", "warning",
]  # fmt: skip
os.environ.update(
    DJANGO_SETTINGS_MODULE="config.settings",
    SECRET_KEY="bench",
    DATABASE_URL=f"{PG}/{DB_NAME}",
    DEVTOOLS="true",
    REDIS_URL=REDIS_URL,
    ENTRA_CLIENT_ID=CLIENT,
    ENTRA_TENANT_ID=TENANT,
    ENTRA_CLIENT_SECRET=SECRET,
    ENTRA_REDIRECT_URI="http://127.0.0.1:8000/auth/callback/",
)

import psycopg

from devtools.local_entra import LocalEntra, LocalUser

ENTRA = LocalEntra(cert_dir=WORK / "ca", users=[], tenant_id=TENANT, client_id=CLIENT, client_secret=SECRET)
ENTRA.start()
os.environ.update(ENTRA_AUTHORITY_HOST=ENTRA.url, GRAPH_URL=ENTRA.url, ENTRA_CA_BUNDLE=str(ENTRA.ca_path))

import django

django.setup()

from websockets.asyncio.client import connect

from realtime.notifications import asend_to_user


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def admin(sql: str) -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def sql(query: str, params=()) -> list[tuple]:
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def prepare_database(users: list[LocalUser]) -> None:
    admin(f'CREATE DATABASE "{DB_NAME}"')
    subprocess.run([sys.executable, "manage.py", "migrate", "--no-input"], cwd=ROOT, check=True, capture_output=True)
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn, conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO users (email, full_name, azure_entra_id, azure_tenant_id) VALUES (%s, %s, %s, %s)",
            [(u.email, u.name, u.oid, TENANT) for u in users],
        )
        cursor.execute(
            "CREATE UNLOGGED TABLE bench_heartbeat_writes (connection_id uuid, at timestamptz DEFAULT now());"
            "CREATE UNLOGGED TABLE bench_heartbeat_statements (at timestamptz DEFAULT now());"
            "CREATE FUNCTION bench_row() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN INSERT INTO bench_heartbeat_writes (connection_id) VALUES (NEW.connection_id); RETURN NEW; END $$;"
            "CREATE FUNCTION bench_statement() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN INSERT INTO bench_heartbeat_statements DEFAULT VALUES; RETURN NULL; END $$;"
            "CREATE TRIGGER bench_row AFTER UPDATE OF last_heartbeat_at ON websocket_sessions "
            "FOR EACH ROW EXECUTE FUNCTION bench_row();"
            "CREATE TRIGGER bench_statement AFTER UPDATE OF last_heartbeat_at ON websocket_sessions "
            "FOR EACH STATEMENT EXECUTE FUNCTION bench_statement();"
        )


def user_ids() -> dict[str, int]:
    return dict(sql("SELECT azure_entra_id, id FROM users"))


class Server:
    def wait_ready(self, timeout: float = 60) -> None:
        import socket

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server on {self.port} exited; see {self.log.name}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"server on {self.port} did not start")

    def __init__(self, port: int, heartbeat_s: float) -> None:
        self.port = port
        env = {**os.environ, "REALTIME_HEARTBEAT_S": str(heartbeat_s), "LOG_LEVEL": "WARNING"}  # stalls are logged
        self.log = (WORK / f"server-{port}.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, *UVICORN, "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/notifications/"

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


class Connection:
    def __init__(self, ws, user: int) -> None:
        self.ws, self.user = ws, user
        self.sent: dict[int, float] = {}
        self.next_id = 0
        self.reader: asyncio.Task | None = None


class Client:
    def __init__(self) -> None:
        self.rtts: list[float] = []
        self.arrivals: dict[str, list[float]] = {}
        self.closed: list[int] = []
        self.measuring = False
        self.max_lag = 0.0
        self.slow: list[tuple[float, float]] = []  # (sent at, round trip) over 100 ms

    async def open(self, url: str, token: str, user: int) -> Connection:
        ws = await connect(
            url,
            subprotocols=["platform.v1", f"access_token.{token}"],
            compression=None,
            open_timeout=120,
            ping_interval=None,
            max_size=2**16,
        )
        welcome = json.loads(await ws.recv())
        assert welcome["type"] == "welcome", welcome
        connection = Connection(ws, user)
        connection.reader = asyncio.create_task(self.read(connection))
        return connection

    async def read(self, connection: Connection) -> None:
        try:
            async for raw in connection.ws:
                now = time.perf_counter()
                message = json.loads(raw)
                if message["type"] == "heartbeat_ack":
                    sent = connection.sent.pop(message["id"], None)
                    if sent is not None and self.measuring:
                        self.rtts.append(now - sent)
                        if now - sent > 0.1:
                            self.slow.append((sent, now - sent))
                elif message["type"] == "notice":
                    self.arrivals.setdefault(message["text"], []).append(now)
        except Exception as exc:  # counted below by its close code
            connection.error = exc
        self.closed.append(connection.ws.close_code or 0)

    async def watch_lag(self) -> None:
        """The client's own event-loop stalls: they would show as server round trips."""
        while True:
            started = time.perf_counter()
            await asyncio.sleep(0.1)
            self.max_lag = max(self.max_lag, time.perf_counter() - started - 0.1)

    async def beat(self, connections: list[Connection], interval: float, stop: asyncio.Event) -> None:
        """One heartbeat per connection per interval, phases spread evenly."""
        gap = interval / len(connections)
        started = time.perf_counter()
        n = 0
        while not stop.is_set():
            connection = connections[n % len(connections)]
            connection.next_id += 1
            connection.sent[connection.next_id] = time.perf_counter()
            await connection.ws.send(json.dumps({"type": "heartbeat", "id": connection.next_id}))
            n += 1
            delay = started + n * gap - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)


async def run(args, servers: list[Server], tokens: list[str], ids: list[int]) -> dict:
    # The client holds as many connections as the servers: its own full collections would show as
    # round trips. The same tuning as the servers' (realtime.lifespan).
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    client = Client()
    # Warm up each server (its runtime, the key cache) before the baseline memory reading.
    for server in servers:
        warm = await client.open(server.url, tokens[0], ids[0])
        await warm.ws.close()
    await asyncio.sleep(1)
    rss_before = [s.rss_kib() for s in servers]
    cpu_before = [s.cpu_s() for s in servers]

    semaphore = asyncio.Semaphore(200)

    async def open_one(i: int) -> Connection:
        async with semaphore:
            user = i % args.users
            return await client.open(servers[i % len(servers)].url, tokens[user], ids[user])

    started = time.perf_counter()
    connections = await asyncio.gather(*(open_one(i) for i in range(args.connections)))
    connect_s = time.perf_counter() - started
    cpu_handshake_ms = 1000 * sum(s.cpu_s() - c for s, c in zip(servers, cpu_before, strict=True)) / args.connections
    [(live,)] = sql("SELECT count(*) FROM websocket_sessions WHERE disconnected_at IS NULL")

    stop = asyncio.Event()
    beating = asyncio.create_task(client.beat(connections, args.heartbeat, stop))
    await asyncio.sleep(args.heartbeat)  # one round: every connection has beaten, buffers have grown
    sql("TRUNCATE bench_heartbeat_writes, bench_heartbeat_statements")
    client.measuring = True
    lag = asyncio.create_task(client.watch_lag())
    window_started = time.perf_counter()
    await asyncio.sleep(args.hold)
    window_min = (time.perf_counter() - window_started) / 60
    [(row_writes,)] = sql("SELECT count(*) FROM bench_heartbeat_writes")
    [(statements,)] = sql("SELECT count(*) FROM bench_heartbeat_statements")
    rss_after = [s.rss_kib() for s in servers]

    # Notices to one user while everything is held (and beating); the first, unmeasured, opens the layer.
    latencies = []
    per_user = args.connections // args.users
    for n in range(-1, args.notices):
        user = random.randrange(args.users)
        text = f"notice {n}"
        sent = time.perf_counter()
        await asend_to_user(ids[user], {"type": "notice", "text": text})
        deadline = sent + 5
        while len(client.arrivals.get(text, [])) < per_user and time.perf_counter() < deadline:
            await asyncio.sleep(0.001)
        arrivals = client.arrivals.get(text, [])
        if len(arrivals) < per_user:
            raise AssertionError(f"{text}: {len(arrivals)} of {per_user} connections got it")
        if n >= 0:
            latencies.append(max(arrivals) - sent)
        await asyncio.sleep(0.05)

    stop.set()
    await beating
    lag.cancel()
    heartbeat_rtts = client.rtts
    started = time.perf_counter()
    await asyncio.gather(*(c.ws.close() for c in connections))  # the mass disconnect
    close_s = time.perf_counter() - started
    for _ in range(100):
        [(open_rows,)] = sql("SELECT count(*) FROM websocket_sessions WHERE disconnected_at IS NULL")
        if open_rows == 0:
            break
        await asyncio.sleep(0.1)
    settle_s = time.perf_counter() - started
    if client.slow:
        first = min(t for t, _ in client.slow)
        worst = sorted(client.slow, key=lambda item: -item[1])[:5]
        print(
            f"round trips over 100 ms: {len(client.slow)}, from {time.strftime('%H:%M:%S', time.localtime(time.time() - (time.perf_counter() - first)))}; worst at +s: "
            + ", ".join(f"{t - first:.1f}s:{1000 * r:.0f}ms" for t, r in worst)
        )
    return {
        "processes": len(servers),
        "connections": args.connections,
        "rows live": live,
        "connect s": round(connect_s, 1),
        "server CPU per handshake ms": round(cpu_handshake_ms, 2),
        "memory per connection KiB": round(
            sum(a - b for a, b in zip(rss_after, rss_before, strict=True)) / args.connections, 1
        ),
        "heartbeats measured": len(heartbeat_rtts),
        "heartbeat RTT p50 ms": round(1000 * statistics.median(heartbeat_rtts), 2),
        "heartbeat RTT p99 ms": round(1000 * percentile(heartbeat_rtts, 99), 2),
        "heartbeat RTT max ms": round(1000 * max(heartbeat_rtts), 2),
        "client event-loop stall max ms": round(1000 * client.max_lag, 1),
        "DB writes per connection per minute": round(row_writes / args.connections / window_min, 2),
        "heartbeat UPDATE statements per process per minute": round(statements / len(servers) / window_min, 2),
        f"notice to {per_user} connections p50 ms": round(1000 * statistics.median(latencies), 2),
        f"notice to {per_user} connections p99 ms": round(1000 * percentile(latencies, 99), 2),
        "mass disconnect: closed s / rows settled s": f"{close_s:.1f} / {settle_s:.1f}",
        "rows left open": open_rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--hold", type=float, default=60, help="seconds of measured heartbeats")
    parser.add_argument("--heartbeat", type=float, default=20)
    parser.add_argument("--notices", type=int, default=200)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    with contextlib.suppress(PermissionError):  # the client and servers ahead of whatever else runs here
        os.nice(-10)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the servers inherit it

    users = [
        LocalUser(oid=str(uuid.uuid4()), tid=TENANT, email=f"user{i}@example.com", name=f"User {i}")
        for i in range(args.users)
    ]
    prepare_database(users)
    oids = user_ids()
    ids = [oids[u.oid] for u in users]
    tokens = [ENTRA.access_token(u, audience=f"api://{CLIENT}", scp="access_as_user") for u in users]
    results = []
    try:
        for count in args.processes:
            servers = [Server(8700 + i, args.heartbeat) for i in range(count)]
            for server in servers:
                server.wait_ready()
            try:
                results.append(asyncio.run(run(args, servers, tokens, ids)))
            finally:
                for server in servers:
                    server.stop()
            sql("UPDATE websocket_sessions SET disconnected_at = now() WHERE disconnected_at IS NULL")
    finally:
        ENTRA.stop()
        admin(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    for result in results:
        print(f"\n== {result['processes']} process(es), {result['connections']} connections")
        for key, value in result.items():
            print(f"{key:>55}: {value}")


if __name__ == "__main__":
    main()
