"""The whole runbook, as the README gives it, on a database in the legacy state."""

from __future__ import annotations

import fcntl
import json
import os
import struct
import subprocess
import sys
import termios

from tests.support import ROOT
from tests.support.legacy import adopt_legacy_sql, migrate_to_baseline, seed, snapshot


def test_runbook_loses_no_user_project_or_file_at_any_step(scratch_db, tmp_path):
    # PostgreSQL: the legacy application's own DDL, adopted; SQLite: the baseline migrations.
    adopt = scratch_db.vendor == "postgresql"
    (adopt_legacy_sql if adopt else migrate_to_baseline)(scratch_db)
    seed(scratch_db, users=40)
    legacy = snapshot(scratch_db)
    steps = [
        ["migrate", "--fake-initial"] if adopt else ["migrate"],
        ["validate_entra_schema"],
        ["migrate_users_to_entra"],
        ["migrate_users_to_entra", "--execute", "--batch-size", "7", "--report", str(tmp_path / "report.json")],
        ["validate_entra_schema"],
        ["migrate", "accounts", "0001_legacy_baseline"],
        ["migrate"],
        ["validate_entra_schema"],
        ["migrate_users_to_entra", "--execute"],
        ["validate_entra_schema", "--format", "json"],
    ]
    for step in steps:
        result = scratch_db.manage(*step)
        assert snapshot(scratch_db) == legacy, f"rows changed after {' '.join(step)}"
    report = json.loads(result.stdout)
    assert report["ok"] and report["errors"] == 0
    assert json.loads((tmp_path / "report.json").read_text())["users_flagged"] == 44
    assert scratch_db.execute("SELECT count(*) FROM user_preferences") == [(44,)]


def test_progress_is_a_bar_on_a_terminal(migrated_db):
    master, slave = os.openpty()
    # A terminal of 30 rows and 100 columns (a new pty has none, and tqdm draws nothing in 0 columns).
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    env = migrated_db.env()
    env.pop("CI", None)
    migrated_db.execute("INSERT INTO users (email) VALUES ('a@example.com'), ('b@example.com')")
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "migrate_users_to_entra", "--execute", "--batch-size", "1"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        cwd=ROOT,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(master)
    output = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0, output
    assert "2/2" in output and "batch/s" in output  # tqdm's bar
    assert "batch 1/2: users" not in output  # not the plain lines
