"""Settle stale WebSocket sessions and those of dead server processes; delete old closed ones."""

from __future__ import annotations

import json
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from realtime import servers, sessions
from realtime.conf import realtime_config
from realtime.models import RealtimeServer


class Command(BaseCommand):
    help = (
        "Dry run unless --execute. Settles open WebSocket sessions of server processes silent for three beats "
        "(reason 'server lost') and those whose heartbeat is older than --stale-after seconds (reason 'stale'); "
        "deletes sessions closed more than --retention-days ago and the registry rows of servers stopped as long. "
        "Prints counts; works in batches."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--execute", action="store_true", help="change the data (default: count only)")
        parser.add_argument("--stale-after", type=float, default=None, metavar="S", help="default: 5 heartbeat writes")
        parser.add_argument("--retention-days", type=float, default=30.0, metavar="D")
        parser.add_argument("--format", choices=["text", "json"], default="text")

    def handle(self, *args, execute: bool, stale_after: float | None, retention_days: float, **options) -> None:
        config = realtime_config()
        stale_after = stale_after if stale_after is not None else max(300.0, 5 * config.heartbeat_write_s)
        if stale_after < 2 * config.heartbeat_write_s:
            raise CommandError(
                f"--stale-after {stale_after:g} would settle live connections: heartbeats are written every "
                f"{config.heartbeat_write_s:g} s (REALTIME_HEARTBEAT_WRITE_S); use at least twice that"
            )
        if retention_days < 0:
            raise CommandError("--retention-days must not be negative")
        cutoff = timezone.now() - timedelta(seconds=config.server_dead_after_s)
        if execute:
            lost = len(servers.sweep(dead_after_s=config.server_dead_after_s))
        else:
            lost = RealtimeServer.objects.filter(stopped_at__isnull=True, last_beat_at__lt=cutoff).count()
        counts = sessions.cleanup(stale_after_s=stale_after, retention_days=retention_days, execute=execute)
        old_servers = RealtimeServer.objects.filter(stopped_at__lt=timezone.now() - timedelta(days=retention_days))
        forgotten = old_servers.delete()[0] if execute else old_servers.count()
        result = {
            "execute": execute,
            "lost_servers": lost,
            "stale_sessions": counts.stale,
            "deleted_sessions": counts.deleted,
            "deleted_servers": forgotten,
        }
        if options["format"] == "json":
            self.stdout.write(json.dumps(result))
            return
        verb = "" if execute else "would be "
        self.stdout.write(
            f"{lost} lost server(s) {verb}swept; {counts.stale} stale session(s) {verb}settled; "
            f"{counts.deleted} closed session(s) and {forgotten} stopped server(s) {verb}deleted"
        )
        if not execute:
            self.stdout.write("Dry run: nothing changed (--execute to apply)")
        else:
            self.stdout.write(self.style.SUCCESS("Done"))
