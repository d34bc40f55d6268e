"""``validate_entra_schema`` catches drift.

Each test takes a freshly migrated database, changes one thing behind
Django's back with SQL, as a hand-run hotfix or a half-finished operation
would, and expects the command to fail with an error naming exactly that.
"""

from __future__ import annotations

import json

import psycopg
import pytest

from tests.support.scratch import leave_an_orphan_behind_a_not_valid_foreign_key

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.sig"


def validate(db, *args: str) -> tuple[int, list[dict]]:
    """Exit code and error-severity problems of ``validate_entra_schema --format json``."""
    code, report = validate_report(db, *args)
    return code, [p for p in report["problems"] if p["severity"] == "error"]


def validate_report(db, *args: str) -> tuple[int, dict]:
    result = db.call("validate_entra_schema", "--format", "json", *args, check=False)
    assert result.stdout.startswith("{"), result.stderr
    return result.returncode, json.loads(result.stdout)


def assert_errors(errors: list[dict], expected: dict[str, str]) -> None:
    """The errors are on exactly these objects, each message containing the text given for it, each with a fix."""
    shown = json.dumps(errors, indent=2)
    assert sorted(e["object"] for e in errors) == sorted(expected), shown
    for error in errors:
        assert expected[error["object"]] in error["message"], shown
        assert error["fix"], shown


def rebuild_sqlite_table(db, table: str, old: str, new: str) -> None:
    """Change a column or constraint on SQLite, which has no ALTER COLUMN.

    As SQLite documents it (and Django does it): create the table anew from its
    edited CREATE TABLE statement, copy the rows, drop the old one, rename the
    new one, and recreate the table's indexes.
    """
    [(create,)] = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = %s", [table])
    assert old in create, create
    indexes = db.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = %s AND sql IS NOT NULL", [table]
    )
    columns = ", ".join(f'"{row[1]}"' for row in db.execute(f'PRAGMA table_info("{table}")'))
    create = create.replace(old, new).replace(f'CREATE TABLE "{table}"', f'CREATE TABLE "new__{table}"', 1)
    db.executescript(
        f"PRAGMA foreign_keys = OFF; BEGIN; {create}; "
        f'INSERT INTO "new__{table}" ({columns}) SELECT {columns} FROM "{table}"; '
        f'DROP TABLE "{table}"; ALTER TABLE "new__{table}" RENAME TO "{table}"; '
        + "".join(f"{sql}; " for (sql,) in indexes)
        + "COMMIT;"
    )


def give_everyone_preferences(db) -> None:
    """Keep "linked to Entra without preferences" out of tests about other things."""
    db.execute("INSERT INTO user_preferences (user_id) SELECT id FROM users")


# --- The baseline ---------------------------------------------------------------


def test_clean_migrated_database_passes(migrated_db):
    code, report = validate_report(migrated_db)

    assert code == 0, report
    assert report["ok"] is True
    assert [p for p in report["problems"] if p["severity"] in ("error", "warning")] == []


# --- Drift: one change behind Django's back, one error naming exactly it -------------
#
# Each function makes its change and returns the errors expected, by object.


def index_name_reused_for_other_columns(db) -> dict[str, str]:
    db.executescript("DROP INDEX users_last_login_idx; CREATE INDEX users_last_login_idx ON users (created_at);")
    return {
        "users.users_last_login_idx": "index users_last_login_idx btree (last_login_at) is missing; "
        "an index of that name is users_last_login_idx btree (created_at)"
    }


def index_columns_in_another_order(db) -> dict[str, str]:
    db.executescript(
        "DROP INDEX users_entra_tenant_idx; "
        "CREATE INDEX users_entra_tenant_idx ON users (azure_entra_id, azure_tenant_id);"
    )
    return {
        "users.users_entra_tenant_idx": "index users_entra_tenant_idx btree (azure_tenant_id, azure_entra_id) "
        "is missing; an index of that name is users_entra_tenant_idx btree (azure_entra_id, azure_tenant_id)"
    }


def drop_connection_id_unique_constraint(db) -> None:
    if db.vendor == "postgresql":
        db.execute("ALTER TABLE websocket_sessions DROP CONSTRAINT websocket_sessions_connection_id_key")
    else:
        rebuild_sqlite_table(
            db, "websocket_sessions", '"connection_id" char(32) NOT NULL UNIQUE', '"connection_id" char(32) NOT NULL'
        )


def dropped_unique_constraint(db) -> dict[str, str]:
    drop_connection_id_unique_constraint(db)
    return {
        "websocket_sessions.websocket_sessions_connection_id_key": "unique constraint "
        "websocket_sessions_connection_id_key btree (connection_id) is missing"
    }


def unique_constraint_replaced_by_a_plain_index(db) -> dict[str, str]:
    drop_connection_id_unique_constraint(db)
    db.execute("CREATE INDEX websocket_sessions_connection_id_key ON websocket_sessions (connection_id)")
    return {
        "websocket_sessions.websocket_sessions_connection_id_key": "unique constraint on (connection_id) is "
        "missing; websocket_sessions_connection_id_key there is a plain index"
    }


def invalid_unique_index_left_by_a_failed_concurrent_build(db) -> dict[str, str]:
    # The name migration 0003 gives the constraint it builds concurrently.
    name = "users_azure_entra_id_df27b8c2_uniq"
    db.execute(f"ALTER TABLE users DROP CONSTRAINT {name}")
    db.execute(
        "INSERT INTO users (email, azure_entra_id) VALUES ('a@example.com', 'oid-1'), ('b@example.com', 'oid-1')"
    )
    give_everyone_preferences(db)
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute(f"CREATE UNIQUE INDEX CONCURRENTLY {name} ON users (azure_entra_id)")
    assert db.execute(f"SELECT indisvalid FROM pg_index WHERE indexrelid = '{name}'::regclass") == [(False,)]
    return {
        f"users.{name}": f"unique index {name} on (azure_entra_id) is INVALID: uniqueness is not enforced",
        "users.azure_entra_id": "Entra id oid-1 is held by 2 users",
    }


def dropped_index(db) -> dict[str, str]:
    db.execute("DROP INDEX users_email_lower_idx")
    key = "lower(email::text)" if db.vendor == "postgresql" else "(lower(email))"
    return {"users.users_email_lower_idx": f"index users_email_lower_idx btree ({key}) is missing"}


def timestamptz_column_turned_into_timestamp(db) -> dict[str, str]:
    db.execute("ALTER TABLE users ALTER COLUMN created_at TYPE timestamp")
    return {"users.created_at": "type is timestamp without time zone, expected timestamp with time zone"}


def changed_varchar_length(db) -> dict[str, str]:
    if db.vendor == "postgresql":
        db.execute("ALTER TABLE users ALTER COLUMN full_name TYPE varchar(100)")
        return {"users.full_name": "type is character varying(100), expected character varying(200)"}
    rebuild_sqlite_table(db, "users", '"full_name" varchar(200)', '"full_name" varchar(100)')
    return {"users.full_name": "type is varchar(100), expected varchar(200)"}


def dropped_not_null(db) -> dict[str, str]:
    if db.vendor == "postgresql":
        db.execute("ALTER TABLE projects ALTER COLUMN name DROP NOT NULL")
    else:
        rebuild_sqlite_table(db, "projects", '"name" varchar(200) NOT NULL', '"name" varchar(200) NULL')
    return {"projects.name": "allows NULL, expected NOT NULL"}


def missing_column(db) -> dict[str, str]:
    db.execute("ALTER TABLE users DROP COLUMN department")
    return {"users.department": "column is missing"}


def unexpected_not_null_column_without_a_default(db) -> dict[str, str]:
    db.execute("ALTER TABLE users ADD COLUMN legacy_code varchar(20) NOT NULL")
    return {"users.legacy_code": "unexpected NOT NULL column without a default"}


def missing_table(db) -> dict[str, str]:
    db.execute("DROP TABLE websocket_sessions")
    return {"websocket_sessions": "table is missing"}


def view_standing_in_for_a_table(db) -> dict[str, str]:
    db.executescript(
        "DROP TABLE websocket_sessions; CREATE VIEW websocket_sessions AS SELECT id, id AS user_id FROM users;"
    )
    return {"websocket_sessions": "is a view, not a table"}


def changed_on_delete(on_delete: str):
    def change(db) -> dict[str, str]:
        if db.vendor == "postgresql":
            fk = "projects_owner_id_a6ce54bc_fk_users_id"
            db.executescript(
                f"ALTER TABLE projects DROP CONSTRAINT {fk}; "
                f"ALTER TABLE projects ADD CONSTRAINT {fk} FOREIGN KEY (owner_id) REFERENCES users (id) "
                f"ON DELETE {on_delete} DEFERRABLE INITIALLY DEFERRED;"
            )
        else:
            rebuild_sqlite_table(
                db,
                "projects",
                'REFERENCES "users" ("id") ON DELETE CASCADE',
                f'REFERENCES "users" ("id") ON DELETE {on_delete}',
            )
        return {"projects(owner_id)": f"is ON DELETE {on_delete}, expected ON DELETE CASCADE"}

    return change


def not_valid_foreign_key_with_its_orphan_count(db) -> dict[str, str]:
    fk = leave_an_orphan_behind_a_not_valid_foreign_key(db)
    return {
        "generated_files(project_id)": f"{fk} is NOT VALID: existing rows are not checked",
        "generated_files.project_id": "1 row(s) reference a missing projects.id",
    }


def orphan_row(db) -> dict[str, str]:
    insert = (
        "INSERT INTO projects (owner_id, name, cloud_provider, iac_tool) VALUES (999, 'network', 'aws', 'terraform')"
    )
    orphan = {"projects.owner_id": "1 row(s) reference a missing users.id"}
    if db.vendor == "postgresql":
        db.executescript(f"ALTER TABLE projects DROP CONSTRAINT projects_owner_id_a6ce54bc_fk_users_id; {insert};")
        return {"projects(owner_id)": "foreign key to users(id) ON DELETE CASCADE is missing", **orphan}
    db.executescript(f"PRAGMA foreign_keys = OFF; {insert};")
    return orphan


def sequence_behind_max_id(db) -> dict[str, str]:
    db.execute("INSERT INTO users (id, email) VALUES (100, 'a@example.com'), (101, 'b@example.com')")
    db.execute("SELECT setval(pg_get_serial_sequence('users', 'id'), 50)")
    return {"users.id": "is at 50, behind max(id) = 101: the next insert fails"}


def unapplied_migration_with_what_it_would_build(db) -> dict[str, str]:
    db.call("migrate", "realtime", "0003", "--no-input")
    return {
        "realtime.0004_add_session_server_indexes": "not applied",
        "websocket_sessions.ws_sessions_server_live_idx": "index ws_sessions_server_live_idx btree (server_id) WHERE",
        "websocket_sessions.ws_sessions_closed_idx": "index ws_sessions_closed_idx btree (disconnected_at) WHERE",
    }


def entra_ids_differing_only_in_case(db) -> dict[str, str]:
    db.execute(
        "INSERT INTO users (email, azure_entra_id) VALUES ('a@example.com', 'ABC-1'), ('b@example.com', 'abc-1')"
    )
    give_everyone_preferences(db)
    return {"users.azure_entra_id": "Entra id abc-1 is held by 2 users when compared case-insensitively"}


def token_in_a_hash_column(db) -> dict[str, str]:
    db.execute("INSERT INTO users (email) VALUES ('a@example.com')")
    db.execute("INSERT INTO users (email, azure_access_token_hash) VALUES ('b@example.com', %s)", [JWT])
    [(user_id,)] = db.execute("SELECT id FROM users WHERE email = 'b@example.com'")
    return {
        "users.azure_access_token_hash": "1 row(s) hold something that is not a token hash "
        f"(1 look like JWTs; first id {user_id})"
    }


def entra_linked_user_without_preferences(db) -> dict[str, str]:
    db.execute("INSERT INTO users (email) VALUES ('unlinked@example.com')")
    db.execute("INSERT INTO users (email, azure_entra_id) VALUES ('linked@example.com', 'oid-1')")
    return {"users.preferences": "1 user(s) linked to Entra have no preferences row"}


postgres_only = pytest.mark.postgres
DRIFTS = [
    # Indexes and unique constraints
    pytest.param(index_name_reused_for_other_columns),
    pytest.param(index_columns_in_another_order),
    pytest.param(dropped_unique_constraint),
    pytest.param(unique_constraint_replaced_by_a_plain_index),
    pytest.param(invalid_unique_index_left_by_a_failed_concurrent_build, marks=postgres_only),
    pytest.param(dropped_index),
    # Columns
    pytest.param(timestamptz_column_turned_into_timestamp, marks=postgres_only),
    pytest.param(changed_varchar_length),
    pytest.param(dropped_not_null),
    pytest.param(missing_column),
    pytest.param(unexpected_not_null_column_without_a_default),
    # Tables
    pytest.param(missing_table),
    pytest.param(view_standing_in_for_a_table),
    # Foreign keys and orphans
    pytest.param(changed_on_delete("NO ACTION"), id="changed_on_delete_to_no_action"),
    pytest.param(changed_on_delete("RESTRICT"), id="changed_on_delete_to_restrict"),
    pytest.param(not_valid_foreign_key_with_its_orphan_count, marks=postgres_only),
    pytest.param(orphan_row),
    # Sequences and migrations
    pytest.param(sequence_behind_max_id, marks=postgres_only),
    pytest.param(unapplied_migration_with_what_it_would_build),
    # Entra data
    pytest.param(entra_ids_differing_only_in_case),
    pytest.param(token_in_a_hash_column),
    pytest.param(entra_linked_user_without_preferences),
]


@pytest.mark.parametrize("drift", DRIFTS, ids=lambda drift: drift.__name__)
def test_drift_is_an_error_naming_exactly_what_changed(migrated_db, drift):
    expected = drift(migrated_db)

    code, errors = validate(migrated_db)

    assert code == 1
    assert_errors(errors, expected)


def test_dropped_unique_constraint_has_a_fix_that_builds_a_unique_index_concurrently(migrated_db):
    dropped_unique_constraint(migrated_db)

    _, errors = validate(migrated_db)

    [error] = errors
    assert "CREATE UNIQUE INDEX CONCURRENTLY" in error["fix"]


# --- Warnings and the table output -----------------------------------------------------


def test_case_insensitive_email_collision_is_a_warning_that_fails_only_with_strict(migrated_db):
    migrated_db.execute("INSERT INTO users (email) VALUES ('Alice@Example.com'), ('alice@example.com')")

    code, report = validate_report(migrated_db)

    assert code == 0, report
    assert report["errors"] == 0
    [warning] = [p for p in report["problems"] if p["severity"] == "warning"]
    assert warning["object"] == "users.email"
    assert "2 users share the email alice@example.com when compared case-insensitively" in warning["message"]

    strict_code, strict_report = validate_report(migrated_db, "--strict")
    assert strict_code == 1
    assert strict_report["problems"] == report["problems"]


def email_collisions(report: dict) -> list[str]:
    return sorted(p["message"] for p in report["problems"] if p["object"] == "users.email")


def test_email_collisions_are_found_among_more_mixed_case_emails_than_are_looked_up_one_by_one(
    migrated_db, monkeypatch
):
    from accounts import schema_checks

    monkeypatch.setattr(schema_checks, "MIXED_CASE_LOOKUPS", 3)
    migrated_db.execute(
        "INSERT INTO users (email) VALUES ('A1@example.com'), ('A2@example.com'), ('A3@example.com'), "
        "('A4@example.com'), ('Zed@Example.com'), ('zed@example.com'), ('ZED@example.com')"
    )
    _, report = validate_report(migrated_db)
    assert email_collisions(report) == [
        "3 users share the email zed@example.com when compared case-insensitively; sign-in will link neither"
    ]
    monkeypatch.setattr(schema_checks, "MIXED_CASE_LOOKUPS", 1000)  # the same answer when looked up one by one
    assert email_collisions(validate_report(migrated_db)[1]) == email_collisions(report)


def test_an_email_with_a_nul_still_has_its_collision_found(migrated_db):
    if migrated_db.vendor == "postgresql":
        import psycopg

        with pytest.raises(psycopg.DataError, match="NUL"):  # PostgreSQL text cannot hold one
            migrated_db.execute("INSERT INTO users (email) VALUES (%s)", ["nu\x00l@example.com"])
        return
    migrated_db.execute("INSERT INTO users (email) VALUES (?), (?)", ["Nu\x00l@Example.com", "nu\x00l@example.com"])
    _, report = validate_report(migrated_db)
    assert [m.replace("\x00", "<NUL>") for m in email_collisions(report)] == [
        "2 users share the email nu<NUL>l@example.com when compared case-insensitively; sign-in will link neither"
    ]


def test_without_a_unique_email_even_identical_emails_are_found(migrated_db):
    # Two lower-case emails can only collide when the column is not unique: then every row is grouped.
    if migrated_db.vendor == "postgresql":
        migrated_db.execute("ALTER TABLE users DROP CONSTRAINT users_email_key")
    else:
        rebuild_sqlite_table(
            migrated_db, "users", '"email" varchar(254) NOT NULL UNIQUE', '"email" varchar(254) NOT NULL'
        )
    migrated_db.execute("INSERT INTO users (email) VALUES ('sam@example.com'), ('sam@example.com')")
    _, report = validate_report(migrated_db)
    assert email_collisions(report) == [
        "2 users share the email sam@example.com when compared case-insensitively; sign-in will link neither"
    ]


def test_table_output_has_one_line_per_problem_with_its_fix(migrated_db):
    migrated_db.execute("DROP INDEX users_email_lower_idx")
    migrated_db.execute("INSERT INTO users (email, github_access_token_hash) VALUES ('Bob@example.com', 'ghp_123')")
    migrated_db.execute("INSERT INTO users (email) VALUES ('bob@example.com')")
    _, report = validate_report(migrated_db)
    problems = [p for p in report["problems"] if p["severity"] in ("error", "warning")]
    assert sorted(p["severity"] for p in problems) == ["error", "error", "warning"]

    result = migrated_db.call("validate_entra_schema", check=False)

    assert result.returncode == 1
    assert "2 schema error(s), 1 warning(s)" in result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith(("ERROR", "WARNING"))]
    assert len(lines) == len(problems), result.stdout
    for problem in problems:
        [line] = [line for line in lines if f"  {problem['object']}  " in line]
        assert line.startswith(problem["severity"].upper())
        assert problem["message"] in line
        assert line.endswith(f"-> fix: {problem['fix']}")
