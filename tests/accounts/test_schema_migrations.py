"""The migration history: baseline, forward, back to the baseline, forward again."""

from __future__ import annotations

import json

import pytest

from tests.support.legacy import adopt_legacy_sql, seed, snapshot

ENTRA_COLUMNS = {
    "azure_entra_id",
    "azure_tenant_id",
    "azure_access_token_hash",
    "azure_refresh_token_hash",
    "azure_token_expires_at",
    "profile_picture_url",
    "organization",
    "department",
    "github_username",
    "github_access_token_hash",
    "github_connected_at",
}


def user_columns(db) -> set[str]:
    if db.vendor == "postgresql":
        rows = db.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'users'")
    else:
        rows = [(r[1],) for r in db.execute("PRAGMA table_info(users)")]
    return {r[0] for r in rows}


def tables(db) -> set[str]:
    if db.vendor == "postgresql":
        rows = db.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    else:
        rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {r[0] for r in rows}


def validate(db, *args):
    result = db.call("validate_entra_schema", "--format", "json", *args, check=False)
    return result.returncode, json.loads(result.stdout)


def test_round_trip_keeps_every_row_and_value(seeded_legacy_db):
    db = seeded_legacy_db
    before = snapshot(db)
    assert len(before["users"]) == 29 and len(before["generated_files"]) == 100

    db.call("migrate", "--no-input")
    assert ENTRA_COLUMNS <= user_columns(db)
    assert "hashed_password" not in user_columns(db)
    assert {"github_sync_records", "websocket_sessions", "user_preferences"} <= tables(db)
    assert snapshot(db) == before
    code, report = validate(db)
    assert code == 0, report

    db.execute("UPDATE users SET azure_entra_id = 'oid-' || id, azure_tenant_id = 'tid' WHERE id <= 3")
    db.call("migrate", "accounts", "0001_legacy_baseline", "--no-input")
    assert not ENTRA_COLUMNS & user_columns(db)
    assert "hashed_password" in user_columns(db)
    assert not {"github_sync_records", "websocket_sessions", "user_preferences"} & tables(db)
    assert snapshot(db) == before
    # Password hashes are not restored: everyone has the unusable "!".
    assert {r[0] for r in db.execute("SELECT hashed_password FROM users")} == {"!"}

    db.call("migrate", "--no-input")
    assert snapshot(db) == before
    assert validate(db)[0] == 0


def test_every_later_migration_depends_on_the_entra_fields_step():
    from django.db.migrations.loader import MigrationLoader

    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    step2 = ("accounts", "0002_add_azure_entra_fields_to_users")
    ours = [n for n in graph.nodes if n[0] in {"accounts", "projects", "integrations", "realtime"}]
    baseline = {("accounts", "0001_legacy_baseline"), ("projects", "0001_legacy_baseline"), step2}
    for node in ours:
        if node not in baseline:
            assert step2 in graph.forwards_plan(node), node


@pytest.mark.postgres
def test_legacy_database_is_adopted_with_fake_initial(scratch_db):
    adopt_legacy_sql(scratch_db)
    seed(scratch_db, users=30)
    before = snapshot(scratch_db)

    result = scratch_db.call("migrate", "--fake-initial", "--no-input")
    assert "accounts.0001_legacy_baseline... FAKED" in result.stdout
    assert "projects.0001_legacy_baseline... FAKED" in result.stdout
    assert snapshot(scratch_db) == before

    code, report = validate(scratch_db)
    assert code == 0, report
    # The seeded case-insensitive email collision is a warning, not an error.
    assert [p["object"] for p in report["problems"] if p["severity"] == "warning"] == ["users.email"]
    assert validate(scratch_db, "--strict")[0] == 1

    scratch_db.call("migrate", "accounts", "0001_legacy_baseline", "--no-input")
    assert snapshot(scratch_db) == before
    scratch_db.call("migrate", "--no-input")
    assert snapshot(scratch_db) == before


@pytest.mark.postgres
def test_adopted_table_with_a_changed_type_is_reported(scratch_db):
    adopt_legacy_sql(scratch_db)
    seed(scratch_db, users=3, edge_cases=False)
    scratch_db.execute("ALTER TABLE users ALTER COLUMN created_at TYPE timestamp")
    scratch_db.execute("ALTER TABLE users ALTER COLUMN full_name TYPE varchar(100)")

    scratch_db.call("migrate", "--fake-initial", "--no-input")
    code, report = validate(scratch_db)

    assert code == 1
    messages = {(p["object"], p["message"]) for p in report["problems"] if p["severity"] == "error"}
    assert ("users.created_at", "type is timestamp without time zone, expected timestamp with time zone") in messages
    assert ("users.full_name", "type is character varying(100), expected character varying(200)") in messages
