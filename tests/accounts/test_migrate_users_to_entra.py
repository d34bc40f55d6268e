"""migrate_users_to_entra on a database that came from the legacy state."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.test import override_settings

from tests.support import ROOT
from tests.support.legacy import seed, snapshot
from tests.support.scratch import ScratchDatabase


def encoded_session(user_id: int) -> str:
    with override_settings(SECRET_KEY="tests-only-not-secret"):
        return SessionStore().encode({"_auth_user_id": str(user_id), "_auth_user_backend": "x"})


@pytest.fixture(scope="session")
def migrated_legacy_template(databases, seeded_legacy_template):
    """25 legacy users (+4 edge cases) after `migrate`; users 1 and 2 already linked to Entra."""
    db = databases.clone(seeded_legacy_template)
    db.call("migrate", "--no-input")
    db.execute("UPDATE users SET azure_entra_id = 'oid-' || id, azure_tenant_id = 'tid' WHERE id IN (1, 2)")
    db.execute("INSERT INTO user_preferences (user_id) VALUES (1)")
    for key, user_id in (("linkedsession", 1), ("legacysession3", 3), ("legacysession4", 4)):
        db.execute(
            "INSERT INTO django_session (session_key, session_data, expire_date) VALUES (%s, %s, %s)",
            [key, encoded_session(user_id), "2099-01-01 00:00:00"],
        )
    yield databases.freeze(db)
    databases.drop(db)


@pytest.fixture
def migrated_legacy(clone, migrated_legacy_template):
    """A copy of ``migrated_legacy_template`` of its own."""
    return clone(migrated_legacy_template)


def run(db: ScratchDatabase, *args: str, check: bool = False):
    """``migrate_users_to_entra ARGS``, in-process."""
    return db.call("migrate_users_to_entra", *args, check=check)


def prepared_state(db: ScratchDatabase) -> dict[int, tuple[int, int, int]]:
    """user id -> (preferences rows, flagged, refresh tokens)."""
    rows = db.execute(
        "SELECT u.id, (SELECT count(*) FROM user_preferences p WHERE p.user_id = u.id), "
        "CASE WHEN u.requires_entra_migration THEN 1 ELSE 0 END, "
        "(SELECT count(*) FROM refresh_tokens t WHERE t.user_id = u.id) FROM users u WHERE u.azure_entra_id IS NULL"
    )
    return {r[0]: tuple(r[1:]) for r in rows}


def test_the_fingerprint_sees_one_committed_write(migrated_legacy):
    # What makes the dry-run tests able to fail: on SQLite in WAL mode a commit stays in the -wal file
    # while a connection is open (the last one to close moves it into the database file).
    before = migrated_legacy.fingerprint()
    writer = migrated_legacy.connect()  # autocommit
    try:
        if migrated_legacy.vendor == "sqlite":
            assert writer.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        writer.execute("UPDATE users SET full_name = full_name || '.' WHERE id = (SELECT min(id) FROM users)")
        assert migrated_legacy.fingerprint() != before
    finally:
        writer.close()


def test_dry_run_changes_nothing(migrated_legacy, tmp_path):
    before = migrated_legacy.fingerprint()
    report_path = tmp_path / "dry.json"

    result = run(migrated_legacy, "--report", str(report_path))

    assert result.returncode == 0, result.stderr
    assert "DRY RUN: nothing was changed" in result.stdout
    assert migrated_legacy.fingerprint() == before
    report = json.loads(report_path.read_text())
    assert report["mode"] == "dry-run"
    assert report["preferences_created"] == 28  # 29 users, one already has preferences
    assert report["users_flagged"] == 27  # all but the two linked users
    assert report["refresh_tokens_deleted"] == 25
    assert report["sessions_deleted"] == 2  # users 3 and 4; user 1 signed in with Entra
    assert [u["email"] for u in report["sample_to_flag"]][:2] == ["user3@example.com", "user4@example.com"]


def test_execute_does_what_the_dry_run_reported(migrated_legacy, tmp_path):
    legacy_rows = snapshot(migrated_legacy)
    run(migrated_legacy, "--report", str(tmp_path / "dry.json"), check=True)
    result = run(migrated_legacy, "--execute", "--batch-size", "4", "--report", str(tmp_path / "run.json"), check=True)
    dry = json.loads((tmp_path / "dry.json").read_text())
    done = json.loads((tmp_path / "run.json").read_text())

    assert "EXECUTED" in result.stdout
    for key in ("preferences_created", "users_flagged", "refresh_tokens_deleted", "sessions_deleted"):
        assert done[key] == dry[key], key
    assert done["batches"] == 8  # ids 1..29 in batches of 4
    assert set(prepared_state(migrated_legacy).values()) == {(1, 1, 0)}
    # Linked users are left as they are (not flagged), and keep their session.
    linked = migrated_legacy.execute(
        "SELECT id, requires_entra_migration FROM users WHERE azure_entra_id IS NOT NULL ORDER BY id"
    )
    assert [(i, bool(flag)) for i, flag in linked] == [(1, False), (2, False)]
    assert migrated_legacy.execute("SELECT count(*) FROM user_preferences") == [(29,)]
    assert migrated_legacy.execute("SELECT count(*) FROM refresh_tokens") == [(0,)]
    assert migrated_legacy.execute("SELECT session_key FROM django_session") == [("linkedsession",)]
    # No user, project or generated file changed beyond the flags.
    assert snapshot(migrated_legacy) == legacy_rows


def test_second_execute_finds_nothing_to_do(migrated_legacy):
    run(migrated_legacy, "--execute", check=True)
    before = migrated_legacy.fingerprint()

    result = run(migrated_legacy, "--execute", check=True)

    assert "Nothing to do: every user is already prepared for Entra sign-in." in result.stdout
    assert "0 change(s)" not in result.stdout
    assert migrated_legacy.fingerprint() == before


def test_report_surfaces_what_it_must_not_guess(migrated_legacy, tmp_path):
    path = tmp_path / "report.json"
    result = run(migrated_legacy, "--report", str(path), check=True)
    report = json.loads(path.read_text())

    collision = report["email_collisions"][0]
    assert collision["email"] == "shared.mailbox@example.com"
    assert [u["email"] for u in collision["users"]] == ["Shared.Mailbox@Example.com", "shared.mailbox@example.com"]
    assert [u["email"] for u in report["unusable_emails"]] == ["not-an-email"]
    assert [u["email"] for u in report["inactive_users"]] == ["former.employee@example.com"]
    assert "Entra sign-in refuses them" in report["inactive_users_policy"]
    assert "Shared.Mailbox@Example.com (#26), shared.mailbox@example.com (#27)" in result.stdout
    assert "Without a usable email: 1 user(s)" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch-size", "0"], "--batch-size must be between 1 and 1000000, not 0"),
        (["--report", "/nonexistent-dir/report.json"], "--report /nonexistent-dir/report.json: cannot write there"),
    ],
)
def test_usage_errors_stop_before_any_change(migrated_legacy, args, message):
    before = migrated_legacy.fingerprint()
    result = run(migrated_legacy, "--execute", *args)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert migrated_legacy.fingerprint() == before


def test_refuses_a_database_that_was_not_migrated(legacy_db):
    seed(legacy_db, users=3, edge_cases=False)
    result = run(legacy_db, "--execute")
    assert result.returncode == 1
    assert "unapplied migrations (accounts: accounts.0002_add_azure_entra_fields_to_users" in result.stderr
    assert "run `python manage.py migrate` first" in result.stderr


def start(db: ScratchDatabase, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "migrate_users_to_entra", *args],
        env=db.env(PYTHONUNBUFFERED="1"),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def kill_after(db: ScratchDatabase, line_prefix: str) -> None:
    proc = start(db, "--execute", "--batch-size", "10")
    for line in proc.stdout:
        if line.startswith(line_prefix):
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, f"the run ended before {line_prefix!r}"


def test_killed_runs_lose_at_most_a_batch_and_a_rerun_completes(legacy_db):
    scratch_db = legacy_db
    seed(scratch_db, users=3000, edge_cases=False)
    scratch_db.call("migrate", "--no-input")
    for point in ("batch 1/300", "batch 60/300", "batch 150/300"):
        kill_after(scratch_db, point)
        states = prepared_state(scratch_db)
        # Each user is wholly done or wholly untouched: no half-applied batch.
        assert set(states.values()) <= {(1, 1, 0), (0, 0, 1)}, point
        assert (0, 0, 1) in set(states.values()), f"killed at {point}, yet everything was done"

    run(scratch_db, "--execute", check=True)
    assert set(prepared_state(scratch_db).values()) == {(1, 1, 0)}
    assert scratch_db.execute(
        "SELECT count(*) FROM users u WHERE (SELECT count(*) FROM user_preferences p WHERE p.user_id = u.id) <> 1"
    ) == [(0,)]


@pytest.mark.postgres
def test_a_second_run_stops_at_once_while_the_first_holds_the_lock(migrated_legacy):
    # Hold a row lock on a user in the third batch, so the first run waits there.
    blocker = migrated_legacy.connect()
    blocker.autocommit = False
    blocker.execute("SELECT 1 FROM users WHERE id = 25 FOR UPDATE")
    first = start(migrated_legacy, "--execute", "--batch-size", "10")
    assert first.stdout.readline().startswith("batch 1/3")
    wait_for_a_lock_wait(migrated_legacy, "")  # batch 2 done, batch 3 waiting: nothing moves now
    before = prepared_state(migrated_legacy)

    second = migrated_legacy.manage("migrate_users_to_entra", "--execute", check=False)

    assert second.returncode == 1
    assert f"migrate_users_to_entra is already running in pid {advisory_lock_pid(migrated_legacy)}" in second.stderr
    assert "Nothing was changed" in second.stderr
    assert prepared_state(migrated_legacy) == before
    blocker.rollback()
    blocker.close()
    first.communicate(timeout=60)
    assert first.returncode == 0
    assert set(prepared_state(migrated_legacy).values()) == {(1, 1, 0)}


def advisory_lock_pid(db: ScratchDatabase) -> int:
    # This database's only: other tests and benchmarks on the server hold advisory locks of their own.
    rows = db.execute(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    assert len(rows) == 1, rows
    return rows[0][0]


@pytest.mark.postgres
def test_execute_refreshes_planner_statistics(migrated_legacy, tmp_path):
    before = migrated_legacy.execute("SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'users'")
    run(migrated_legacy, "--execute", "--report", str(tmp_path / "run.json"), check=True)
    assert json.loads((tmp_path / "run.json").read_text())["analyzed"] is True
    after = migrated_legacy.execute("SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'users'")
    assert after[0][0] > before[0][0]


def wait_for_a_lock_wait(db: ScratchDatabase, query_prefix: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        waiting = db.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock' AND query LIKE %s",
            [db.name, query_prefix + "%"],
        )
        if waiting[0][0]:
            return
        time.sleep(0.05)
    raise AssertionError(f"no session waited on a lock in {query_prefix!r}")


@pytest.mark.postgres
def test_a_preferences_row_created_meanwhile_is_kept_and_the_run_completes(migrated_legacy, tmp_path):
    # The account page creates preferences on a first visit, perhaps while the
    # batch holding that user runs: its plain insert then meets the unique index.
    app = migrated_legacy.connect()
    app.autocommit = False
    app.execute("INSERT INTO user_preferences (user_id, theme) VALUES (5, 'dark')")
    report_path = tmp_path / "run.json"
    proc = start(migrated_legacy, "--execute", "--batch-size", "10", "--report", str(report_path))
    wait_for_a_lock_wait(migrated_legacy, "INSERT INTO user_preferences")
    app.commit()
    app.close()

    _, err = proc.communicate(timeout=60)

    assert proc.returncode == 0, err
    report = json.loads(report_path.read_text())
    assert report["preferences_created"] == 27  # 29 users; user 1 had preferences, user 5 got them meanwhile
    assert report["batches_retried"] == 1
    assert set(prepared_state(migrated_legacy).values()) == {(1, 1, 0)}
    assert migrated_legacy.execute("SELECT theme FROM user_preferences WHERE user_id = 5") == [("dark",)]


@pytest.mark.postgres
def test_analyze_leaves_a_table_another_session_holds_to_it(migrated_legacy, tmp_path):
    # An autovacuum worker holds a table this way while it vacuums it; waiting
    # would cancel it after deadlock_timeout, a second or so on every run.
    vacuum = migrated_legacy.connect()
    vacuum.autocommit = False
    vacuum.execute("LOCK TABLE refresh_tokens IN SHARE UPDATE EXCLUSIVE MODE")
    before = migrated_legacy.execute("SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'users'")
    try:
        run(migrated_legacy, "--execute", "--report", str(tmp_path / "run.json"), check=True)
    finally:
        vacuum.rollback()
        vacuum.close()

    report = json.loads((tmp_path / "run.json").read_text())
    assert report["analyzed"] is True
    assert report["analyze_skipped"] == ["refresh_tokens"]
    assert report["refresh_tokens_deleted"] == 25
    after = migrated_legacy.execute("SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'users'")
    assert after[0][0] > before[0][0]
