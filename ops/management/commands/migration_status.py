"""How far the move to Entra has come: users in each state, refused links by reason, links per day."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandParser

from ops.selectors import migration_status


class Command(BaseCommand):
    help = (
        "Reads only. Prints the users linked to Entra, flagged and not signed in since, inactive, the refused links "
        "still to resolve (by reason), and the users linked per day over --days."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=30, help="links per day over this many days (default 30)")
        parser.add_argument("--format", choices=["text", "json"], default="text")

    def handle(self, *args, days: int, **options) -> None:
        status = migration_status(days=days)
        if options["format"] == "json":
            self.stdout.write(json.dumps(status.as_dict()))
            return
        share = f" ({100 * status.linked / status.total:.1f} %)" if status.total else ""
        self.stdout.write(f"users: {status.total}")
        self.stdout.write(f"linked to Entra: {status.linked}{share}")
        self.stdout.write(f"flagged, not signed in since: {status.flagged}")
        self.stdout.write(f"inactive: {status.inactive}")
        self.stdout.write(f"conflicts to resolve: {status.conflicts}")
        for reason, count in status.refused_by_reason.items():
            if count:
                self.stdout.write(f"  refused ({reason}): {count}")
        if status.linked_per_day:
            self.stdout.write(f"linked per day (last {days} days):")
            for day, count in status.linked_per_day:
                self.stdout.write(f"  {day.isoformat()}: {count}")
