"""The sync as a task on Django's tasks framework (django-tasks-db: ``manage.py db_worker``)."""

from __future__ import annotations

from django.tasks import task

from integrations.github import services


@task
def run_github_sync(record_id: int) -> str:
    """One attempt of a sync; a retry is a new task enqueued with ``run_after``."""
    return services.run_sync(record_id)
