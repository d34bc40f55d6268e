"""A schema editor that keeps migrations from blocking the application.

Every statement a migration runs waits at most ``MIGRATION_LOCK_TIMEOUT_MS``
for a lock (a writer queued behind a waiting ``ALTER TABLE`` waits as long);
``migrate`` retries a migration that timed out. New foreign keys are added
``NOT VALID`` and then validated, which checks existing rows under a lock that
does not block writers.
"""

from __future__ import annotations

from django.conf import settings
from django.db import DatabaseError
from django.db.backends.ddl_references import Statement
from django.db.backends.postgresql.schema import DatabaseSchemaEditor as PostgresSchemaEditor


class DatabaseSchemaEditor(PostgresSchemaEditor):
    sql_create_fk = PostgresSchemaEditor.sql_create_fk + " NOT VALID"
    sql_validate_fk = "ALTER TABLE %(table)s VALIDATE CONSTRAINT %(name)s"
    # An inline REFERENCES cannot be NOT VALID: add the constraint separately.
    sql_create_column_inline_fk = None

    def __enter__(self) -> DatabaseSchemaEditor:
        self._previous_lock_timeout = None
        if not self.collect_sql:
            with self.connection.cursor() as cursor:
                cursor.execute("SHOW lock_timeout")
                self._previous_lock_timeout = cursor.fetchone()[0]
                cursor.execute(f"SET lock_timeout = {int(settings.MIGRATION_LOCK_TIMEOUT_MS)}")
        return super().__enter__()

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        try:
            super().__exit__(exc_type, exc_value, traceback)
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
            super().execute(Statement(self.sql_validate_fk, table=sql.parts["table"], name=sql.parts["name"]), None)
