"""The sign-in callback's own server time, excluding the round trips to Entra.

    .venv/bin/python bench/sign_in.py [--sign-ins 200]

Runs first sign-ins of flagged legacy users (the heaviest path: code
redemption, ID-token validation, linking with an audit row, token hashes, the
encrypted token cache, the session) against the local Entra on 127.0.0.1, on
a SQLite database in a temporary directory. Each callback's time minus the
time spent waiting on HTTP calls (msal's token request; keys are warm) is its
server time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
WORK = Path(tempfile.mkdtemp(prefix="bench-sign-in-"))
TENANT = "7a3f0000-0000-4000-8000-00000000c0de"
CLIENT = "11111111-2222-3333-4444-555555555555"
os.environ.update(
    DJANGO_SETTINGS_MODULE="config.settings",
    SECRET_KEY="bench",
    DATABASE_URL=f"sqlite:///{WORK / 'bench.sqlite3'}",
    ALLOWED_HOSTS="testserver",
    ENTRA_CLIENT_ID=CLIENT,
    ENTRA_TENANT_ID=TENANT,
    ENTRA_CLIENT_SECRET="bench-secret",
    ENTRA_REDIRECT_URI="https://testserver/auth/callback/",
    DEVTOOLS="true",
    SECURE_SSL_REDIRECT="false",
    ENTRA_LOGIN_FLOWS_PER_MINUTE="1000000",  # every sign-in comes from this one address
    ENTRA_TENANT_DOMAINS=f"{TENANT}=example.com",
    TASKS_BACKEND="database",  # profile sync is queued, as in production
)

from devtools.local_entra import LocalEntra, LocalUser

SERVER = LocalEntra(cert_dir=WORK / "ca", users=[], tenant_id=TENANT, client_id=CLIENT, client_secret="bench-secret")
SERVER.start()
os.environ.update(ENTRA_AUTHORITY_HOST=SERVER.url, GRAPH_URL=SERVER.url, ENTRA_CA_BUNDLE=str(SERVER.ca_path))

import django

django.setup()

from django.core.management import call_command
from django.test import Client

from accounts.models import User
from core import http

http_wait = 0.0
_request = http.PinnedSession.request


def timed_request(self, *args, **kwargs):
    global http_wait
    started = time.perf_counter()
    try:
        return _request(self, *args, **kwargs)
    finally:
        http_wait += time.perf_counter() - started


http.PinnedSession.request = timed_request


def main() -> None:
    global http_wait
    parser = argparse.ArgumentParser()
    parser.add_argument("--sign-ins", type=int, default=200)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    server_times, totals = [], []
    for n in range(args.sign_ins + 10):  # the first ten warm up
        user = SERVER.add_user(LocalUser(oid=str(uuid.uuid4()), tid=TENANT, email=f"user{n}@example.com", name=f"U{n}"))
        User.objects.create(email=user.email, requires_entra_migration=True)
        client = Client()
        auth_uri = client.get("/auth/login/")["Location"]
        back = SERVER.sign_in(auth_uri, user)
        http_wait = 0.0
        started = time.perf_counter()
        response = client.get("/auth/callback/", back.params)
        total = time.perf_counter() - started
        assert response.status_code == 302, response.content[:300]
        if n >= 10:
            server_times.append((total - http_wait) * 1000)
            totals.append(total * 1000)
    server_times.sort()
    print(
        f"{len(server_times)} first sign-ins: callback server time median {statistics.median(server_times):.1f} ms, "
        f"p95 {server_times[int(len(server_times) * 0.95)]:.1f} ms "
        f"(with the round trip to the token endpoint: median {statistics.median(totals):.1f} ms)"
    )
    SERVER.stop()


if __name__ == "__main__":
    main()
