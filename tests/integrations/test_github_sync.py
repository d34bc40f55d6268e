"""Sync records against the local GitHub: one commit, nothing when unchanged, retries as GitHub asks, failures that say what to fix."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from accounts.models import User
from integrations.github import services
from integrations.github.gitobjects import folder_tree_sha
from integrations.models import GitHubSyncRecord
from projects.models import GeneratedFile, Project

pytestmark = pytest.mark.django_db
Status = GitHubSyncRecord.Status

FILES = {"main.tf": "# main\n", "modules/net/vnet.tf": "# vnet\n", "variables.tf": 'variable "x" {}\n'}


@pytest.fixture
def project(db):
    owner = User.objects.create_user("alice@example.com")
    project = Project.objects.create(owner=owner, name="web", cloud_provider="azure", iac_tool="terraform")
    for path, content in FILES.items():
        GeneratedFile.objects.create(project=project, path=path, content=content, sha256="0" * 64)
    services.set_mapping(project=project, owner="acme", name="infra", branch="main", path="projects/web")
    return project


def expected_files(files=FILES, folder="projects/web") -> dict[str, bytes]:
    return {f"{folder}/{p}": c.encode() for p, c in files.items()}


@pytest.fixture(autouse=True)
def _commits(django_capture_on_commit_callbacks, monkeypatch):
    """Each service call commits (as it would outside the test's transaction): its on_commit work runs."""
    for name in ("request_sync", "run_sync", "sweep_stale_syncs"):
        original = getattr(services, name)

        def committing(*args, _original=original, **kwargs):
            with django_capture_on_commit_callbacks(execute=True):
                return _original(*args, **kwargs)

        monkeypatch.setattr(services, name, committing)


def sync_once(project) -> GitHubSyncRecord:
    record = services.request_sync(project=project)
    services.run_sync(record.pk)
    record.refresh_from_db()
    return record


def queued(record) -> list[DBTaskResult]:
    return [t for t in DBTaskResult.objects.order_by("enqueued_at") if t.args_kwargs["args"] == [record.pk]]


def test_a_first_sync_is_one_commit_of_every_file_under_the_folder_and_nothing_else(github_settings, project):
    github = github_settings
    github.create_repo("acme", "infra", files={"README.md": b"# infra\n", "other/keep.tf": b"keep\n"})
    record = sync_once(project)

    assert record.status == Status.SUCCEEDED, record.last_error
    assert github.files("acme", "infra") == {"README.md": b"# infra\n", "other/keep.tf": b"keep\n", **expected_files()}
    assert len(github.commits("acme", "infra")) == 2
    assert record.commit_sha == github.head("acme", "infra", "main")
    assert record.tree_sha == folder_tree_sha({p: c.encode() for p, c in FILES.items()})
    assert record.base_sha == github.commits("acme", "infra")[1].sha
    assert (record.files_count, record.bytes_count, record.attempts) == (3, sum(len(c) for c in FILES.values()), 1)
    assert record.api_calls and record.api_calls <= 12  # constant: no request per file
    assert record.rate_limit_remaining is not None and record.finished_at and record.heartbeat_at is None


def test_an_unchanged_sync_makes_no_write_request(github_settings, project):
    github = github_settings
    github.create_repo("acme", "infra")
    sync_once(project)
    writes = github.write_count()
    record = sync_once(project)
    assert record.status == Status.UNCHANGED
    assert github.write_count() == writes


def test_a_changed_an_added_and_a_removed_file(github_settings, project):
    github = github_settings
    github.create_repo("acme", "infra")
    sync_once(project)
    project.files.filter(path="main.tf").update(content="# main v2\n")
    project.files.filter(path="variables.tf").delete()
    GeneratedFile.objects.create(project=project, path="outputs.tf", content="# out\n", sha256="0" * 64)
    record = sync_once(project)
    assert record.status == Status.SUCCEEDED
    files = {"main.tf": "# main v2\n", "modules/net/vnet.tf": "# vnet\n", "outputs.tf": "# out\n"}
    assert github.files("acme", "infra") == {"README.md": b"# infra\n", **expected_files(files)}


def test_a_new_branch_is_created_from_the_default_branch(github_settings, project):
    github = github_settings
    github.create_repo("acme", "infra")
    services.set_mapping(project=project, owner="acme", name="infra", branch="platform/web", path="projects/web")
    assert sync_once(project).status == Status.SUCCEEDED
    assert github.files("acme", "infra", "main") == {"README.md": b"# infra\n"}
    assert github.files("acme", "infra", "platform/web") == {"README.md": b"# infra\n", **expected_files()}


def test_an_empty_repository_gets_its_first_commit_from_the_projects_own_files(github_settings, project):
    github = github_settings
    github.create_repo("acme", "infra", empty=True)
    record = sync_once(project)
    assert record.status == Status.SUCCEEDED, record.last_error
    assert github.files("acme", "infra") == expected_files()  # no README or other file appeared


def test_a_concurrent_push_is_kept(github_settings, project):
    github = github_settings
    github.create_repo("acme", "infra")
    github.concurrent_push({"theirs.tf": b"# theirs\n"})
    assert sync_once(project).status == Status.SUCCEEDED
    assert github.files("acme", "infra")["theirs.tf"] == b"# theirs\n"
    assert set(expected_files()) <= set(github.files("acme", "infra"))


@pytest.mark.parametrize(
    "path",
    ["/etc/passwd", "../escape.tf", "a//b.tf", ".git/config", "modules/.GIT/hooks", "a/./b.tf", "C:/x.tf", "a\\b.tf"],
)
def test_a_bad_path_fails_the_sync_and_nothing_reaches_github(github_settings, project, path):
    github = github_settings
    github.create_repo("acme", "infra")
    GeneratedFile.objects.create(project=project, path=path, content="x", sha256="0" * 64)
    record = sync_once(project)
    assert record.status == Status.FAILED
    assert repr(path) in record.last_error
    assert github.request_log == []


@pytest.mark.parametrize(
    ("arrange", "reason", "delay"),
    [
        (lambda g: g.throttle(retry_after=7), "rate_limited", (7, 7)),
        (lambda g: g.secondary_rate_limit(retry_after=42), "secondary_rate_limit", (42, 42)),
        (lambda g: g.primary_rate_limit(reset_in=90), "rate_limited", (85, 95)),
        (lambda g: g.fail(502), "server_error", (0, 10)),  # full jitter: up to the base
        (lambda g: g.drop_connection(), "network", (0, 10)),
        (lambda g: g.slow(2.5), "timeout", (0, 10)),
    ],
    ids=["429 Retry-After", "secondary limit", "primary limit", "502", "dropped connection", "slow answer"],
)
def test_a_retryable_fault_schedules_a_retry_with_the_delay_github_asked_for(github_settings, project, arrange,
                                                                              reason, delay):  # fmt: skip
    github = github_settings
    github.create_repo("acme", "infra")
    arrange(github)
    record = sync_once(project)

    assert record.status == Status.RETRYING, record.last_error
    assert record.last_error_class.endswith(f":{reason}")
    wait = (record.next_retry_at - record.updated_at).total_seconds()  # from when the attempt ended
    assert delay[0] - 1 <= wait <= delay[1] + 1
    (retry,) = queued(record)[1:]
    assert abs((retry.run_after - record.next_retry_at).total_seconds()) < 1
    assert record.error_history[-1]["reason"] == reason
    # The retry, when it runs, finishes the sync.
    GitHubSyncRecord.objects.filter(pk=record.pk).update(next_retry_at=timezone.now())
    services.run_sync(record.pk)
    record.refresh_from_db()
    assert record.status == Status.SUCCEEDED and record.attempts == 2


@pytest.mark.parametrize(
    ("arrange", "words"),
    [
        (lambda g: g.fail(404, path="/repos/acme/infra/installation"), "not installed"),
        (lambda g: g.fail(422, "Invalid tree", path="/repos/acme/infra/git/trees"), "invalid"),
        (lambda g: setattr(g.repo("acme", "infra"), "archived", True), "archived"),
        (lambda g: g.fail(401, path="/repos/acme/infra/git/ref/*", times=2), "credentials"),
    ],
    ids=["404 not installed", "422 validation", "archived", "401 after a refresh"],
)
def test_a_permanent_fault_fails_at_once_saying_what_to_fix(github_settings, project, arrange, words):
    github = github_settings
    github.create_repo("acme", "infra")
    arrange(github)
    record = sync_once(project)
    assert record.status == Status.FAILED
    assert words in record.last_error.lower()
    assert record.attempts == 1 and queued(record)[1:] == []
    assert record.last_error_request_id  # GitHub's x-github-request-id, for support


def test_a_sync_fails_after_the_last_attempt(github_settings, project):
    github = github_settings
    github.create_repo("acme", "infra")
    github.fail(502, times=10)
    record = services.request_sync(project=project)
    for _ in range(3):
        GitHubSyncRecord.objects.filter(pk=record.pk).update(next_retry_at=None)
        services.run_sync(record.pk)
    record.refresh_from_db()
    assert (record.status, record.attempts, len(record.error_history)) == (Status.FAILED, 3, 3)


def test_a_sync_asked_for_while_one_is_pending_joins_it(github_settings, project):
    first = services.request_sync(project=project)
    second = services.request_sync(project=project)
    assert first.pk == second.pk
    assert GitHubSyncRecord.objects.count() == 1


def test_a_second_sync_of_a_busy_repository_waits_its_turn(github_settings, project):
    github = github_settings
    github.create_repo("acme", "infra")
    other = Project.objects.create(owner=project.owner, name="api", cloud_provider="aws", iac_tool="terraform")
    GeneratedFile.objects.create(project=other, path="main.tf", content="# api\n", sha256="0" * 64)
    services.set_mapping(project=other, owner="acme", name="infra", path="projects/api")
    running = services.request_sync(project=project)
    GitHubSyncRecord.objects.filter(pk=running.pk).update(status=Status.RUNNING, heartbeat_at=timezone.now())
    waiting = services.request_sync(project=other)

    assert services.run_sync(waiting.pk) == "waiting"
    waiting.refresh_from_db()
    assert waiting.status == Status.PENDING and waiting.attempts == 0
    assert len(queued(waiting)) == 2  # asked again shortly, without holding a worker
    assert github.request_log == []


def test_the_write_budget_is_shared_and_waiting_for_it_is_no_attempt(github_settings, project, settings):
    from integrations.models import GitHubWrite

    github = github_settings
    github.create_repo("acme", "infra")
    settings.GITHUB_WRITES_PER_MINUTE = 4  # a first sync needs 4: folder tree, root tree, commit, ref
    GitHubWrite.objects.create(at=timezone.now() - timedelta(seconds=30))  # another worker's write
    record = sync_once(project)
    assert record.status == Status.RETRYING
    assert record.last_error_class.endswith(":write_budget") and record.attempts == 0
    assert github.write_count() == 0  # reserved ahead: no half-done sync spends the budget
    assert 29 <= (record.next_retry_at - record.updated_at).total_seconds() <= 33


def test_a_sync_that_can_never_fit_the_budget_fails_saying_so(github_settings, project, settings):
    github_settings.create_repo("acme", "infra")
    settings.GITHUB_WRITES_PER_MINUTE = 3
    record = sync_once(project)
    assert record.status == Status.FAILED
    assert "can never fit" in record.last_error


def test_a_stale_running_record_is_taken_back_and_finished(github_settings, project, settings):
    github = github_settings
    github.create_repo("acme", "infra")
    record = services.request_sync(project=project)
    stale = timezone.now() - timedelta(seconds=settings.GITHUB_SYNC_STALE_AFTER_S + 1)
    GitHubSyncRecord.objects.filter(pk=record.pk).update(status=Status.RUNNING, attempts=1, heartbeat_at=stale)
    tasks = DBTaskResult.objects.count()

    assert services.sweep_stale_syncs() == 1
    record.refresh_from_db()
    assert (record.status, record.attempts) == (Status.SUCCEEDED, 2)
    assert DBTaskResult.objects.count() == tasks  # nothing new enqueued


def test_a_fresh_running_record_is_left_alone(github_settings, project):
    record = services.request_sync(project=project)
    GitHubSyncRecord.objects.filter(pk=record.pk).update(status=Status.RUNNING, heartbeat_at=timezone.now())
    assert services.sweep_stale_syncs() == 0
    assert GitHubSyncRecord.objects.get(pk=record.pk).status == Status.RUNNING


def test_many_files_go_in_one_tree_request_and_only_a_big_file_as_a_blob(github_settings, project):
    github = github_settings
    github.create_repo("acme", "infra")
    GeneratedFile.objects.bulk_create(
        GeneratedFile(project=project, path=f"m/f{n}.tf", content="x" * 7000, sha256="0" * 64) for n in range(300)
    )
    GeneratedFile.objects.create(project=project, path="big.tf", content="y" * (600 * 1024), sha256="0" * 64)
    record = sync_once(project)
    assert record.status == Status.SUCCEEDED, record.last_error
    assert github.count("POST", "/repos/acme/infra/git/blobs") == 1  # only the file over 512 KiB
    assert github.count("POST", "/repos/acme/infra/git/trees") == 2  # the folder, the root
    assert len(github.files("acme", "infra")) == 1 + len(FILES) + 301
