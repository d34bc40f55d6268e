"""Send an operator's notice to one user's live connections, or to everyone connected."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from accounts.models import User
from realtime.models import WebSocketSession
from realtime.notifications import send_to_everyone_now, send_to_user_now

MAX_TEXT = 2000


class Command(BaseCommand):
    help = (
        "Send a notice (--text) to every live WebSocket connection of one user (--user EMAIL) or of everyone. "
        "Changes no data. Reaches the web processes through the channel layer, so it needs REDIS_URL."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--text", required=True, help=f"the notice, at most {MAX_TEXT} characters")
        parser.add_argument("--user", metavar="EMAIL", help="only this user's connections (default: everyone)")

    def handle(self, *args, text: str, user: str | None, **options) -> None:
        text = text.strip()
        if not text or len(text) > MAX_TEXT:
            raise CommandError(f"--text must be 1 to {MAX_TEXT} characters")
        if settings.CHANNEL_LAYERS["default"]["BACKEND"].endswith("InMemoryChannelLayer"):
            raise CommandError("the in-memory channel layer reaches no server process: set REDIS_URL")
        event = {"type": "notice", "text": text}
        live = WebSocketSession.objects.filter(disconnected_at__isnull=True)
        try:
            live.exists()
        except DatabaseError as exc:
            raise CommandError(
                f"cannot read the WebSocket sessions ({exc}): is DATABASE_URL the migrated database?"
            ) from exc
        if user:
            target = User.objects.filter(email__iexact=user.strip()).first()
            if target is None:
                raise CommandError(f"no user with the email {user!r}")
            self._send(send_to_user_now, target, event)
            count = live.filter(user=target).count()
            self.stdout.write(self.style.SUCCESS(f"Notice sent to {target.email} ({count} live connection(s))"))
        else:
            self._send(send_to_everyone_now, event)
            self.stdout.write(self.style.SUCCESS(f"Notice sent to everyone ({live.count()} live connection(s))"))

    def _send(self, send, *args) -> None:
        try:
            send(*args)
        except Exception as exc:
            raise CommandError(f"could not reach the channel layer (REDIS_URL): {exc}") from exc
