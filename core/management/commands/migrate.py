"""``migrate``, made safe to run while the application writes (PostgreSQL).

- One run at a time: an advisory lock; a second run waits for it
  (``MIGRATION_ADVISORY_LOCK_WAIT_S``), then stops with a message naming it.
- Every statement waits at most ``MIGRATION_LOCK_TIMEOUT_MS`` for a lock (the
  schema editor sets it), so writers never queue behind DDL for longer.
- A migration that hit that timeout was rolled back whole (or, if it is not
  atomic, is safe to re-run); it is retried with backoff, up to
  ``MIGRATION_LOCK_RETRIES`` times, then migrate fails naming the sessions
  that hold the locks. Running it again completes.
- The foreign keys a migration added ``NOT VALID`` are validated once it is
  recorded, each in a transaction of its own (still under the lock timeout),
  so that no writer waits while existing rows are checked. Foreign keys left
  NOT VALID (a validation that failed or was interrupted) are validated at the
  end of every run. Rows that break one stop migrate with a message naming it;
  the constraint stays NOT VALID until a run after the fix validates it.
- The tables the run changed are ANALYZEd at the end, so the planner knows the
  new indexes and columns at once (autovacuum would take its time).
"""

from __future__ import annotations

import time

from django.apps import apps
from django.conf import settings
from django.core.management.base import CommandError
from django.core.management.commands.migrate import Command as DjangoMigrateCommand
from django.db import OperationalError, connections
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.operations.base import Operation

from core.db.backends.postgresql.schema import ForeignKeyViolated
from core.db.locks import LockBusy, advisory_lock, lock_holders
from core.db.operations import MigrationBlocked

LOCK_NOT_AVAILABLE = "55P03"


def _is_lock_timeout(exc: BaseException) -> bool:
    while exc is not None:
        if getattr(exc, "sqlstate", None) == LOCK_NOT_AVAILABLE:
            return True
        exc = exc.__cause__
    return False


def _migrated_tables(connection) -> set[str]:
    """The tables the migrations made, and those of the installed models (with their many-to-many tables)."""
    state = MigrationLoader(connection, ignore_no_migrations=True).project_state()
    made = {model.options.get("db_table") or f"{app}_{name}" for (app, name), model in state.models.items()}
    return made | set(connection.introspection.django_table_names(only_existing=True))


def _changed_tables(connection, migrations: list) -> list[str]:
    """The existing tables the operations of ``migrations`` touched; every table of the app for RunSQL/RunPython."""
    state = MigrationLoader(connection, ignore_no_migrations=True).project_state()
    by_app: dict[str, dict[str, str]] = {}
    for (app, name), model in state.models.items():
        by_app.setdefault(app, {})[name] = model.options.get("db_table") or f"{app}_{name}"
    tables: set[str] = set()
    for migration in migrations:
        app_tables = by_app.get(migration.app_label, {})
        for operation in _flatten(migration.operations):
            name = getattr(operation, "model_name_lower", None) or getattr(operation, "name_lower", None)
            if name in app_tables:
                tables.add(app_tables[name])
            elif not getattr(operation, "reduces_to_sql", True) or type(operation).__name__ in ("RunSQL", "RunPython"):
                tables.update(app_tables.values())
    existing = set(connection.introspection.table_names())
    return sorted(tables & existing)


def _flatten(operations: list[Operation]) -> list[Operation]:
    flat = []
    for operation in operations:
        flat.extend(_flatten(getattr(operation, "database_operations", []) or []) or [operation])
    return flat


class Command(DjangoMigrateCommand):
    help = DjangoMigrateCommand.help + (
        " On PostgreSQL: one run at a time, short lock waits, retried; new foreign keys validated after their"
        " transaction, and any left NOT VALID at the end."
    )

    def handle(self, *args, **options):
        try:
            return self._handle(*args, **options)
        except MigrationBlocked as exc:
            raise CommandError(f"Migration stopped, nothing of it applied: {exc}") from exc
        except ForeignKeyViolated as exc:
            raise CommandError(f"Migrations applied so far are recorded, but the {exc}") from exc

    def _handle(self, *args, **options):
        connection = connections[options["database"]]
        if connection.vendor != "postgresql":
            return super().handle(*args, **options)
        self._connection = connection
        try:
            with advisory_lock(connection, "migrate", wait_s=settings.MIGRATION_ADVISORY_LOCK_WAIT_S):
                return self._handle_with_retries(connection, *args, **options)
        except LockBusy as exc:
            raise CommandError(f"Not migrating: {exc}. Wait for it to finish, then run migrate again.") from exc

    def _handle_with_retries(self, connection, *args, **options):
        retries = settings.MIGRATION_LOCK_RETRIES
        changes = not (options["plan"] or options["check_unapplied"] or options["fake"])
        self._applied = []
        for attempt in range(retries + 1):
            connection.pending_fk_validations = []
            try:
                result = super().handle(*args, **options)
                if changes:
                    self._validate_foreign_keys(connection, tables=_migrated_tables(connection))
                    self._analyze(connection, _changed_tables(connection, self._applied))
                return result
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
            finally:
                connection.pending_fk_validations = None

    def migration_progress_callback(self, action, migration=None, fake=False) -> None:
        super().migration_progress_callback(action, migration, fake)
        connection = getattr(self, "_connection", None)
        pending = connection.pending_fk_validations if connection is not None else None
        applied = getattr(self, "_applied", None)  # set on PostgreSQL only
        if action in ("apply_success", "unapply_success") and applied is not None and not fake:
            applied.append(migration)
        if action in ("apply_success", "unapply_success") and pending:
            names = pending.copy()
            pending.clear()
            self._validate_foreign_keys(connection, names=names)

    def _validate_foreign_keys(self, connection, *, names=None, tables=None) -> None:
        """Validate the NOT VALID foreign keys named, or those left on the tables given."""
        with connection.schema_editor(atomic=False) as editor:
            for table, name in editor.not_valid_foreign_keys(names, tables):
                if self.verbosity >= 1:
                    self.stdout.write(f"  Validating foreign key {name} on {table}...", ending="")
                    self.stdout.flush()
                started = time.monotonic()
                editor.validate_foreign_key(table, name)
                if self.verbosity >= 1:
                    elapsed = f" ({time.monotonic() - started:.3f}s)" if self.verbosity > 1 else ""
                    self.stdout.write(self.style.SUCCESS(" OK") + elapsed)

    def _analyze(self, connection, tables: list[str]) -> None:
        """Fresh planner statistics for the tables the run changed (ANALYZE takes no lock that blocks writers)."""
        if not tables:
            return
        started = time.monotonic()
        with connection.cursor() as cursor:
            for table in tables:
                cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")
        if self.verbosity >= 1:
            self.stdout.write(f"  Analyzed {len(tables)} changed table(s) in {time.monotonic() - started:.2f}s")
        if self.verbosity >= 2:
            self.stdout.write("    " + ", ".join(tables))
