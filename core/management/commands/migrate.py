"""``migrate``, made safe to run while the application writes (PostgreSQL).

- One run at a time: an advisory lock; a second run waits for it
  (``MIGRATION_ADVISORY_LOCK_WAIT_S``), then stops with a message naming it.
- Every statement waits at most ``MIGRATION_LOCK_TIMEOUT_MS`` for a lock (the
  schema editor sets it), so writers never queue behind DDL for longer.
- A migration that hit that timeout was rolled back whole (or, if it is not
  atomic, is safe to re-run); it is retried with backoff, up to
  ``MIGRATION_LOCK_RETRIES`` times, then migrate fails naming the sessions
  that hold the locks. Running it again completes.
"""

from __future__ import annotations

import time

from django.apps import apps
from django.conf import settings
from django.core.management.base import CommandError
from django.core.management.commands.migrate import Command as DjangoMigrateCommand
from django.db import OperationalError, connections

from core.db.locks import LockBusy, advisory_lock, lock_holders
from core.db.operations import MigrationBlocked

LOCK_NOT_AVAILABLE = "55P03"


def _is_lock_timeout(exc: BaseException) -> bool:
    while exc is not None:
        if getattr(exc, "sqlstate", None) == LOCK_NOT_AVAILABLE:
            return True
        exc = exc.__cause__
    return False


class Command(DjangoMigrateCommand):
    help = DjangoMigrateCommand.help + " On PostgreSQL: one run at a time, short lock waits, retried."

    def handle(self, *args, **options):
        try:
            return self._handle(*args, **options)
        except MigrationBlocked as exc:
            raise CommandError(f"Migration stopped, nothing of it applied: {exc}") from exc

    def _handle(self, *args, **options):
        connection = connections[options["database"]]
        if connection.vendor != "postgresql":
            return super().handle(*args, **options)
        try:
            with advisory_lock(connection, "migrate", wait_s=settings.MIGRATION_ADVISORY_LOCK_WAIT_S):
                return self._handle_with_retries(connection, *args, **options)
        except LockBusy as exc:
            raise CommandError(f"Not migrating: {exc}. Wait for it to finish, then run migrate again.") from exc

    def _handle_with_retries(self, connection, *args, **options):
        retries = settings.MIGRATION_LOCK_RETRIES
        for attempt in range(retries + 1):
            try:
                return super().handle(*args, **options)
            except OperationalError as exc:
                if not _is_lock_timeout(exc):
                    raise
                holders = lock_holders(connection, [m._meta.db_table for m in apps.get_models()])
                if attempt == retries:
                    raise CommandError(
                        f"migrate gave up after {retries + 1} attempts: a lock was not granted within "
                        f"{settings.MIGRATION_LOCK_TIMEOUT_MS} ms. Blocking session(s): "
                        + ("; ".join(holders) or "none left (retry now)")
                        + ". Migrations applied so far are recorded; run migrate again to finish."
                    ) from exc
                delay = min(0.25 * 2**attempt, 5.0)
                self.stderr.write(
                    f"\nLock not granted within {settings.MIGRATION_LOCK_TIMEOUT_MS} ms "
                    f"({holders[0] if holders else 'holder gone'}); retrying in {delay:.2f}s "
                    f"[{attempt + 1}/{retries}]"
                )
                time.sleep(delay)
