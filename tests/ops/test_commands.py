"""run_maintenance: the dry run changes nothing, --execute removes exactly what it reported; migration_status."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_tasks_db.models import DBTaskResult, TaskResultStatus

from accounts.models import RefusedEntraLink, User
from integrations.models import GitHubSyncRecord
from ops import maintenance
from projects.models import Project
from realtime.models import WebSocketSession

pytestmark = pytest.mark.django_db


def run(*args: str) -> dict:
    out = StringIO()
    call_command("run_maintenance", *args, "--format", "json", stdout=out)
    return json.loads(out.getvalue())


@pytest.fixture
def data(settings):
    settings.TASK_RESULT_RETENTION_DAYS = 14
    settings.SYNC_RECORD_RETENTION_DAYS = 90
    settings.WEBSOCKET_SESSION_RETENTION_DAYS = 30
    now = timezone.now()
    alice = User.objects.create(email="alice@example.com")
    bob = User.objects.create(email="bob@example.com")
    # Token hashes: alice's token expired, bob's is live.
    User.objects.filter(pk=alice.pk).update(
        azure_access_token_hash="a" * 64,
        azure_refresh_token_hash="r" * 64,
        azure_token_expires_at=now - timedelta(hours=1),
    )
    User.objects.filter(pk=bob.pk).update(
        azure_access_token_hash="b" * 64, azure_token_expires_at=now + timedelta(hours=1)
    )
    # WebSocket sessions: one stale, one live, one closed long ago, one closed recently.
    WebSocketSession.objects.create(user=alice, channel_name="c1", last_heartbeat_at=now - timedelta(hours=2))
    WebSocketSession.objects.create(user=alice, channel_name="c2", last_heartbeat_at=now)
    WebSocketSession.objects.create(user=bob, channel_name="c3", disconnected_at=now - timedelta(days=40))
    WebSocketSession.objects.create(user=bob, channel_name="c4", disconnected_at=now - timedelta(days=1))
    # Task results: two old finished, one recent, one old but still ready.
    for status, age in [
        (TaskResultStatus.SUCCESSFUL, 20),
        (TaskResultStatus.FAILED, 30),
        (TaskResultStatus.SUCCESSFUL, 1),
        (TaskResultStatus.READY, 20),
    ]:
        DBTaskResult.objects.create(
            args_kwargs={"args": [], "kwargs": {}}, task_path="x.y", backend_name="default", status=status,
            run_after=now, finished_at=None if status == TaskResultStatus.READY else now - timedelta(days=age),
        )  # fmt: skip
    # Sync records: of "web", two old (the newest of them is not the project's latest) and the latest, old too.
    web = Project.objects.create(owner=alice, name="web", cloud_provider="azure", iac_tool="terraform")
    for age in (200, 150, 120):
        GitHubSyncRecord.objects.create(
            project=web, repository_owner="acme", repository_name="infra", status="succeeded",
            finished_at=now - timedelta(days=age),
        )  # fmt: skip
    return {"alice": alice, "bob": bob, "web": web}


def snapshot() -> tuple:
    return (
        sorted(User.objects.values_list("pk", "azure_access_token_hash", "azure_refresh_token_hash")),
        sorted(WebSocketSession.objects.values_list("pk", "disconnected_at", "disconnect_reason")),
        sorted(str(pk) for pk in DBTaskResult.objects.values_list("pk", flat=True)),
        sorted(GitHubSyncRecord.objects.values_list("pk", flat=True)),
    )


def test_the_dry_run_changes_nothing(data):
    before = snapshot()
    report = run()
    assert snapshot() == before
    jobs = report["jobs"]
    assert report["execute"] is False
    assert (jobs["websocket_sessions"]["count"], jobs["expired_token_hashes"]["count"]) == (2, 1)
    assert (jobs["task_results"]["count"], jobs["sync_records"]["count"]) == (2, 2)


def test_execute_removes_exactly_what_the_dry_run_reported(data):
    reported = {name: job["count"] for name, job in run()["jobs"].items()}
    expected_hashes = set(maintenance.expired_token_hashes().values_list("pk", flat=True))
    expected_tasks = set(maintenance.old_task_results().values_list("pk", flat=True))
    expected_syncs = set(maintenance.old_sync_records().values_list("pk", flat=True))
    tasks_before = set(DBTaskResult.objects.values_list("pk", flat=True))
    syncs_before = set(GitHubSyncRecord.objects.values_list("pk", flat=True))

    done = {name: job["count"] for name, job in run("--execute", "--batch", "1")["jobs"].items()}

    assert done == reported
    assert tasks_before - set(DBTaskResult.objects.values_list("pk", flat=True)) == expected_tasks
    assert syncs_before - set(GitHubSyncRecord.objects.values_list("pk", flat=True)) == expected_syncs
    assert set(GitHubSyncRecord.objects.values_list("pk", flat=True)) == {max(syncs_before)}  # the latest kept
    alice = User.objects.get(pk=data["alice"].pk)
    assert {alice.pk} == expected_hashes
    assert alice.azure_access_token_hash is None and alice.azure_refresh_token_hash == "r" * 64
    assert User.objects.get(pk=data["bob"].pk).azure_access_token_hash == "b" * 64
    assert WebSocketSession.objects.filter(disconnect_reason="stale").count() == 1
    assert WebSocketSession.objects.filter(disconnected_at__isnull=True).count() == 1
    assert WebSocketSession.objects.count() == 3
    # Nothing is left to do.
    assert all(job["count"] == 0 for name, job in run()["jobs"].items() if name != "analyze")


def test_text_output_is_one_line_per_job(data):
    out = StringIO()
    call_command("run_maintenance", stdout=out)
    lines = out.getvalue().splitlines()
    assert [line.split(":")[0] for line in lines[: len(maintenance.JOBS)]] == list(maintenance.JOBS)
    assert lines[-1].startswith("Dry run")


def test_a_failed_job_exits_non_zero_after_the_others_ran(data, monkeypatch):
    def broken(*, execute, batch):
        raise RuntimeError("disk on fire")

    monkeypatch.setitem(maintenance.JOBS, "task_results", broken)
    out = StringIO()
    with pytest.raises(CommandError, match="1 maintenance job"):
        call_command("run_maintenance", "--execute", stdout=out)
    assert "task_results: FAILED: RuntimeError: disk on fire" in out.getvalue()
    assert GitHubSyncRecord.objects.count() == 1  # the job after it ran


def test_migration_status(data):
    now = timezone.now()
    User.objects.filter(pk=data["alice"].pk).update(azure_entra_id="oid-a", azure_tenant_id="t", entra_linked_at=now)
    User.objects.create(email="carol@example.com", requires_entra_migration=True)
    User.objects.create(email="dave@example.com", requires_entra_migration=True, is_active=False)
    RefusedEntraLink.objects.create(reason="ambiguous_email", tenant_id="t", object_id="o1")
    RefusedEntraLink.objects.create(reason="ambiguous_email", tenant_id="t", object_id="o2")
    RefusedEntraLink.objects.create(reason="no_account", tenant_id="t", object_id="o3", resolved=True)
    out = StringIO()
    call_command("migration_status", "--format", "json", stdout=out)
    status = json.loads(out.getvalue())
    assert (status["total"], status["linked"], status["flagged"], status["inactive"]) == (4, 1, 2, 1)
    assert status["conflicts"] == 2
    assert status["refused_by_reason"]["ambiguous_email"] == 2 and status["refused_by_reason"]["no_account"] == 0
    assert status["linked_per_day"] == [[now.date().isoformat(), 1]]
    out = StringIO()
    call_command("migration_status", stdout=out)
    assert "linked to Entra: 1 (25.0 %)" in out.getvalue()
