"""Sync every linked user's profile from Microsoft Graph with the app's own credentials."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accounts.entra.graph import AppTokenError, sync_all_profiles


class Command(BaseCommand):
    help = (
        "Fetch name, company, department and photo from Microsoft Graph for every user linked to Entra, "
        "with the app's own credentials (client credentials). Reports each failure; exits non-zero if any."
    )

    def add_arguments(self, parser):
        parser.add_argument("--email", action="append", help="Only these users (repeatable).")

    def handle(self, *args, email=None, **options):
        def report(user, changed, error):
            if error:
                self.stderr.write(f"FAILED {user.email} (#{user.pk}): {error}")
            elif options["verbosity"] >= 2:
                self.stdout.write(f"{user.email}: {', '.join(changed) or 'unchanged'}")

        try:
            synced, failures = sync_all_profiles(emails=email, on_result=report)
        except AppTokenError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Synced {synced} profile(s); {len(failures)} failure(s).")
        if failures:
            raise CommandError(f"{len(failures)} profile(s) could not be synced")
