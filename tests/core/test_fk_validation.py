"""New foreign keys are validated after the transaction that added them (PostgreSQL).

``ADD CONSTRAINT … NOT VALID`` takes a SHARE ROW EXCLUSIVE lock, which blocks
writers, until its transaction ends; ``VALIDATE CONSTRAINT`` scans the table
under SHARE UPDATE EXCLUSIVE, which does not. The scratch migrations of
``core`` (``tests/core/fk_validation_migrations``) make ``fkv_child.parent_id``
a foreign key to ``fkv_parent``, on a table of 100,000 rows, through
``migrate`` as an operator runs it.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from io import StringIO

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.test import override_settings

from core.db.backends.postgresql.schema import DatabaseSchemaEditor, ForeignKeyViolated
from tests.support.scratch import leave_an_orphan_behind_a_not_valid_foreign_key

pytestmark = pytest.mark.postgres

ROWS = 100_000
FK = "fkv_child_parent_id_"  # the start of the constraint's name; Django adds a hash


def conninfo() -> str:
    db = connection.settings_dict
    return psycopg.conninfo.make_conninfo(
        dbname=db["NAME"],
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"] or "postgres",
        password=db["PASSWORD"] or None,
    )


def sql(statement: str, params: list | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def constraint() -> tuple[str, bool] | None:
    rows = sql(
        "SELECT conname, convalidated FROM pg_constraint WHERE conrelid = 'fkv_child'::regclass AND contype = 'f'"
    )
    return rows[0] if rows else None


@pytest.fixture
def fkv_tables(transactional_db):
    """fkv_parent and fkv_child, as scratch migration core 0001 makes them; gone afterwards."""
    with override_settings(MIGRATION_MODULES={"core": "tests.core.fk_validation_migrations"}):
        call_command("migrate", "core", "0001", verbosity=0)
        try:
            yield
        finally:
            call_command("migrate", "core", "zero", verbosity=0)


def fill(rows: int) -> None:
    sql("INSERT INTO fkv_parent (id) SELECT generate_series(1, %s)", [rows])
    sql(
        "INSERT INTO fkv_child (parent_id, note) SELECT n * 7919 %% %s + 1, md5(n::text) FROM generate_series(1, %s) n",
        [rows, rows],
    )
    sql("ANALYZE fkv_parent, fkv_child")


def write(conninfo: str, stop, results) -> None:
    """Insert and update fkv_child rows every 2 ms; report the longest wait of one write."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        results.put("ready")
        longest, writes = 0.0, 0
        while not stop.is_set():
            writes += 1
            for statement, params in (
                ("INSERT INTO fkv_child (parent_id, note) VALUES (%s, 'writer')", [writes % 1000 + 1]),
                ("UPDATE fkv_child SET note = 'updated' WHERE id = %s", [writes]),
            ):
                started = time.perf_counter()
                conn.execute(statement, params)
                longest = max(longest, time.perf_counter() - started)
            time.sleep(0.002)
    results.put({"longest": longest, "writes": writes * 2})


WATCH = (
    "SELECT array(SELECT l.mode FROM pg_locks l WHERE l.pid = a.pid AND l.relation = 'fkv_child'::regclass AND l.granted), "
    "       EXISTS (SELECT 1 FROM pg_locks w WHERE w.relation = 'fkv_child'::regclass AND NOT w.granted) "
    "FROM pg_stat_activity a "
    "WHERE a.state = 'active' AND a.query LIKE '%VALIDATE CONSTRAINT%' AND a.pid <> pg_backend_pid()"
)


def watch(conninfo: str, stop, results) -> None:
    """While a VALIDATE CONSTRAINT runs: the locks its session holds on fkv_child, whether anyone waits there."""
    modes: set[str] = set()
    waited, first, last = False, None, None
    with psycopg.connect(conninfo, autocommit=True) as conn:
        results.put("ready")
        while not stop.is_set():
            for held, waiting in conn.execute(WATCH).fetchall():
                last = time.perf_counter()
                first = first or last
                modes.update(held)
                waited |= waiting
    results.put({"modes": modes, "writer_waited": waited, "seen_for": (last - first) if first else 0.0})


class Beside:
    """Runs ``write`` or ``watch`` in a process of its own, so that it shares no GIL with migrate."""

    def __init__(self, target) -> None:
        context = multiprocessing.get_context("fork")
        self.stop, self.results = context.Event(), context.Queue()
        self.process = context.Process(target=target, args=(conninfo(), self.stop, self.results), daemon=True)
        self.process.start()
        assert self.results.get(timeout=10) == "ready"

    def finish(self) -> dict:
        self.stop.set()
        result = self.results.get(timeout=10)
        self.process.join(timeout=10)
        return result


@pytest.fixture
def validate_in_the_same_transaction(monkeypatch):
    """The behaviour before: VALIDATE CONSTRAINT right after ADD CONSTRAINT, in its transaction."""
    execute = DatabaseSchemaEditor.execute

    def execute_then_validate(self, sql, params=()):
        execute(self, sql, params)
        if self.deferred_validations and not self.collect_sql:
            self.validate_foreign_keys([self.deferred_validations.pop()])

    monkeypatch.setattr(DatabaseSchemaEditor, "execute", execute_then_validate)


@pytest.mark.parametrize("same_transaction", [False, True], ids=["after-commit", "same-transaction-before"])
def test_writers_do_not_wait_while_a_new_foreign_key_is_validated(fkv_tables, request, same_transaction):
    if same_transaction:
        request.getfixturevalue("validate_in_the_same_transaction")
    fill(ROWS)
    # Only so that checking 100,000 rows takes long enough (~0.3 s instead of ~0.03 s) to tell a
    # writer's wait from noise: the plan changes how long the scan takes, not the locks it holds.
    for setting in ("enable_hashjoin", "enable_mergejoin"):
        sql(f"SET {setting} = off")
    sql("SET max_parallel_workers_per_gather = 0")
    writer, watcher = Beside(write), Beside(watch)
    time.sleep(0.2)
    try:
        with override_settings(MIGRATION_MODULES={"core": "tests.core.fk_validation_migrations"}):
            call_command("migrate", "core", "0002", stdout=StringIO())
        time.sleep(0.2)
    finally:
        wrote, watched = writer.finish(), watcher.finish()
        sql("RESET ALL")
    longest, scan = wrote["longest"], watched["seen_for"]
    print(
        f"\nvalidation of {ROWS} rows: {scan * 1000:.0f} ms; longest of {wrote['writes']} writes: {longest * 1000:.1f} ms"
    )

    assert constraint()[0].startswith(FK) and constraint()[1], "the foreign key is validated"
    assert scan > 0.05, "the validation was seen running"
    assert wrote["writes"] > 50
    if same_transaction:
        # The test can fail: each of the checks below catches the behaviour before.
        assert "ShareRowExclusiveLock" in watched["modes"]
        assert watched["writer_waited"]
        assert longest >= scan / 4
    else:
        assert "ShareUpdateExclusiveLock" in watched["modes"]
        assert "ShareRowExclusiveLock" not in watched["modes"], "ADD CONSTRAINT's lock is held through the scan"
        assert not watched["writer_waited"], "a writer waited while the rows were checked"
        assert longest < scan / 4, f"a write waited {longest * 1000:.0f} ms, the scan took {scan * 1000:.0f} ms"


def test_rows_that_break_a_new_foreign_key_stop_migrate_naming_it_and_the_next_run_validates_it(fkv_tables):
    fill(100)
    sql("INSERT INTO fkv_child (parent_id) VALUES (424242)")
    with (
        override_settings(MIGRATION_MODULES={"core": "tests.core.fk_validation_migrations"}),
        pytest.raises(CommandError) as failed,
    ):
        call_command("migrate", "core", "0002", stdout=StringIO())

    name, validated = constraint()
    message = str(failed.value)
    assert f"foreign key {name} on fkv_child stays NOT VALID" in message
    assert 'Key (parent_id)=(424242) is not present in table "fkv_parent"' in message
    assert not validated
    # Recorded: its transaction committed. Running it again must not try to apply it again.
    assert ("core", "0002_child_parent_foreign_key") in MigrationRecorder(connection).applied_migrations()

    # Every run checks again what is left NOT VALID: it fails as long as the rows are there...
    with override_settings(MIGRATION_MODULES={"core": "tests.core.fk_validation_migrations"}):
        with pytest.raises(CommandError, match=name):
            call_command("migrate", "core", stdout=StringIO())
        # ... and validates the constraint once they are fixed.
        sql("DELETE FROM fkv_child WHERE parent_id = 424242")
        out = StringIO()
        call_command("migrate", "core", stdout=out)
    assert "No migrations to apply" in out.getvalue()
    assert f"Validating foreign key {name} on fkv_child... OK" in out.getvalue()
    assert constraint() == (name, True)


def test_a_schema_editor_on_its_own_validates_on_exit_after_the_commit(fkv_tables):
    from django.db import models
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.state import ProjectState

    fill(1000)
    with override_settings(MIGRATION_MODULES={"core": "tests.core.fk_validation_migrations"}):
        loader = MigrationLoader(connection)
    state: ProjectState = loader.project_state(("core", "0001_initial"))
    child = state.apps.get_model("core", "child")
    old = child._meta.get_field("parent")
    new = models.ForeignKey(state.apps.get_model("core", "parent"), models.DO_NOTHING, db_index=False)
    new.set_attributes_from_name("parent")
    new.model = child

    with connection.schema_editor() as editor:
        editor.alter_field(child, old, new)
        assert constraint()[1] is False, "added NOT VALID"
        assert connection.in_atomic_block
    assert constraint()[1] is True
    assert not connection.in_atomic_block

    with connection.schema_editor() as editor:
        editor.alter_field(child, new, old)
    sql("INSERT INTO fkv_child (parent_id) VALUES (424242)")
    with pytest.raises(ForeignKeyViolated, match="424242"), connection.schema_editor() as editor:
        editor.alter_field(child, old, new)
    assert constraint()[1] is False, "committed, NOT VALID"


def test_a_validation_that_waits_too_long_for_its_lock_is_retried(fkv_tables, monkeypatch):
    """A VACUUM or ANALYZE holds SHARE UPDATE EXCLUSIVE; VALIDATE waits MIGRATION_LOCK_TIMEOUT_MS, then tries again."""
    fill(1000)
    vacuum = psycopg.connect(conninfo())
    validate = DatabaseSchemaEditor.validate_foreign_key
    calls = []

    def validate_while_vacuum_runs(self, table, name):
        calls.append(name)
        if len(calls) == 1:  # a lock that writers do not mind, for twice the lock timeout
            vacuum.execute("LOCK TABLE fkv_child IN SHARE UPDATE EXCLUSIVE MODE")
            threading.Timer(0.6, vacuum.rollback).start()
        validate(self, table, name)

    monkeypatch.setattr(DatabaseSchemaEditor, "validate_foreign_key", validate_while_vacuum_runs)
    out, err = StringIO(), StringIO()
    try:
        with override_settings(MIGRATION_MODULES={"core": "tests.core.fk_validation_migrations"}):
            call_command("migrate", "core", "0002", stdout=out, stderr=err)
    finally:
        time.sleep(0.7)
        vacuum.close()

    assert "Lock not granted within 300 ms" in err.getvalue()
    name, validated = constraint()
    assert validated
    assert f"Validating foreign key {name} on fkv_child... OK" in out.getvalue()
    assert len(calls) >= 2
    assert out.getvalue().count("Applying core.0002_child_parent_foreign_key... OK") == 1


def test_migrate_validates_a_foreign_key_left_not_valid_once_its_rows_are_fixed(scratch_db):
    """As a validation that failed leaves it: the operator's next runs of migrate fail, then validate it."""
    db = scratch_db
    db.manage("migrate")
    fk = leave_an_orphan_behind_a_not_valid_foreign_key(db)

    failed = db.manage("migrate", check=False)
    assert failed.returncode == 1
    assert f"foreign key {fk} on generated_files stays NOT VALID" in failed.stderr
    assert 'Key (project_id)=(4242) is not present in table "projects"' in failed.stderr
    assert "Traceback" not in failed.stderr
    report = db.manage("validate_entra_schema", check=False)
    assert report.returncode == 1 and f"{fk} is NOT VALID" in report.stdout

    db.execute("DELETE FROM generated_files WHERE project_id = 4242")
    done = db.manage("migrate")
    assert f"Validating foreign key {fk} on generated_files... OK" in done.stdout
    assert db.manage("validate_entra_schema", check=False).returncode == 0
