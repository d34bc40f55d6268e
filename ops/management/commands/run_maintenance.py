"""Settle stale WebSocket sessions, clear expired token hashes, prune old task results and sync records, ANALYZE."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ops import maintenance


class Command(BaseCommand):
    help = (
        "Dry run unless --execute (then it changes the data). Jobs: settles open WebSocket sessions whose heartbeat "
        "stopped and deletes closed ones past WEBSOCKET_SESSION_RETENTION_DAYS; clears the access-token hashes of "
        "expired tokens; deletes finished task results past TASK_RESULT_RETENTION_DAYS and finished sync records "
        "past SYNC_RECORD_RETENTION_DAYS (each project's latest kept); ANALYZEs the tables whose statistics are "
        "stale (PostgreSQL). Each in batches; one line per job. A failed job makes the command exit non-zero "
        "after the others ran."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--execute", action="store_true", help="change the data (default: count only)")
        parser.add_argument("--job", action="append", choices=list(maintenance.JOBS), help="only this job (repeat)")
        parser.add_argument("--batch", type=int, default=maintenance.BATCH, help="rows per transaction")
        parser.add_argument("--format", choices=["text", "json"], default="text")

    def handle(self, *args, execute: bool, job: list[str] | None, batch: int, **options) -> None:
        if batch < 1:
            raise CommandError("--batch must be at least 1")
        results = maintenance.run_jobs(execute=execute, only=job, batch=batch)
        failed = [r for r in results if r.error]
        if options["format"] == "json":
            self.stdout.write(
                json.dumps(
                    {
                        "execute": execute,
                        "jobs": {
                            r.name: {"count": r.count, "detail": r.detail, "error": r.error, "items": r.items}
                            for r in results
                        },
                    }
                )
            )
        else:
            verb = "done" if execute else "would do"
            for r in results:
                if r.error:
                    self.stdout.write(self.style.ERROR(f"{r.name}: FAILED: {r.error}"))
                else:
                    self.stdout.write(f"{r.name}: {r.count} ({verb}: {r.detail})")
                    if options["verbosity"] >= 2:
                        for item in r.items:
                            self.stdout.write(f"  {item}")
            if not execute:
                self.stdout.write("Dry run: nothing changed (--execute to apply)")
        if failed:
            raise CommandError(f"{len(failed)} maintenance job(s) failed: {', '.join(r.name for r in failed)}")
