"""Re-enqueue failed GitHub syncs and those a dead worker left running."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from integrations.github import services


class Command(BaseCommand):
    help = (
        "List failed GitHub sync records and running ones whose heartbeat is stale (their worker died); with "
        "--execute, re-enqueue them (each gets a new round of attempts). Dry run by default."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", type=int, help="Only this project's records.")
        parser.add_argument("--execute", action="store_true", help="Re-enqueue them (default: only list).")

    def handle(self, *args, project, execute, **options):
        if not settings.GITHUB_ENABLED:
            raise CommandError("The GitHub integration is off: set GITHUB_APP_ID and the other GITHUB_APP_* values")
        records = list(services.retry_candidates(project_id=project))
        for record in records:
            self.stdout.write(f"#{record.pk} project {record.project_id} {record.repository}: {record.status} "
                              f"({record.last_error or 'worker lost'})")  # fmt: skip
        if not execute:
            self.stdout.write(f"{len(records)} sync(s) would be re-enqueued (dry run; --execute to do it)")
            return
        count = services.retry(records)
        self.stdout.write(self.style.SUCCESS(f"{count} sync(s) re-enqueued"))
