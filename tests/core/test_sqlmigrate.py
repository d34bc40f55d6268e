"""``sqlmigrate`` shows what ``migrate`` runs: on PostgreSQL the lock_timeout first, validations after the COMMIT."""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import override_settings

ROOT = Path(__file__).resolve().parents[2]

postgres = pytest.mark.postgres


def sqlmigrate(*args: str) -> list[str]:
    out = StringIO()
    call_command("sqlmigrate", *args, stdout=out)
    return out.getvalue().splitlines()


def squawk(tmp_path: Path, lines: list[str]) -> subprocess.CompletedProcess:
    path = tmp_path / "migration.sql"
    path.write_text("\n".join(lines) + "\n")
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "squawk"),
            "--config",
            str(ROOT / ".squawk.toml"),
            "--reporter",
            "gcc",
            path,
        ],
        capture_output=True,
        text=True,
        check=False,
    )


@postgres
@pytest.mark.django_db
def test_an_atomic_migration_sets_the_lock_timeout_then_validates_after_its_commit():
    lines = sqlmigrate("integrations", "0001")

    assert lines[:2] == ["SET lock_timeout = 300;", "BEGIN;"]
    commit = lines.index("COMMIT;")
    added = [line for line in lines[:commit] if "FOREIGN KEY" in line]
    assert len(added) == 2 and all(line.endswith(" NOT VALID;") for line in added)
    assert not any("VALIDATE CONSTRAINT" in line for line in lines[:commit])
    validated = [line for line in lines[commit:] if "VALIDATE CONSTRAINT" in line]
    assert validated == [
        'ALTER TABLE "github_sync_records" VALIDATE CONSTRAINT "github_sync_records_project_id_004098cb_fk_projects_id";',
        'ALTER TABLE "github_sync_records" VALIDATE CONSTRAINT "github_sync_records_requested_by_id_669788c2_fk_users_id";',
    ]


@postgres
@pytest.mark.django_db
@override_settings(MIGRATION_LOCK_TIMEOUT_MS=150)
def test_a_migration_without_a_transaction_has_the_lock_timeout_and_no_begin():
    lines = sqlmigrate("accounts", "0005")

    assert lines[0] == "SET lock_timeout = 150;"
    assert "BEGIN;" not in lines and "COMMIT;" not in lines
    assert (
        'CREATE INDEX CONCURRENTLY "users_entra_tenant_idx" ON "users" ("azure_tenant_id", "azure_entra_id");' in lines
    )


@postgres
@pytest.mark.django_db
def test_going_back_validates_the_foreign_key_it_adds_back_after_the_commit():
    lines = sqlmigrate("accounts", "0007", "--backwards")

    commit = lines.index("COMMIT;")
    assert any(line.endswith(" NOT VALID;") for line in lines[:commit])
    assert lines[-1] == (
        'ALTER TABLE "entra_link_audits" VALIDATE CONSTRAINT "entra_link_audits_user_id_8e5baf24_fk_users_id";'
    )


def test_on_sqlite_it_is_djangos_output(tmp_path):
    # On either database: a SQLite DATABASE_URL in a process of its own.
    result = subprocess.run(
        [sys.executable, "manage.py", "sqlmigrate", "realtime", "0001"],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "SECRET_KEY": "x"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line and not line.startswith("--")]

    assert lines[0] == "BEGIN;" and lines[-1] == "COMMIT;"
    assert not any("lock_timeout" in line or "VALIDATE" in line for line in lines)


@postgres
@pytest.mark.django_db
def test_squawk_passes_the_output_and_flags_what_it_replaced(tmp_path):
    lines = sqlmigrate("integrations", "0001")
    passed = squawk(tmp_path, lines)
    assert passed.returncode == 0, passed.stdout

    # As it was: no lock_timeout in the SQL, validations inside the transaction.
    commit = lines.index("COMMIT;")
    validations = [line for line in lines[commit:] if "VALIDATE CONSTRAINT" in line]
    before = [*lines[1:commit], *validations, "COMMIT;"]
    found = squawk(tmp_path, before)
    assert found.returncode != 0
    assert found.stdout.count("constraint-missing-not-valid") == 2
    assert "require-lock-timeout" in found.stdout
