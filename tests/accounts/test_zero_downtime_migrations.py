"""``migrate`` while the application writes (PostgreSQL).

A blocker holds a lock on ``users`` in an open transaction, as a slow request
would; a writer keeps updating ``users`` and records how long each write took.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import zlib

import pytest

from core.db.locks import advisory_key
from tests.support import ROOT
from tests.support.legacy import seed
from tests.support.scratch import ScratchDatabase

pytestmark = pytest.mark.postgres


class Writer(threading.Thread):
    """Updates one users row every 20 ms and keeps the slowest write's duration."""

    def __init__(self, db: ScratchDatabase, user_id: int) -> None:
        super().__init__(daemon=True)
        self.conn = db.connect()
        self.user_id = user_id
        self.stop = threading.Event()
        self.longest = 0.0
        self.writes = 0

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.perf_counter()
            self.conn.execute("UPDATE users SET last_login_at = now() WHERE id = %s", [self.user_id])
            self.longest = max(self.longest, time.perf_counter() - started)
            self.writes += 1
            time.sleep(0.02)

    def finish(self) -> float:
        self.stop.set()
        self.join(timeout=10)
        self.conn.close()
        return self.longest


def blocker(db: ScratchDatabase):
    """An open transaction holding a row lock (and so a table lock) on users."""
    conn = db.connect()
    conn.autocommit = False
    conn.execute("UPDATE users SET full_name = full_name WHERE id = 1")
    return conn


def start_migrate(db: ScratchDatabase, *args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "migrate", *args],
        env=db.env(**env),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def applied(db: ScratchDatabase, app: str) -> set[str]:
    return {r[0] for r in db.execute("SELECT name FROM django_migrations WHERE app = %s", [app])}


@pytest.fixture
def legacy_2000(legacy_db):
    seed(legacy_db, users=2000, edge_cases=False)
    return legacy_db


def wait_for(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not {what} after {timeout}s")
        time.sleep(0.05)


def wait_for_a_second_try(db: ScratchDatabase, holder_pid: int) -> None:
    """Until another session has asked twice for an advisory lock: it waits for it rather than giving up."""
    first = []

    def tried_again() -> bool:
        rows = db.execute(
            "SELECT query_start FROM pg_stat_activity WHERE datname = %s AND pid <> %s "
            "AND query LIKE 'SELECT pg_try_advisory_lock%%'",
            [db.name, holder_pid],
        )
        if rows and not first:
            first.append(rows[0][0])
        return bool(rows) and rows[0][0] != first[0]

    wait_for(tried_again, "asking for the lock a second time")


def test_migrate_waits_out_a_lock_without_blocking_writers(legacy_2000):
    legacy_db = legacy_2000
    hold = blocker(legacy_db)
    writer = Writer(legacy_db, user_id=2)
    writer.start()
    migrate = start_migrate(legacy_db, MIGRATION_LOCK_RETRIES="20")
    # Until migrate has been refused the lock and retried, while the writer kept writing.
    retried = []
    for line in migrate.stderr:
        retried.append(line)
        if line.startswith("Lock not granted within 300 ms"):
            break
    wait_for(lambda: writer.writes > 50, "50 writes")
    assert migrate.poll() is None, "migrate finished while the lock was held"
    hold.commit()
    hold.close()
    out, err = migrate.communicate(timeout=120)
    err = "".join(retried) + err
    longest = writer.finish()

    assert migrate.returncode == 0, err
    assert "Lock not granted within 300 ms" in err
    assert "Applying realtime.0002_add_performance_indexes... OK" in out
    assert writer.writes > 50
    assert longest < 1.0, f"a write waited {longest:.2f}s"


def test_migrate_gives_up_naming_the_blocker_and_the_next_run_completes(legacy_2000):
    legacy_db = legacy_2000
    hold = blocker(legacy_db)
    (blocker_pid,) = hold.execute("SELECT pg_backend_pid()").fetchone()
    result = legacy_db.manage("migrate", check=False, MIGRATION_LOCK_RETRIES="1")

    assert result.returncode == 1
    assert "migrate gave up after 2 attempts" in result.stderr
    assert f"pid {blocker_pid} " in result.stderr
    # Nothing half-applied: step 2 is not recorded and none of its columns exist.
    assert "0002_add_azure_entra_fields_to_users" not in applied(legacy_db, "accounts")
    columns = {
        r[0] for r in legacy_db.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'users'")
    }
    assert "hashed_password" in columns and "azure_entra_id" not in columns

    hold.rollback()
    hold.close()
    legacy_db.call("migrate", "--no-input")
    assert "0005_add_performance_indexes" in applied(legacy_db, "accounts")


def invalid_indexes(db: ScratchDatabase) -> list[str]:
    return [
        r[0]
        for r in db.execute(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE NOT i.indisvalid"
        )
    ]


def test_interrupted_concurrent_index_build_is_dropped_and_rebuilt(migrated_db):
    migrated_db.call("migrate", "accounts", "0004", "--no-input")
    build_users = "INSERT INTO users (email) SELECT 'u' || n || '@example.com' FROM generate_series(1, 500) n"
    migrated_db.execute(build_users)
    hold = blocker(migrated_db)
    # CREATE INDEX CONCURRENTLY registers the index, then waits for the open
    # transaction; the lock timeout interrupts it and leaves it INVALID.
    result = migrated_db.manage("migrate", check=False, MIGRATION_LOCK_RETRIES="0")
    assert result.returncode == 1
    assert invalid_indexes(migrated_db) == ["users_entra_tenant_idx"]
    code = migrated_db.call("validate_entra_schema", check=False)
    assert code.returncode == 1 and "users_entra_tenant_idx" in code.stdout

    hold.rollback()
    hold.close()
    migrated_db.call("migrate", "--no-input")
    assert invalid_indexes(migrated_db) == []
    assert migrated_db.call("validate_entra_schema", check=False).returncode == 0


def test_interrupted_unique_constraint_build_is_repaired(migrated_db):
    migrated_db.call("migrate", "accounts", "0002", "--no-input")
    hold = blocker(migrated_db)
    result = migrated_db.manage("migrate", check=False, MIGRATION_LOCK_RETRIES="0")
    assert result.returncode == 1
    assert invalid_indexes(migrated_db) == ["users_azure_entra_id_df27b8c2_uniq"]

    hold.rollback()
    hold.close()
    migrated_db.call("migrate", "--no-input")
    assert invalid_indexes(migrated_db) == []
    constraint = migrated_db.execute(
        "SELECT contype FROM pg_constraint WHERE conname = 'users_azure_entra_id_df27b8c2_uniq'"
    )
    assert constraint == [("u",)]


def test_duplicate_entra_ids_stop_migrate_with_a_clear_message(migrated_db):
    migrated_db.call("migrate", "accounts", "0002", "--no-input")
    migrated_db.execute(
        "INSERT INTO users (email, azure_entra_id) VALUES ('a@example.com', 'x'), ('b@example.com', 'x')"
    )
    result = migrated_db.call("migrate", "--no-input", check=False)
    assert result.returncode == 1
    assert "users.azure_entra_id has duplicate values ('x' x2)" in result.stderr
    assert "Traceback" not in result.stderr
    assert invalid_indexes(migrated_db) == []
    assert "0003_enforce_unique_azure_entra_id" not in applied(migrated_db, "accounts")

    migrated_db.execute("UPDATE users SET azure_entra_id = 'y' WHERE email = 'b@example.com'")
    migrated_db.call("migrate", "--no-input")
    assert "0005_add_performance_indexes" in applied(migrated_db, "accounts")


def test_second_migrate_stops_while_another_holds_the_lock(migrated_db):
    other = migrated_db.connect()
    key = advisory_key("migrate")
    other.execute("SELECT pg_advisory_lock(%s)", [key])
    (other_pid,) = other.execute("SELECT pg_backend_pid()").fetchone()
    result = migrated_db.manage("migrate", check=False, MIGRATION_ADVISORY_LOCK_WAIT_S="0.5")
    assert result.returncode == 1
    assert f"Not migrating: migrate is already running in pid {other_pid}" in result.stderr

    # With time to wait, it waits for the other run to finish, then proceeds.
    migrate = start_migrate(migrated_db, MIGRATION_ADVISORY_LOCK_WAIT_S="30")
    wait_for_a_second_try(migrated_db, other_pid)
    assert migrate.poll() is None
    other.execute("SELECT pg_advisory_unlock(%s)", [key])
    other.close()
    out, err = migrate.communicate(timeout=60)
    assert migrate.returncode == 0, err
    assert "No migrations to apply" in out


def test_another_applications_advisory_lock_does_not_stop_migrate(migrated_db):
    """Advisory keys are per database, shared by every application on it: ours are namespaced 64-bit keys."""
    other = migrated_db.connect()
    for key in (zlib.crc32(b"migrate"), 1, 0):  # what a plain checksum of the word, or a first counter, would take
        other.execute("SELECT pg_advisory_lock(%s)", [key])
    result = migrated_db.manage("migrate", check=False, MIGRATION_ADVISORY_LOCK_WAIT_S="0")
    other.close()
    assert result.returncode == 0, result.stderr


@pytest.mark.django_db
def test_schema_editor_bounds_lock_waits_and_restores_the_setting():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW lock_timeout")
        (before,) = cursor.fetchone()
    # RunSQL and RunPython steps run inside this context, on this session.
    with connection.schema_editor(atomic=False), connection.cursor() as cursor:
        cursor.execute("SHOW lock_timeout")
        assert cursor.fetchone() == ("300ms",)
    with connection.cursor() as cursor:
        cursor.execute("SHOW lock_timeout")
        assert cursor.fetchone() == (before,)


def test_new_foreign_keys_are_added_not_valid_then_validated(migrated_db):
    sql = migrated_db.call("sqlmigrate", "realtime", "0001").stdout
    assert 'FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON DELETE CASCADE' in sql
    assert "NOT VALID;" in sql
    assert "VALIDATE CONSTRAINT" in sql
    assert migrated_db.execute("SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND NOT convalidated") == [(0,)]
