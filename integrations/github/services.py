"""Sync records: asking for a sync, running one exactly once per repository at a time, retrying, taking back.

A record goes ``pending`` → ``running`` → ``succeeded``/``unchanged``, or ``retrying``
(re-enqueued with ``run_after``, never a sleep in the worker) → … → ``failed``. A
running sync refreshes ``heartbeat_at`` from a thread of its own, also while it waits
on a slow answer, so only a dead worker's record goes stale; ``sweep_stale_syncs``
(every worker, periodically) takes such a record back and finishes it.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from core import events, metrics
from core.db.locks import advisory_xact_lock
from integrations.github import budget
from integrations.github.client import GitHubClient, GitHubError
from integrations.github.conf import github_config
from integrations.github.sync import BadPath, normalize_folder, plan_files, sync_folder
from integrations.models import GitHubRepositoryMapping, GitHubSyncRecord

logger = logging.getLogger("integrations.github.services")
Status = GitHubSyncRecord.Status
SYNC_STATUS = "integrations.github_sync_status"  # event: project_id, record_id, status, owner_id
MAX_BACKOFF_S = 3600.0
TURN_WAIT_S = 2.0  # a sync whose repository is busy looks again after this long
MAX_HISTORY = 20


def set_mapping(*, project, owner: str, name: str, branch: str = "main", path: str = "") -> GitHubRepositoryMapping:
    if not owner or not name or "/" in owner or "/" in name:
        raise ValueError("the repository must be OWNER/NAME")
    if not branch or branch.startswith("/") or ".." in branch:
        raise ValueError(f"{branch!r} is not a branch name")
    mapping, _ = GitHubRepositoryMapping.objects.update_or_create(
        project=project,
        defaults={"repository_owner": owner, "repository_name": name, "branch": branch, "path": normalize_folder(path)},
    )
    return mapping


@transaction.atomic
def request_sync(*, project, requested_by=None) -> GitHubSyncRecord:
    """A pending sync of ``project`` (the one already pending, if any), its task enqueued after commit."""
    mapping = GitHubRepositoryMapping.objects.select_for_update().filter(project=project).first()
    if mapping is None:
        raise ValueError("the project is not mapped to a repository")
    pending = GitHubSyncRecord.objects.filter(project=project, status=Status.PENDING).order_by("pk").first()
    if pending is not None:
        return pending
    record = GitHubSyncRecord.objects.create(
        project=project,
        requested_by=requested_by,
        repository_owner=mapping.repository_owner,
        repository_name=mapping.repository_name,
        branch=mapping.branch,
        path=mapping.path,
    )
    _enqueue(record.pk)
    _announce(record)
    return record


def _enqueue(record_id: int, *, run_after=None) -> None:
    from integrations.github.tasks import run_github_sync

    task = run_github_sync.using(run_after=run_after) if run_after else run_github_sync
    transaction.on_commit(lambda: task.enqueue(record_id))


def _announce(record: GitHubSyncRecord) -> None:
    events.publish(
        SYNC_STATUS,
        project_id=record.project_id,
        record_id=record.pk,
        status=record.status,
        owner_id=record.project.owner_id if record.project_id else None,
    )


def _claim(record_id: int, *, stale_before=None) -> GitHubSyncRecord | str:
    """Mark the record running (an attempt) unless its repository is busy: the record, or why not."""
    record = GitHubSyncRecord.objects.filter(pk=record_id).select_related("project").first()
    if record is None:
        return "gone"
    now = timezone.now()
    with transaction.atomic():
        advisory_xact_lock(connection, f"github-sync:{record.repository.lower()}")
        if stale_before is not None:  # taking back a dead worker's record
            claimable = Q(status=Status.RUNNING) & (Q(heartbeat_at__lt=stale_before) | Q(heartbeat_at__isnull=True))
        else:
            claimable = Q(status__in=[Status.PENDING, Status.RETRYING])
        busy = GitHubSyncRecord.objects.filter(
            repository_owner__iexact=record.repository_owner,
            repository_name__iexact=record.repository_name,
            status=Status.RUNNING,
            heartbeat_at__gte=now - timedelta(seconds=github_config().stale_after_s),
        ).exclude(pk=record_id)
        if busy.exists():
            return "busy"
        claimed = GitHubSyncRecord.objects.filter(claimable, pk=record_id).update(
            status=Status.RUNNING,
            attempts=F("attempts") + 1,
            heartbeat_at=now,
            started_at=now,
            next_retry_at=None,
            updated_at=now,
        )
    if not claimed:
        return "not claimable"
    record.refresh_from_db()
    return record


class _Heartbeat:
    """Refreshes the record's heartbeat every ``interval`` from its own thread (and database connection)."""

    def __init__(self, record_id: int, interval: float) -> None:
        self.record_id, self.interval = record_id, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"github-sync-heartbeat-{record_id}", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                GitHubSyncRecord.objects.filter(pk=self.record_id, status=Status.RUNNING).update(
                    heartbeat_at=timezone.now()
                )
        except Exception:
            logger.exception("heartbeat of sync %s failed", self.record_id)
        finally:
            connection.close()


def run_sync(record_id: int, *, stale_before=None) -> str:
    """Run one attempt of the sync; return the record's status afterwards (or why nothing ran)."""
    claimed = _claim(record_id, stale_before=stale_before)
    if claimed == "busy":
        # Another sync of this repository is running: wait our turn without holding the worker.
        _enqueue_now(record_id, delay_s=TURN_WAIT_S)
        return "waiting"
    if isinstance(claimed, str):
        return claimed
    record = claimed
    _announce(record)
    config = github_config()
    credits = budget.WriteCredits()
    client = GitHubClient(config=config, before_write=credits.before_write)
    started = time.monotonic()
    if record.attempts > config.max_attempts:  # a dead worker's record taken back after its last attempt
        lost = GitHubError("the worker running the last attempt was lost", reason="worker_lost", retryable=False)
        return _fail(record, client, started, exc=lost)
    try:
        files = plan_files(list(record.project.files.order_by("path").values_list("path", "content")))
        with _Heartbeat(record.pk, config.heartbeat_s):
            outcome = sync_folder(
                client=client,
                owner=record.repository_owner,
                name=record.repository_name,
                branch=record.branch,
                folder=record.path,
                files=files,
                message=f"Sync generated files of project {record.project.name} (sync #{record.pk})",
                reserve=credits.reserve,
            )
    except BadPath as exc:
        return _fail(record, client, started, exc=GitHubError(str(exc), reason="bad_path", retryable=False))
    except GitHubError as exc:
        return _fail(record, client, started, exc=exc)
    except Exception as exc:  # a bug: record it, never leave the row running
        logger.exception("sync %s failed unexpectedly", record.pk)
        return _fail(record, client, started, exc=GitHubError(f"internal error: {type(exc).__name__}: {exc}",
                                                              reason="internal", retryable=False))  # fmt: skip
    now = timezone.now()
    _finish(
        record,
        client,
        started,
        status=outcome.status,
        base_sha=outcome.base_sha,
        tree_sha=outcome.tree_sha,
        commit_sha=outcome.commit_sha,
        files_count=outcome.files,
        bytes_count=outcome.bytes,
        finished_at=now,
    )
    return outcome.status


def _enqueue_now(record_id: int, *, delay_s: float) -> None:
    with transaction.atomic():
        _enqueue(record_id, run_after=timezone.now() + timedelta(seconds=delay_s))


def backoff_s(attempt: int, base_s: float) -> float:
    """Exponential backoff with full jitter (AWS's "full jitter"), capped at an hour."""
    return random.uniform(0, min(MAX_BACKOFF_S, base_s * 2 ** max(0, attempt - 1)))  # noqa: S311


def _fail(record: GitHubSyncRecord, client: GitHubClient, started: float, *, exc: GitHubError) -> str:
    config = github_config()
    now = timezone.now()
    entry = {
        "at": now.isoformat(),
        "attempt": record.attempts,
        "class": type(exc).__name__,
        "reason": exc.reason,
        "status": exc.status,
        "request_id": exc.request_id,
        "message": exc.message,
    }
    fields = {
        "last_error": exc.message,
        "last_error_class": f"{type(exc).__name__}:{exc.reason}",
        "last_error_status": exc.status,
        "last_error_request_id": exc.request_id,
        "error_history": [*record.error_history, entry][-MAX_HISTORY:],
    }
    attempts = record.attempts
    if exc.reason == "write_budget":
        attempts -= 1  # waiting for the budget is not an attempt
        fields["attempts"] = attempts
    if exc.retryable and attempts < config.max_attempts:
        delay = exc.retry_after_s if exc.retry_after_s is not None else backoff_s(attempts, config.retry_base_s)
        retry_at = now + timedelta(seconds=delay)
        with transaction.atomic():
            _finish(record, client, started, status=Status.RETRYING, next_retry_at=retry_at, **fields)
            _enqueue(record.pk, run_after=retry_at)
        metrics.github_sync_retries.labels(exc.reason).inc()
        return Status.RETRYING
    _finish(record, client, started, status=Status.FAILED, finished_at=now, **fields)
    return Status.FAILED


def _finish(record: GitHubSyncRecord, client: GitHubClient, started: float, **fields) -> None:
    fields.update(
        duration_ms=int((time.monotonic() - started) * 1000),
        api_calls=(record.api_calls or 0) + client.stats.calls,
        rate_limit_remaining=client.stats.rate_limit.remaining,
        rate_limit_reset_at=client.stats.rate_limit.reset_at,
        heartbeat_at=None,
        updated_at=timezone.now(),
    )
    for name, value in fields.items():
        setattr(record, name, value)
    with transaction.atomic():
        GitHubSyncRecord.objects.filter(pk=record.pk).update(**fields)
        _announce(record)
    metrics.github_syncs.labels(record.status).inc()
    metrics.github_sync_duration_seconds.observe(fields["duration_ms"] / 1000)
    logger.info("sync %s %s", record.pk, record.status, extra={"outcome": str(record.status), "sync_id": record.pk})


def stale_records(*, now=None):
    now = now or timezone.now()
    threshold = now - timedelta(seconds=github_config().stale_after_s)
    return GitHubSyncRecord.objects.filter(Q(heartbeat_at__lt=threshold) | Q(heartbeat_at__isnull=True),
                                           status=Status.RUNNING), threshold  # fmt: skip


def sweep_stale_syncs() -> int:
    """Take back the running records of dead workers (their heartbeat is stale) and finish them here."""
    records, threshold = stale_records()
    done = 0
    for record_id in list(records.values_list("pk", flat=True)[:100]):
        logger.warning("sync %s: its worker stopped beating; taking it back", record_id)
        status = run_sync(record_id, stale_before=threshold)
        done += status not in ("busy", "not claimable", "gone", "waiting")
    return done


def retry_candidates(*, project_id: int | None = None):
    """Failed records and stale running ones (what ``retry_failed_syncs`` re-enqueues)."""
    stale, _ = stale_records()
    failed = GitHubSyncRecord.objects.filter(status=Status.FAILED)
    records = failed | stale
    if project_id is not None:
        records = records.filter(project_id=project_id)
    return records.order_by("pk")


def retry(records) -> int:
    """Re-enqueue these records: failed ones start a new round of attempts; stale ones are taken back."""
    count = 0
    for record in records:
        with transaction.atomic():
            changed = GitHubSyncRecord.objects.filter(
                Q(status=Status.FAILED) | Q(status=Status.RUNNING), pk=record.pk
            ).update(status=Status.RETRYING, attempts=0, next_retry_at=timezone.now(), heartbeat_at=None,
                     finished_at=None, updated_at=timezone.now())  # fmt: skip
            if changed:
                _enqueue(record.pk)
                count += 1
    return count
