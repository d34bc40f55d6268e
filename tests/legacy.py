"""Helpers for tests that start from the legacy (password-era) database."""

from __future__ import annotations

from tests.conftest import LEGACY_SQL, ScratchDatabase

# What must survive every migration step: all of it but the password column.
SNAPSHOT_QUERIES = {
    "users": "SELECT id, email, full_name, is_active, is_superuser, created_at, updated_at, last_login_at "
    "FROM users ORDER BY id",
    "projects": "SELECT * FROM projects ORDER BY id",
    "generated_files": "SELECT * FROM generated_files ORDER BY id",
}


def snapshot(db: ScratchDatabase, tables=SNAPSHOT_QUERIES) -> dict[str, list[tuple]]:
    return {table: db.execute(query) for table, query in tables.items()}


def build_legacy(db: ScratchDatabase, *, users: int = 20, edge_cases: bool = True, from_sql: bool = False) -> None:
    """Bring an empty database to the legacy state, with data.

    ``from_sql``: PostgreSQL only, the legacy application's own DDL
    (``legacy_schema_postgres.sql``), as an installation to adopt has it.
    Otherwise the ``0001_legacy_baseline`` migrations build the same schema.
    """
    if from_sql:
        db.executescript(LEGACY_SQL.read_text())
    else:
        db.manage("migrate", "projects", "0001_legacy_baseline")
    args = ["seed_legacy_data", "--users", str(users)]
    if edge_cases:
        args.append("--edge-cases")
    db.manage(*args)
