"""A real server process for the real-time tests: uvicorn serving config.asgi, as the README runs it.

Each process gets a scratch database (shared by the processes of a test module), the local
Entra's settings through the environment, Redis when given, and timers of a second.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import requests
from django.conf import settings

from core import http
from devtools.local_entra import LocalEntra
from devtools.local_entra.pages import press_sign_in
from devtools.local_entra.users import LocalUser
from tests.accounts.entra.conftest import CLIENT_ID, OTHER_TENANT, SECRET, TENANT

ROOT = Path(__file__).resolve().parents[2]

# The README's command, less host and port.
UVICORN = [
    "-m",
    "uvicorn",
    "config.asgi:application",
    "--ws",
    "websockets-sansio",
    "--ws-per-message-deflate",
    "false",
    "--ws-max-size",
    "65536",
    "--ws-ping-interval",
    "20",
    "--ws-ping-timeout",
    "20",
    "--backlog",
    "2048",
    "--timeout-graceful-shutdown",
    "10",
    "--lifespan",
    "on",
    "--no-access-log",
]
SECRET_KEY = "tests-only-not-secret"


@dataclass
class LiveDatabase:
    """A copy of the session's migrated template that the server processes share (dropped with the module)."""

    vendor: str
    name: str  # database name (PostgreSQL) or file path (SQLite)

    @classmethod
    def migrated(cls, directory: Path) -> LiveDatabase:
        """A new database of the test database's kind, migrated by ``manage.py migrate`` (the template)."""
        vendor = "postgresql" if settings.DATABASES["default"]["ENGINE"].endswith("postgresql") else "sqlite"
        if vendor == "postgresql":
            db = cls(vendor, f"entra_realtime_{uuid.uuid4().hex[:12]}")
            db._admin(f'CREATE DATABASE "{db.name}"')
        else:
            db = cls(vendor, str(directory / f"realtime_{uuid.uuid4().hex[:12]}.sqlite3"))
        env = {**os.environ, "DATABASE_URL": db.url, "SECRET_KEY": SECRET_KEY, "DEVTOOLS": "true"}
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input"], cwd=ROOT, env=env, check=True, capture_output=True
        )
        return db

    @classmethod
    def clone(cls, template: LiveDatabase, directory: Path) -> LiveDatabase:
        if template.vendor == "postgresql":
            db = cls("postgresql", f"entra_realtime_{uuid.uuid4().hex[:12]}")
            db._admin(f'CREATE DATABASE "{db.name}" TEMPLATE "{template.name}"')
            return db
        db = cls("sqlite", str(directory / f"realtime_{uuid.uuid4().hex[:12]}.sqlite3"))
        shutil.copyfile(template.name, db.name)
        return db

    @staticmethod
    def _conninfo(dbname: str) -> str:
        db = settings.DATABASES["default"]
        info = f"host={db.get('HOST') or '127.0.0.1'} port={db.get('PORT') or 5432} user={db.get('USER') or 'postgres'}"
        return f"{info} dbname={dbname}" + (f" password={db['PASSWORD']}" if db.get("PASSWORD") else "")

    def _admin(self, sql: str) -> None:
        with psycopg.connect(self._conninfo("postgres"), autocommit=True) as conn:
            conn.execute(sql)

    @property
    def url(self) -> str:
        if self.vendor == "postgresql":
            db = settings.DATABASES["default"]
            password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
            host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
            return f"postgres://{db.get('USER') or 'postgres'}{password}@{host}:{port}/{self.name}"
        return f"sqlite:///{self.name}"

    def execute(self, sql: str, params: list | tuple = ()) -> list[tuple]:
        if self.vendor == "postgresql":
            with psycopg.connect(self._conninfo(self.name), autocommit=True) as conn:
                cursor = conn.execute(sql, params)
                return cursor.fetchall() if cursor.description else []
        conn = sqlite3.connect(self.name, isolation_level=None, timeout=10)
        try:
            cursor = conn.execute(sql.replace("%s", "?"), params)
            return cursor.fetchall() if cursor.description else []
        finally:
            conn.close()

    def drop(self) -> None:
        if self.vendor == "postgresql":
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        else:
            Path(self.name).unlink(missing_ok=True)


STARTED: list[Server] = []  # every server process started, so that none outlives the test session


def stop_all() -> None:
    for server in STARTED:
        if server.process is not None and server.process.poll() is None:
            server.process.kill()
            server.process.wait()
    STARTED.clear()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(db: LiveDatabase, entra: LocalEntra, *, url: str = "", **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": db.url,
        "SECRET_KEY": SECRET_KEY,
        "DEBUG": "true",
        "DEVTOOLS": "true",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "ENTRA_CLIENT_ID": CLIENT_ID,
        "ENTRA_TENANT_ID": TENANT,
        "ENTRA_CLIENT_SECRET": SECRET,
        "ENTRA_REDIRECT_URI": f"{url or 'http://127.0.0.1:8000'}/auth/callback/",
        "ENTRA_AUTHORITY_HOST": entra.url,
        "GRAPH_URL": entra.url,
        "ENTRA_CA_BUNDLE": str(entra.ca_path),
        "ENTRA_ALLOWED_TENANTS": f"{TENANT},{OTHER_TENANT}",
        "ENTRA_TENANT_DOMAINS": f"{TENANT}=example.com",
        "ENTRA_JIT_CREATE": "false",
        "TASKS_BACKEND": "immediate",
        "REALTIME_HEARTBEAT_S": "1",
        "REALTIME_HEARTBEAT_WRITE_S": "1",
        "REALTIME_RECHECK_S": "1",
        "REALTIME_SERVER_BEAT_S": "1",
        "REDIS_URL": "",
    }
    env.update(extra)
    return env


@dataclass
class Server:
    db: LiveDatabase
    entra: LocalEntra
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/notifications/"

    def start(self, timeout: float = 30) -> Server:
        env = server_env(self.db, self.entra, url=self.url, **self.env)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, *UVICORN, "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        STARTED.append(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited {self.process.returncode}:\n{self.log()}")
            if "Application startup complete" in self.log():
                return self
            time.sleep(0.05)
        self.process.kill()
        raise AssertionError(f"the server did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def server_id(self) -> str:
        [(server_id,)] = self.db.execute(
            "SELECT server_id FROM realtime_servers WHERE pid = %s ORDER BY id DESC LIMIT 1", [self.process.pid]
        )
        return server_id

    def signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def sign_in(server: Server, persona: LocalUser) -> requests.Session:
    """A browser's sign-in through the local Entra, against the real server: the session cookie it ends with."""
    browser = http.session(ca_bundle=str(server.entra.ca_path))  # verify on every request: REQUESTS_CA_BUNDLE loses
    start = browser.get(f"{server.url}/auth/login/", params={"next": "/account/"}, allow_redirects=False)
    assert start.status_code == 302, start.text
    back = press_sign_in(browser, start.headers["Location"], persona)
    done = browser.get(back.url, allow_redirects=False)
    assert done.status_code == 302 and done.headers["Location"] == "/account/", done.text
    assert browser.cookies.get("sessionid")
    return browser


def cookie_of(browser: requests.Session) -> dict[str, str]:
    return {"Cookie": f"sessionid={browser.cookies['sessionid']}"}
