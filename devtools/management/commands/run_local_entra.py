"""Serve the local stand-in for Microsoft Entra ID and Graph (development only)."""

from __future__ import annotations

import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from devtools.local_entra import LocalEntra, LocalUser

DEMO_USERS = [
    ("0f1e2d3c-0000-4000-8000-000000000001", "user1@example.com", "User One", [], "Contoso", "Platform"),
    ("0f1e2d3c-0000-4000-8000-000000000002", "user2@example.com", "User Two", ["Platform.Staff"], "Contoso", "Ops"),
    ("0f1e2d3c-0000-4000-8000-000000000003", "admin@example.com", "Ada Admin", ["Platform.Admin"], "Contoso", "IT"),
    ("0f1e2d3c-0000-4000-8000-000000000004", "shared.mailbox@example.com", "Shared Mailbox", [], "Contoso", ""),
    ("0f1e2d3c-0000-4000-8000-000000000005", "newcomer@example.com", "New Comer", [], "Contoso", "Sales"),
]


class Command(BaseCommand):
    requires_system_checks: list[str] = []  # serves no database
    help = (
        "Serve a local Entra ID (v2.0 endpoints, signed tokens, keys) and Graph (/v1.0/me, photo) over HTTPS on "
        "127.0.0.1, with a test CA, for trying sign-in on a machine without Microsoft. Needs DEBUG and ENTRA_LOCAL."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=settings.ENTRA_LOCAL_PORT)

    def handle(self, *args, port: int, **options):
        if not (settings.DEBUG and settings.ENTRA_LOCAL):
            raise CommandError("The local Entra runs only with DEBUG=true and ENTRA_LOCAL=true")
        users = [
            LocalUser(
                oid=oid,
                tid=settings.ENTRA_TENANT_ID,
                email=email,
                name=name,
                roles=roles,
                company_name=company,
                department=department or None,
            )
            for oid, email, name, roles, company, department in DEMO_USERS
        ]
        server = LocalEntra(
            cert_dir=settings.ENTRA_LOCAL_DIR,
            users=users,
            tenant_id=settings.ENTRA_TENANT_ID,
            client_id=settings.ENTRA_CLIENT_ID,
            client_secret=settings.ENTRA_CLIENT_SECRET,
            api_audience=settings.ENTRA_API_AUDIENCE,
            port=port,
        ).start()
        self.stdout.write(f"Local Entra ID on {server.url} (tenant {settings.ENTRA_TENANT_ID}); CA: {server.ca_path}")
        self.stdout.flush()
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
