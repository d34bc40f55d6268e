"""Sync a project's generated files to its GitHub repository (and set the mapping, when given)."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from integrations.github import services
from integrations.github.sync import BadPath
from integrations.models import GitHubRepositoryMapping, GitHubSyncRecord
from projects.models import Project


class Command(BaseCommand):
    help = (
        "Enqueue a sync of PROJECT_ID's generated files to its GitHub repository and print the sync record's id; "
        "--repo/--branch/--path set the project's mapping first. With --wait, wait for the sync to end and exit 0 "
        "for succeeded or unchanged, non-zero for failed or a timeout. Needs a running `manage.py db_worker`."
    )

    def add_arguments(self, parser):
        parser.add_argument("project_id", type=int)
        parser.add_argument("--repo", help="OWNER/NAME")
        parser.add_argument("--branch")
        parser.add_argument("--path", help="Folder in the repository (empty: the whole repository).")
        parser.add_argument("--wait", action="store_true", help="Wait for a final state.")
        parser.add_argument("--timeout", type=float, default=300.0, help="Seconds --wait waits (default 300).")

    def handle(self, *args, project_id, repo, branch, path, wait, timeout, **options):
        if not settings.GITHUB_ENABLED:
            raise CommandError("The GitHub integration is off: set GITHUB_APP_ID and the other GITHUB_APP_* values")
        if timeout <= 0:
            raise CommandError("--timeout must be positive")
        project = Project.objects.filter(pk=project_id).first()
        if project is None:
            raise CommandError(f"No project with id {project_id}")
        mapping = GitHubRepositoryMapping.objects.filter(project=project).first()
        if repo or branch or path is not None:
            if repo is None and mapping is None:
                raise CommandError("The project has no mapping yet: give --repo OWNER/NAME")
            owner, _, name = (repo or f"{mapping.repository_owner}/{mapping.repository_name}").partition("/")
            try:
                services.set_mapping(
                    project=project,
                    owner=owner,
                    name=name,
                    branch=branch or (mapping.branch if mapping else "main"),
                    path=path if path is not None else (mapping.path if mapping else ""),
                )
            except (ValueError, BadPath) as exc:
                raise CommandError(str(exc)) from exc
        elif mapping is None:
            raise CommandError("The project has no mapping: give --repo OWNER/NAME (and --branch, --path)")
        record = services.request_sync(project=project)
        self.stdout.write(f"Sync #{record.pk} of project {project.pk} to {record.repository}@{record.branch} queued")
        if not wait:
            return
        deadline = time.monotonic() + timeout
        while True:
            record.refresh_from_db()
            if record.is_final:
                break
            if time.monotonic() >= deadline:
                raise CommandError(f"Sync #{record.pk} is still {record.status} after {timeout:g} s")
            time.sleep(0.1)
        line = f"Sync #{record.pk}: {record.status}"
        if record.commit_sha:
            line += f" at commit {record.commit_sha}"
        if record.status == GitHubSyncRecord.Status.FAILED:
            raise CommandError(f"{line}: {record.last_error}")
        self.stdout.write(self.style.SUCCESS(line))
