from django.db.backends.postgresql.base import DatabaseWrapper as PostgresDatabaseWrapper

from core.db.backends.postgresql.schema import DatabaseSchemaEditor


class DatabaseWrapper(PostgresDatabaseWrapper):
    SchemaEditorClass = DatabaseSchemaEditor
