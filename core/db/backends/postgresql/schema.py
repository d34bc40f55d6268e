"""A schema editor that keeps migrations from blocking the application.

Every statement a migration runs waits at most ``MIGRATION_LOCK_TIMEOUT_MS``
for a lock (a writer queued behind a waiting ``ALTER TABLE`` waits as long);
``migrate`` retries a migration that timed out.

New foreign keys are added ``NOT VALID`` and validated only after the
transaction that added them has committed, each ``VALIDATE CONSTRAINT`` on its
own. Adding takes a SHARE ROW EXCLUSIVE lock, which blocks writers, for a
catalog change; validating scans the table under SHARE UPDATE EXCLUSIVE, which
does not block them. Validated in the same transaction, the first lock would
be held through the whole scan.

``migrate`` takes the validations over (``connection.pending_fk_validations``)
and runs them once the migration is recorded, so that a failure leaves a
recorded migration and a NOT VALID constraint that the next run validates. A
schema editor used on its own validates on exit. Collecting SQL (sqlmigrate),
the validations are kept apart, in ``deferred_validations``, for printing
after the ``COMMIT``.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.db import DatabaseError, IntegrityError
from django.db.backends.ddl_references import Statement
from django.db.backends.postgresql.schema import DatabaseSchemaEditor as PostgresSchemaEditor


class ForeignKeyViolated(Exception):
    """Existing rows break a foreign key being validated; it stays NOT VALID."""

    def __init__(self, table: str, name: str, detail: str) -> None:
        self.table, self.name, self.detail = table, name, detail
        super().__init__(
            f"foreign key {name} on {table} stays NOT VALID: existing rows break it ({detail}). "
            f"Fix or delete those rows, then run migrate again: it validates the constraint."
        )


class DatabaseSchemaEditor(PostgresSchemaEditor):
    sql_create_fk = PostgresSchemaEditor.sql_create_fk + " NOT VALID"
    sql_validate_fk = "ALTER TABLE %(table)s VALIDATE CONSTRAINT %(name)s"
    # An inline REFERENCES cannot be NOT VALID: add the constraint separately.
    sql_create_column_inline_fk = None

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Foreign keys added NOT VALID, to validate after the transaction: names when
        # executing, VALIDATE CONSTRAINT statements when collecting SQL.
        self.deferred_validations: list[str | Statement] = []

    @property
    def sql_set_lock_timeout(self) -> str:
        return f"SET lock_timeout = {int(settings.MIGRATION_LOCK_TIMEOUT_MS)}"

    def __enter__(self) -> DatabaseSchemaEditor:
        self._previous_lock_timeout = None
        if not self.collect_sql:
            with self.connection.cursor() as cursor:
                cursor.execute("SHOW lock_timeout")
                self._previous_lock_timeout = cursor.fetchone()[0]
                cursor.execute(self.sql_set_lock_timeout)
        return super().__enter__()

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        try:
            super().__exit__(exc_type, exc_value, traceback)  # runs the deferred SQL, commits
            if exc_type is None and not self.collect_sql and self.deferred_validations:
                names, self.deferred_validations = self.deferred_validations, []
                pending = self.connection.pending_fk_validations
                if pending is not None:
                    pending.extend(names)
                else:
                    # Still under lock_timeout. Inside an outer transaction (a test's),
                    # the ADD CONSTRAINT lock is held until it ends, whatever is done here.
                    self.validate_foreign_keys(names)
        finally:
            # After an error inside a transaction, its rollback restores the setting.
            restore = exc_type is None or not self.connection.in_atomic_block
            if self._previous_lock_timeout is not None and restore:
                try:
                    with self.connection.cursor() as cursor:
                        cursor.execute("SELECT set_config('lock_timeout', %s, false)", [self._previous_lock_timeout])
                except DatabaseError:
                    pass  # The connection is broken; a new one starts with the default.

    def execute(self, sql, params=()) -> None:
        super().execute(sql, params)
        if isinstance(sql, Statement) and sql.template == self.sql_create_fk:
            if self.collect_sql:
                table, name = sql.parts["table"], sql.parts["name"]
                self.deferred_validations.append(Statement(self.sql_validate_fk, table=table, name=name))
            else:
                self.deferred_validations.append(str(sql.parts["name"]).strip('"'))

    def not_valid_foreign_keys(
        self, names: Iterable[str] | None = None, tables: Iterable[str] | None = None
    ) -> list[tuple[str, str]]:
        """(table, constraint) of the NOT VALID foreign keys, of those named and/or on the tables given."""
        names = None if names is None else set(names)
        tables = None if tables is None else set(tables)
        if names == set() or tables == set():
            return []
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT t.relname, c.conname FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
                "WHERE c.contype = 'f' AND NOT c.convalidated AND pg_table_is_visible(t.oid) "
                "ORDER BY t.relname, c.conname"
            )
            found = cursor.fetchall()
        return [
            (table, name)
            for table, name in found
            if (names is None or name in names) and (tables is None or table in tables)
        ]

    def validate_foreign_key(self, table: str, name: str) -> None:
        """``VALIDATE CONSTRAINT``, in autocommit: a transaction of its own."""
        try:
            self.execute(Statement(self.sql_validate_fk, table=self.quote_name(table), name=self.quote_name(name)))
        except IntegrityError as exc:
            diag = getattr(exc.__cause__, "diag", None)
            raise ForeignKeyViolated(table, name, getattr(diag, "message_detail", None) or str(exc)) from exc

    def validate_foreign_keys(self, names: Iterable[str] | None = None) -> None:
        for table, name in self.not_valid_foreign_keys(names):
            self.validate_foreign_key(table, name)
