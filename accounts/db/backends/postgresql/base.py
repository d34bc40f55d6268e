from django.db.backends.postgresql.base import DatabaseWrapper as PostgresDatabaseWrapper

from accounts.db.backends.postgresql.schema import DatabaseSchemaEditor


class DatabaseWrapper(PostgresDatabaseWrapper):
    SchemaEditorClass = DatabaseSchemaEditor
