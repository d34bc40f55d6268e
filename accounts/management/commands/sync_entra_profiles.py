"""Sync every linked user's profile from Microsoft Graph with the app's own credentials."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accounts.entra.graph import GraphError, sync_profile
from accounts.entra.signin import build_app
from accounts.models import User


class Command(BaseCommand):
    help = (
        "Fetch name, company, department and photo from Microsoft Graph for every user linked to Entra, "
        "with the app's own credentials (client credentials). Reports each failure; exits non-zero if any."
    )

    def add_arguments(self, parser):
        parser.add_argument("--email", action="append", help="Only these users (repeatable).")

    def handle(self, *args, email=None, **options):
        from accounts.entra.config import entra_config

        config = entra_config()
        result = build_app(config=config, app_only=True).acquire_token_for_client(
            scopes=[f"{config.graph_url}/.default"]
        )
        if "access_token" not in result:
            raise CommandError(f"No app token for Graph: {result.get('error')}: {result.get('error_description', '')}")
        users = User.objects.linked_to_entra().order_by("pk")
        if email:
            users = users.filter(email__in=email)
        synced, failures = 0, []
        for user in users.iterator(chunk_size=500):
            try:
                changed = sync_profile(user=user, token=result["access_token"], app_only=True)
            except (GraphError, OSError) as exc:
                failures.append((user, str(exc)))
                self.stderr.write(f"FAILED {user.email} (#{user.pk}): {exc}")
                continue
            synced += 1
            if options["verbosity"] >= 2:
                self.stdout.write(f"{user.email}: {', '.join(changed) or 'unchanged'}")
        self.stdout.write(f"Synced {synced} profile(s); {len(failures)} failure(s).")
        if failures:
            raise CommandError(f"{len(failures)} profile(s) could not be synced")
