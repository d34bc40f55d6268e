"""PostgreSQL's statistics: migrate ANALYZEs what it changed, run_maintenance what went stale; index usage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection

from accounts.models import User
from ops import maintenance


def analyzed(db) -> dict[str, object]:
    with psycopg.connect(host="127.0.0.1", user="postgres", dbname=db.name) as conn:
        return dict(conn.execute("SELECT relname, last_analyze FROM pg_stat_user_tables").fetchall())


@pytest.mark.postgres
def test_migrate_analyzes_the_tables_it_changed(scratch_db):
    result = scratch_db.manage("migrate", "-v", "2")
    assert "Analyzed" in result.stdout
    stats = analyzed(scratch_db)
    for table in ("users", "websocket_sessions", "github_sync_records"):
        assert stats[table] is not None, table
    # Nothing to migrate: nothing analyzed again.
    assert "Analyzed" not in scratch_db.manage("migrate").stdout


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_run_maintenance_analyzes_tables_whose_statistics_went_stale():
    User.objects.bulk_create(User(email=f"u{i}@example.com") for i in range(maintenance.ANALYZE_MIN_CHANGED + 500))
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
    connection.close()  # the backend flushes its counters as it ends
    assert "users" in _wait_for_stale()
    out = StringIO()
    call_command("run_maintenance", "--execute", "--job", "analyze", "--format", "json", stdout=out)
    assert "users" in json.loads(out.getvalue())["jobs"]["analyze"]["items"]
    assert "users" not in maintenance.stale_statistics()


def _wait_for_stale() -> list[str]:
    import time

    for _ in range(50):
        stale = maintenance.stale_statistics()
        if "users" in stale:
            return stale
        time.sleep(0.1)
    return stale


@pytest.mark.postgres
@pytest.mark.django_db
def test_index_usage_lists_each_index_with_size_and_scans():
    out = StringIO()
    call_command("validate_entra_schema", "--index-usage", "--format", "json", stdout=out)
    report = json.loads(out.getvalue())
    by_name = {row["index"]: row for row in report["indexes"]}
    pending = by_name["users_pending_entra_idx"]
    assert pending["table"] == "users" and pending["size_bytes"] > 0 and pending["scans"] >= 0
    assert by_name["users_pkey"]["enforces_constraint"] and not by_name["users_pkey"]["unused"]
    assert "statistics_reset_at" in report
    text = StringIO()
    call_command("validate_entra_schema", "--index-usage", stdout=text)
    assert "users_pending_entra_idx" in text.getvalue() and "index(es)" in text.getvalue()


def test_index_usage_needs_postgres(tmp_path):
    # On either database: a SQLite DATABASE_URL in a process of its own.
    result = subprocess.run(
        [sys.executable, "manage.py", "validate_entra_schema", "--index-usage"],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "SECRET_KEY": "x"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "PostgreSQL" in result.stderr
