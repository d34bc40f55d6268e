"""Serve the local stand-in for GitHub (development only)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from devtools.local_github import GitHubUser, LocalGitHub

DEMO_USER = GitHubUser(login="demo-user", id=1001, name="Demo User", email="demo-user@example.com")
DEMO_REPO = ("demo", "infrastructure")


class Command(BaseCommand):
    requires_system_checks: list[str] = []  # serves no database
    help = (
        "Serve a local GitHub (the REST API the sync uses, the App's user authorization) over HTTP on 127.0.0.1, "
        "with a demo user and the empty repository demo/infrastructure (App installed). Writes the App's private "
        "key to GITHUB_APP_PRIVATE_KEY_FILE when that file is missing. State lives in memory: a restart starts "
        "over. Needs DEBUG and GITHUB_LOCAL."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=settings.GITHUB_LOCAL_PORT)

    def handle(self, *args, port: int, **options):
        if not (settings.DEBUG and settings.GITHUB_LOCAL):
            raise CommandError("The local GitHub runs only with DEBUG=true and GITHUB_LOCAL=true")
        key_file = Path(settings.GITHUB_APP_PRIVATE_KEY_FILE)
        try:
            server = LocalGitHub(
                port=port,
                app_id=settings.GITHUB_APP_ID,
                client_id=settings.GITHUB_APP_CLIENT_ID,
                client_secret=settings.GITHUB_APP_CLIENT_SECRET,
                private_key=key_file.read_bytes() if key_file.is_file() else None,
                users=[DEMO_USER],
            )
        except (ValueError, TypeError) as exc:
            raise CommandError(f"GITHUB_APP_PRIVATE_KEY_FILE {key_file} is not an RSA private key in PEM") from exc
        if not key_file.is_file():
            server.write_private_key(key_file)
        server.create_repo(*DEMO_REPO, empty=True)
        server.start()
        self.stdout.write(f"Local GitHub on {server.url} (App {server.app_id}, client {server.client_id})")
        self.stdout.write(f"  App private key: {key_file}")
        self.stdout.write(f"  user: {DEMO_USER.login}; repository: {'/'.join(DEMO_REPO)} (empty, App installed)")
        self.stdout.flush()
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        try:
            stop.wait()
        finally:
            server.stop()
