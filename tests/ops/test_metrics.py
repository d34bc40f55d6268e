"""/metrics: refused to anonymous callers; every family from the first scrape; figures that move."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from accounts.models import RefusedEntraLink, User
from core import metrics
from tests.support import ROOT

TOKEN = "metrics-test-token"


def scrape(client, **headers) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}", **headers})
    assert response.status_code == 200, response.content
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


@pytest.fixture(autouse=True)
def token(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_NETWORKS = []
    settings.METRICS_DB_REFRESH_S = 0  # each scrape reads the database


def test_an_anonymous_caller_is_refused(client):
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403


def test_an_allowed_network_needs_no_token(client, settings, db):
    settings.METRICS_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    assert client.get("/metrics").status_code == 200
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    assert client.get("/metrics").status_code == 403


@pytest.mark.django_db
def test_every_family_is_there_from_the_first_scrape(client):
    samples = scrape(client)
    names = {name for name, _ in samples}
    for family in (
        "entra_sign_ins_total",
        "entra_token_validation_seconds_count",
        "entra_token_refresh_total",
        "entra_api_requests_total",
        "github_syncs_total",
        "github_sync_duration_seconds_count",
        "github_sync_retries_total",
        "github_api_requests_total",
        "github_rate_limit_remaining",
        "websocket_connections",
        "websocket_connects_total",
        "websocket_disconnects_total",
        "websocket_heartbeats_missed_total",
        "tasks_ready",
        "tasks_oldest_ready_age_seconds",
        "entra_migration_users",
    ):
        assert family in names, family
    assert ("entra_sign_ins_total", (("outcome", "refused"), ("reason", "not_flagged"))) in samples
    assert ("websocket_disconnects_total", (("reason", "server lost"),)) in samples
    assert ("github_sync_retries_total", (("reason", "rate_limited"),)) in samples


@pytest.mark.django_db
def test_the_migration_figures_come_from_the_database(client):
    User.objects.create(email="linked@example.com", azure_entra_id="oid-1", azure_tenant_id="t")
    User.objects.create(email="flagged@example.com", requires_entra_migration=True)
    User.objects.create(email="flagged2@example.com", requires_entra_migration=True)
    RefusedEntraLink.objects.create(reason="ambiguous_email", tenant_id="t", object_id="o")
    RefusedEntraLink.objects.create(reason="inactive", tenant_id="t", object_id="o", resolved=True)
    samples = scrape(client)
    assert samples[("entra_migration_users", (("state", "linked"),))] == 1
    assert samples[("entra_migration_users", (("state", "flagged"),))] == 2
    assert samples[("entra_migration_users", (("state", "conflicts"),))] == 1


@pytest.mark.django_db
def test_the_task_backlog(client):
    from django_tasks_db.models import DBTaskResult

    DBTaskResult.objects.create(
        args_kwargs={"args": [], "kwargs": {}},
        task_path="x.y",
        backend_name="default",
        run_after=timezone.now() - timezone.timedelta(seconds=120),
    )
    samples = scrape(client)
    assert samples[("tasks_ready", ())] == 1
    assert 119 <= samples[("tasks_oldest_ready_age_seconds", ())] < 200


@pytest.mark.django_db
def test_counters_move(client):
    key = ("entra_sign_ins_total", (("outcome", "linked"), ("reason", "")))
    before = scrape(client)[key]
    metrics.sign_in("linked")
    assert scrape(client)[key] == before + 1


MULTIPROCESS_CHILD = textwrap.dedent(
    """
    import sys
    from core import metrics
    metrics.sign_in("created")
    metrics.github_syncs.labels("succeeded").inc(int(sys.argv[1]))
    metrics.websocket_connections.inc(3)
    """
)
MULTIPROCESS_SCRAPE = textwrap.dedent(
    """
    import os
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django
    django.setup()
    from django.test import Client
    response = Client().get("/metrics", headers={"Authorization": "Bearer t"})
    assert response.status_code == 200, response.status_code
    print(response.content.decode())
    """
)


def test_two_processes_add_up(tmp_path):
    directory = tmp_path / "prom"
    directory.mkdir()
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
        "METRICS_TOKEN": "t",
        "ALLOWED_HOSTS": "testserver",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}",  # the database figures are not the point here
    }
    for count in ("2", "5"):
        subprocess.run([sys.executable, "-c", MULTIPROCESS_CHILD, count], cwd=ROOT, env=env, check=True, timeout=60)
    out = subprocess.run(
        [sys.executable, "-c", MULTIPROCESS_SCRAPE],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    ).stdout
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(out)
        for s in family.samples
    }
    assert samples[("github_syncs_total", (("outcome", "succeeded"),))] == 7
    assert samples[("entra_sign_ins_total", (("outcome", "created"), ("reason", "")))] == 2
    # The two children have exited and marked themselves dead: their live connections are gone.
    assert not any(name == "websocket_connections" and value for (name, _), value in samples.items())


@pytest.mark.django_db(transaction=True)
def test_figures_older_than_the_refresh_interval_are_read_again_in_the_background(client, settings):
    import time

    from ops.metrics import DatabaseCollector

    settings.METRICS_DB_REFRESH_S = 0.2
    collector = DatabaseCollector()
    assert collector.figures().gauges.flagged == 0  # the first read is the caller's own
    User.objects.create(email="flagged@example.com", requires_entra_migration=True)
    assert collector.figures().gauges.flagged == 0  # fresh enough: served as read
    time.sleep(0.3)
    assert collector.figures().gauges.flagged == 0  # too old: served, and read again meanwhile
    for _ in range(50):
        if collector.figures().gauges.flagged == 1:
            break
        time.sleep(0.05)
    assert collector.figures().gauges.flagged == 1
