"""The legacy (password-era) database: its schema, sample data, and what must survive every migration step."""

from __future__ import annotations

from tests.support import ROOT
from tests.support.scratch import ScratchDatabase

# The legacy application's own DDL, as an installation to adopt has it (PostgreSQL).
LEGACY_SQL = ROOT.parent / "shared" / "legacy" / "legacy_schema_postgres.sql"

# What must survive every migration step: all of it but the password column.
SNAPSHOT_QUERIES = {
    "users": "SELECT id, email, full_name, is_active, is_superuser, created_at, updated_at, last_login_at "
    "FROM users ORDER BY id",
    "projects": "SELECT * FROM projects ORDER BY id",
    "generated_files": "SELECT * FROM generated_files ORDER BY id",
}


def snapshot(db: ScratchDatabase, tables=SNAPSHOT_QUERIES) -> dict[str, list[tuple]]:
    return {table: db.execute(query) for table, query in tables.items()}


def migrate_to_baseline(db: ScratchDatabase) -> None:
    """An empty database to the legacy schema, by the ``0001_legacy_baseline`` migrations."""
    db.call("migrate", "projects", "0001_legacy_baseline", "--no-input")


def adopt_legacy_sql(db: ScratchDatabase) -> None:
    """An empty PostgreSQL database to the legacy schema, by the legacy application's own DDL."""
    db.executescript(LEGACY_SQL.read_text())


def seed(db: ScratchDatabase, *, users: int = 20, edge_cases: bool = True) -> None:
    """Legacy data (``seed_legacy_data``) into a database at the legacy schema."""
    args = ["seed_legacy_data", "--users", str(users)]
    if edge_cases:
        args.append("--edge-cases")
    db.call(*args)
