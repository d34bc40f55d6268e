"""Scratch migrations for ``core`` (via ``MIGRATION_MODULES``) that add a foreign key to an existing table."""
