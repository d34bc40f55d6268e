"""``sqlmigrate``, showing what ``migrate`` runs on PostgreSQL.

Django's prints the statements the operations collect. ``migrate`` also sets
``lock_timeout`` on the session first, and validates the foreign keys it added
``NOT VALID`` after the migration's transaction has committed: both are shown,
where they run.
"""

from __future__ import annotations

from django.apps import apps
from django.core.management.base import CommandError
from django.core.management.commands.sqlmigrate import Command as DjangoSqlmigrateCommand
from django.db import connections
from django.db.migrations.loader import AmbiguityError, MigrationLoader


class Command(DjangoSqlmigrateCommand):
    help = (
        DjangoSqlmigrateCommand.help + " On PostgreSQL as migrate runs them: the lock_timeout first, new foreign "
        "keys validated after the migration's transaction."
    )

    def handle(self, *args, **options):
        connection = connections[options["database"]]
        if not hasattr(connection, "pending_fk_validations"):
            return super().handle(*args, **options)
        loader = MigrationLoader(connection, replace_migrations=False)
        found = self._migration(loader, options["app_label"], options["migration_name"])
        migration = loader.graph.nodes[(found.app_label, found.name)]
        backwards = options["backwards"]
        state = loader.project_state((migration.app_label, migration.name), at_end=False)
        with connection.schema_editor(collect_sql=True, atomic=migration.atomic) as editor:
            if backwards:
                migration.unapply(state, editor, collect_sql=True)
            else:
                migration.apply(state, editor, collect_sql=True)
        # The transaction is written out here, so that the validations can follow its COMMIT.
        self.output_transaction = False
        in_transaction = migration.atomic and connection.features.can_rollback_ddl
        statements = [f"{editor.sql_set_lock_timeout};"]
        if in_transaction:
            statements.append(connection.ops.start_transaction_sql())
        statements.extend(editor.collected_sql)
        if in_transaction:
            statements.append(connection.ops.end_transaction_sql())
        if editor.deferred_validations:
            statements += ["--", "-- Validate the new foreign keys, each in a transaction of its own", "--"]
            statements.extend(f"{statement};" for statement in editor.deferred_validations)
        if not editor.collected_sql and options["verbosity"] >= 1:
            self.stderr.write("No operations found.")
        return "\n".join(statements)

    def _migration(self, loader: MigrationLoader, app_label: str, name: str):
        # As Django's sqlmigrate resolves them, with its messages.
        try:
            apps.get_app_config(app_label)
        except LookupError as err:
            raise CommandError(str(err)) from err
        if app_label not in loader.migrated_apps:
            raise CommandError(f"App '{app_label}' does not have migrations")
        try:
            return loader.get_migration_by_prefix(app_label, name)
        except AmbiguityError as err:
            raise CommandError(
                f"More than one migration matches '{name}' in app '{app_label}'. Please be more specific."
            ) from err
        except KeyError as err:
            raise CommandError(
                f"Cannot find a migration matching '{name}' from app '{app_label}'. Is it in INSTALLED_APPS?"
            ) from err
