"""Migration operations that build indexes without blocking writers.

On PostgreSQL they use ``CREATE INDEX CONCURRENTLY`` and so belong in
migrations with ``atomic = False``. They are safe to re-run: an index of the
same name, such as the INVALID one an interrupted build leaves behind, is
dropped and built again, never taken as done. On other databases they are
plain ``CREATE INDEX`` statements.
"""

from __future__ import annotations

from django.db import migrations


class MigrationBlocked(Exception):
    """The data does not allow this step; ``migrate`` shows the message and stops."""


def _is_postgres(schema_editor) -> bool:
    return schema_editor.connection.vendor == "postgresql"


def _require_autocommit(schema_editor, operation) -> None:
    # Collecting SQL (sqlmigrate) runs nothing, whatever transaction it is in.
    if schema_editor.connection.in_atomic_block and not schema_editor.collect_sql:
        raise ValueError(f"{operation} builds indexes concurrently: put it in a migration with atomic = False")


class AddIndexConcurrently(migrations.AddIndex):
    """``AddIndex`` that builds the index concurrently on PostgreSQL."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state) -> None:
        if not _is_postgres(schema_editor):
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        _require_autocommit(schema_editor, self)
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            quoted = schema_editor.quote_name(self.index.name)
            schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {quoted}")
            schema_editor.execute(self.index.create_sql(model, schema_editor, concurrently=True), None)

    def database_backwards(self, app_label, schema_editor, from_state, to_state) -> None:
        if not _is_postgres(schema_editor):
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        _require_autocommit(schema_editor, self)
        model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {schema_editor.quote_name(self.index.name)}")

    def describe(self) -> str:
        return f"{super().describe()} (concurrently)"


class AddUniqueConstraintConcurrently(migrations.operations.base.Operation):
    """Enforce the ``unique=True`` of a field whose column was added without it.

    PostgreSQL: a unique index built concurrently, then attached with
    ``ADD CONSTRAINT … UNIQUE USING INDEX`` (a brief lock, no table scan). The
    constraint gets the name Django would give ``unique=True``, so later
    migrations find it. The field's state already says unique: no state change.
    """

    reversible = True

    def __init__(self, model_name: str, field_name: str) -> None:
        self.model_name = model_name
        self.field_name = field_name

    def deconstruct(self):
        return (self.__class__.__qualname__, [], {"model_name": self.model_name, "field_name": self.field_name})

    def state_forwards(self, app_label, state) -> None:
        pass

    def _target(self, app_label, schema_editor, state):
        model = state.apps.get_model(app_label, self.model_name)
        column = model._meta.get_field(self.field_name).column
        name = schema_editor._unique_constraint_name(model._meta.db_table, [column], quote=False)
        return model, column, str(name)

    def database_forwards(self, app_label, schema_editor, from_state, to_state) -> None:
        model, column, name = self._target(app_label, schema_editor, to_state)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        table, q = model._meta.db_table, schema_editor.quote_name
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {q(column)}, count(*) FROM {q(table)} WHERE {q(column)} IS NOT NULL "
                f"GROUP BY {q(column)} HAVING count(*) > 1 ORDER BY 2 DESC LIMIT 5"
            )
            duplicates = cursor.fetchall()
        if duplicates:
            listed = ", ".join(f"{value!r} x{count}" for value, count in duplicates)
            raise MigrationBlocked(
                f"{table}.{column} has duplicate values ({listed}); it cannot be made unique. "
                f"Resolve them (keep one row per value), then run migrate again."
            )
        if not _is_postgres(schema_editor):
            with schema_editor.connection.cursor() as cursor:
                constraints = schema_editor.connection.introspection.get_constraints(cursor, table)
            if not any(c["unique"] and c["columns"] == [column] for c in constraints.values()):
                schema_editor.execute(f"CREATE UNIQUE INDEX {q(name)} ON {q(table)} ({q(column)})")
            return
        _require_autocommit(schema_editor, self)
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(
                "SELECT 1 FROM pg_constraint WHERE conname = %s AND conrelid = %s::regclass AND contype = 'u'",
                [name, table],
            )
            if cursor.fetchone():
                return
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {q(name)}")
        schema_editor.execute(f"CREATE UNIQUE INDEX CONCURRENTLY {q(name)} ON {q(table)} ({q(column)})")
        schema_editor.execute(f"ALTER TABLE {q(table)} ADD CONSTRAINT {q(name)} UNIQUE USING INDEX {q(name)}")

    def database_backwards(self, app_label, schema_editor, from_state, to_state) -> None:
        model, _column, name = self._target(app_label, schema_editor, from_state)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        q = schema_editor.quote_name
        if _is_postgres(schema_editor):
            schema_editor.execute(f"ALTER TABLE {q(model._meta.db_table)} DROP CONSTRAINT IF EXISTS {q(name)}")
        else:
            schema_editor.execute(f"DROP INDEX IF EXISTS {q(name)}")

    def describe(self) -> str:
        return f"Enforce unique {self.model_name}.{self.field_name} (index built concurrently)"

    @property
    def migration_name_fragment(self) -> str:
        return f"{self.model_name}_{self.field_name}_unique"


class EnsureLikeIndexConcurrently(migrations.operations.base.Operation):
    """Give an adopted database the ``*_like`` index Django builds for a field.

    On PostgreSQL Django adds a ``varchar_pattern_ops`` index beside the index
    of a unique ``varchar`` column; a database created by the legacy
    application has none. Built concurrently where missing or INVALID, left
    alone where present. Going back leaves it: a fresh database had it at the
    baseline already. No state change.
    """

    reversible = True

    def __init__(self, model_name: str, field_name: str) -> None:
        self.model_name = model_name
        self.field_name = field_name

    def deconstruct(self):
        return (self.__class__.__qualname__, [], {"model_name": self.model_name, "field_name": self.field_name})

    def state_forwards(self, app_label, state) -> None:
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state) -> None:
        if not _is_postgres(schema_editor):
            return
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        _require_autocommit(schema_editor, self)
        field = model._meta.get_field(self.field_name)
        statement = schema_editor._create_like_index_sql(model, field)
        if statement is None:
            return
        name = str(statement.parts["name"]).strip('"')
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(
                "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = %s",
                [name],
            )
            row = cursor.fetchone()
        if row and row[0]:
            return
        q = schema_editor.quote_name
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {q(name)}")
        sql = str(statement).replace("CREATE INDEX", "CREATE INDEX CONCURRENTLY", 1)
        schema_editor.execute(sql, None)

    def database_backwards(self, app_label, schema_editor, from_state, to_state) -> None:
        pass

    def describe(self) -> str:
        return f"Ensure the pattern-ops index of {self.model_name}.{self.field_name} (concurrently)"


class AddFieldDeferringUnique(migrations.AddField):
    """``AddField`` of a ``unique=True`` field whose uniqueness comes later.

    On PostgreSQL the column is added bare (a catalog-only change) and
    ``AddUniqueConstraintConcurrently`` in a later, non-atomic migration makes
    it unique without scanning the table under a lock. Elsewhere the field is
    added as it is. The state has the field as declared, unique.
    """

    def _bare(self):
        field = self.field.clone()
        field._unique = False
        return field

    def database_forwards(self, app_label, schema_editor, from_state, to_state) -> None:
        if not _is_postgres(schema_editor):
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        to_model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, to_model):
            field = self._bare()
            field.set_attributes_from_name(self.name)
            field.model = to_model
            schema_editor.add_field(to_model, field)

    def database_backwards(self, app_label, schema_editor, from_state, to_state) -> None:
        # Dropping the column drops its constraint and indexes with it.
        if not _is_postgres(schema_editor):
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        from_model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, from_model):
            schema_editor.remove_field(from_model, from_model._meta.get_field(self.name))

    def describe(self) -> str:
        return f"{super().describe()} (unique enforced later)"
