"""sync_project_to_github and retry_failed_syncs: what they print, change and exit with."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django_tasks_db.models import DBTaskResult

from integrations.models import GitHubRepositoryMapping, GitHubSyncRecord

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_sync_sets_the_mapping_and_enqueues_after_commit(github_settings, project, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        out = run("sync_project_to_github", str(project.pk), "--repo", "acme/infra", "--branch", "dev", "--path", "x/")
    record = GitHubSyncRecord.objects.get()
    assert f"Sync #{record.pk}" in out
    mapping = GitHubRepositoryMapping.objects.get(project=project)
    assert (mapping.repository_owner, mapping.repository_name, mapping.branch, mapping.path) == ("acme", "infra", "dev", "x")
    assert DBTaskResult.objects.count() == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["999999"], "No project with id 999999"),
        (["{pk}"], "no mapping"),
        (["{pk}", "--repo", "not-a-repo"], "OWNER/NAME"),
        (["{pk}", "--repo", "acme/infra", "--path", "../up"], "segment"),
        (["{pk}", "--repo", "acme/infra", "--timeout", "0"], "--timeout must be positive"),
    ],
)
def test_bad_input_is_a_clear_error_and_changes_nothing(github_settings, project, args, message):
    with pytest.raises(CommandError, match=message):
        run("sync_project_to_github", *[a.format(pk=project.pk) for a in args])
    assert not GitHubSyncRecord.objects.exists()


def test_wait_times_out_without_a_worker(github_settings, project, django_capture_on_commit_callbacks):
    with pytest.raises(CommandError, match=r"still pending after 0\.3 s"):
        run("sync_project_to_github", str(project.pk), "--repo", "acme/infra", "--wait", "--timeout", "0.3")


def test_the_commands_say_when_the_integration_is_off(project, settings):
    settings.GITHUB_ENABLED = False
    for command in ("sync_project_to_github", "retry_failed_syncs"):
        args = [str(project.pk)] if command == "sync_project_to_github" else []
        with pytest.raises(CommandError, match="integration is off"):
            run(command, *args)


def test_retry_failed_syncs_is_a_dry_run_by_default(github_settings, project, django_capture_on_commit_callbacks):
    failed = GitHubSyncRecord.objects.create(
        project=project, repository_owner="acme", repository_name="infra", status="failed", attempts=5,
        last_error="GitHub answered 502",
    )  # fmt: skip
    GitHubSyncRecord.objects.create(project=project, repository_owner="acme", repository_name="infra", status="succeeded")
    out = run("retry_failed_syncs")
    assert f"#{failed.pk}" in out and "1 sync(s) would be re-enqueued" in out
    assert GitHubSyncRecord.objects.get(pk=failed.pk).status == "failed" and not DBTaskResult.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        out = run("retry_failed_syncs", "--execute")
    assert "1 sync(s) re-enqueued" in out
    failed.refresh_from_db()
    assert (failed.status, failed.attempts) == ("retrying", 0)
    assert DBTaskResult.objects.count() == 1
