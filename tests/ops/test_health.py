"""/health/live and /health/ready: one entry per check with its time; 503 naming what failed; 200 once it recovers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from ops import health
from tests.support import ROOT

PROBE = textwrap.dedent(
    """
    import os
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django
    django.setup()
    from django.test import Client
    response = Client().get("/health/ready")
    print(response.status_code, response.content.decode())
    """
)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nobody listens once it is closed


def probe(**env: str) -> tuple[int, dict]:
    """GET /health/ready in a process of its own, with these settings."""
    full = {**os.environ, "ALLOWED_HOSTS": "testserver", "HEALTH_CHECK_TIMEOUT_S": "3", **env}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=full, capture_output=True, text=True, timeout=60, check=True
    ).stdout
    status, _, body = out.strip().splitlines()[-1].partition(" ")
    return int(status), json.loads(body)


def test_live_answers_without_the_database(client):
    response = client.get("/health/live")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.django_db(transaction=True)
def test_ready_lists_every_check_with_its_time(client):
    response = client.get("/health/ready")
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body["checks"]) == {"database", "migrations", "task_backlog"}
    assert all(check["ok"] and check["seconds"] >= 0 for check in body["checks"].values())


def migrated_sqlite(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"],
        cwd=ROOT, env={**os.environ, "DATABASE_URL": url}, check=True, timeout=120,
    )  # fmt: skip
    return url


def test_an_unreachable_database_is_503_naming_it_and_200_once_it_answers(tmp_path):
    status, body = probe(DATABASE_URL=f"postgres://postgres@127.0.0.1:{closed_port()}/nowhere", SECRET_KEY="x")
    assert status == 503
    assert "database" in body["failing"] and "migrations" in body["failing"]
    assert body["checks"]["database"]["error"]
    status, body = probe(DATABASE_URL=migrated_sqlite(tmp_path))
    assert status == 200, body


def test_unapplied_migrations_are_503(tmp_path):
    status, body = probe(DATABASE_URL=f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    assert status == 503 and "migrations" in body["failing"] and "database" not in body["failing"]
    assert "not applied" in body["checks"]["migrations"]["error"]


def test_redis_down_is_503_and_up_again_is_200(tmp_path):
    url = migrated_sqlite(tmp_path)
    status, body = probe(DATABASE_URL=url, REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0")
    assert status == 503 and body["failing"] == ["channel_layer"]
    status, body = probe(DATABASE_URL=url, REDIS_URL="redis://127.0.0.1:6379/0")
    assert status == 200, body
    assert body["checks"]["channel_layer"]["ok"]


@pytest.mark.django_db(transaction=True)
def test_a_backlog_too_old_is_503_until_it_is_worked_off(client, settings):
    settings.HEALTH_MAX_TASK_AGE_S = 60
    task = DBTaskResult.objects.create(
        args_kwargs={"args": [], "kwargs": {}},
        task_path="x.y",
        backend_name="default",
        run_after=timezone.now() - timezone.timedelta(seconds=600),
    )
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["failing"] == ["task_backlog"]
    assert "oldest ready task waited" in response.json()["checks"]["task_backlog"]["error"]
    task.delete()
    assert client.get("/health/ready").status_code == 200


def test_a_hung_check_is_cut_off_at_the_timeout(settings):
    import threading

    settings.HEALTH_CHECK_TIMEOUT_S = 0.2
    release = threading.Event()
    try:
        results = health.run_checks({"hung": lambda: release.wait(30) and None, "fine": lambda: None})
    finally:
        release.set()
    by_name = {r.name: r for r in results}
    assert not by_name["hung"].ok and "no answer within" in by_name["hung"].error
    assert by_name["hung"].seconds < 1
    assert by_name["fine"].ok
