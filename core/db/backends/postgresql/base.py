from django.db.backends.postgresql.base import DatabaseWrapper as PostgresDatabaseWrapper

from core.db.backends.postgresql.schema import DatabaseSchemaEditor


class DatabaseWrapper(PostgresDatabaseWrapper):
    SchemaEditorClass = DatabaseSchemaEditor
    # A list while ``migrate`` runs: schema editors leave the validation of the foreign keys
    # they added to it (their names), to run once the migration is recorded.
    pending_fk_validations: list[str] | None = None
