"""Syncs on real workers (`manage.py db_worker`, as production starts them) against the local GitHub.

A worker killed mid-sync leaves a running record that another worker takes back and
finishes; two workers never run two syncs of one repository at once.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def env(github, migrated_db, tmp_path):
    key = github.write_private_key(tmp_path / "app-key.pem")
    return {
        "GITHUB_APP_ID": github.app_id,
        "GITHUB_API_URL": github.url,
        "GITHUB_WEB_URL": github.url,
        "GITHUB_APP_PRIVATE_KEY_FILE": str(key),
        "GITHUB_APP_CLIENT_ID": github.client_id,
        "GITHUB_APP_CLIENT_SECRET": github.client_secret,
        "GITHUB_SYNC_STALE_AFTER_S": "3",
        "GITHUB_SYNC_HEARTBEAT_S": "0.5",
        "GITHUB_READ_TIMEOUT_S": "60",
        "TASKS_BACKEND": "database",
    }


def add_project(db, name: str, files: dict[str, str]) -> int:
    if not db.execute("SELECT id FROM users WHERE email = 'alice@example.com'"):
        db.execute(
            "INSERT INTO users (email, full_name, is_active, is_staff, is_superuser, requires_entra_migration, "
            "created_at, updated_at) VALUES ('alice@example.com', 'Alice', %s, %s, %s, %s, %s, %s)",
            [True, False, False, False, "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:00+00:00"],
        )
    (owner,) = db.execute("SELECT id FROM users WHERE email = 'alice@example.com'")[0]
    db.execute(
        "INSERT INTO projects (owner_id, name, description, cloud_provider, iac_tool, created_at, updated_at) "
        "VALUES (%s, %s, '', 'azure', 'terraform', %s, %s)",
        [owner, name, "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:00+00:00"],
    )
    (project,) = db.execute("SELECT id FROM projects WHERE name = %s", [name])[0]
    for path, content in files.items():
        db.execute(
            "INSERT INTO generated_files (project_id, path, content, sha256, created_at) VALUES (%s, %s, %s, %s, %s)",
            [project, path, content, "0" * 64, "2026-01-01T00:00:00+00:00"],
        )
    return project


def worker(db, env) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "db_worker", "--interval", "0.1", "--no-startup-delay"],
        env=db.env(**env),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for(condition, *, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def record_of(db, record_id: int) -> tuple:
    return db.execute("SELECT status, attempts, commit_sha FROM github_sync_records WHERE id = %s", [record_id])[0]


def enqueue(db, env, project: int, folder: str) -> int:
    out = db.manage("sync_project_to_github", str(project), "--repo", "acme/infra", "--path", folder, **env).stdout
    return int(out.split("#")[1].split()[0])


def stop(*workers: subprocess.Popen) -> None:
    for process in workers:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in workers:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def test_a_worker_killed_mid_sync_leaves_a_record_another_worker_finishes(github, migrated_db, env):
    github.create_repo("acme", "infra")
    project = add_project(migrated_db, "web", {"main.tf": "# main\n", "net/vnet.tf": "# vnet\n"})
    record = enqueue(migrated_db, env, project, "web")
    github.slow(20, method="POST", path="/repos/acme/infra/git/commits")
    first = worker(migrated_db, env)
    try:
        wait_for(lambda: github.count("POST", "/repos/acme/infra/git/commits"), what="the commit request")
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        assert record_of(migrated_db, record)[0] == "running"
        github.faults.clear()
        tasks = migrated_db.execute("SELECT count(*) FROM django_tasks_database_dbtaskresult")[0][0]

        second = worker(migrated_db, env)
        try:
            status, attempts, commit = wait_for(
                lambda: (r := record_of(migrated_db, record))[0] in ("succeeded", "failed") and r,
                what="the take-back",
            )
        finally:
            stop(second)
    finally:
        stop(first)
    assert (status, attempts) == ("succeeded", 2)
    assert commit == github.head("acme", "infra", "main")
    assert set(github.files("acme", "infra")) == {"README.md", "web/main.tf", "web/net/vnet.tf"}
    assert migrated_db.execute("SELECT count(*) FROM django_tasks_database_dbtaskresult")[0][0] == tasks


def test_two_workers_never_sync_one_repository_at_once(github, migrated_db, env):
    github.create_repo("acme", "infra")
    records = [
        enqueue(migrated_db, env, add_project(migrated_db, f"p{n}", {"main.tf": f"# {n}\n"}), f"p{n}")
        for n in range(4)
    ]
    for _ in range(4):
        github.slow(0.3, method="PATCH", path="/repos/acme/infra/git/refs/heads/main")
    workers = [worker(migrated_db, env), worker(migrated_db, env)]
    try:
        wait_for(
            lambda: all(record_of(migrated_db, r)[0] == "succeeded" for r in records), timeout=60, what="four syncs"
        )
    finally:
        stop(*workers)
    spans = sorted(
        migrated_db.execute(
            "SELECT started_at, finished_at FROM github_sync_records WHERE id IN (%s, %s, %s, %s)", records
        )
    )
    for (_, finished), (started, _) in itertools.pairwise(spans):
        assert str(finished) <= str(started), spans  # one after the other
    assert github.count("PATCH", "/repos/acme/infra/git/refs/heads/main") == 4  # no ref update had to be redone
    assert len(github.commits("acme", "infra")) == 5


def test_sync_project_to_github_waits_for_the_worker_and_exits_by_the_outcome(github, migrated_db, env):
    github.create_repo("acme", "infra")
    github.create_repo("acme", "uninstalled", installed=False)
    project = add_project(migrated_db, "web", {"main.tf": "# main\n"})
    process = worker(migrated_db, env)
    try:
        ok = migrated_db.manage("sync_project_to_github", str(project), "--repo", "acme/infra", "--wait", **env)
        assert f"succeeded at commit {github.head('acme', 'infra', 'main')}" in ok.stdout
        again = migrated_db.manage("sync_project_to_github", str(project), "--wait", **env)
        assert "unchanged" in again.stdout
        failed = migrated_db.manage(
            "sync_project_to_github", str(project), "--repo", "acme/uninstalled", "--wait", check=False, **env
        )
    finally:
        stop(process)
    assert failed.returncode == 1
    assert "not installed" in failed.stderr
