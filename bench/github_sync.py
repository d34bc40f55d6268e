"""GitHub sync figures against the local GitHub, with real `manage.py db_worker` processes.

    DEVTOOLS=true .venv/bin/python bench/github_sync.py [--files 1000] [--projects 100] [--database-url URL]

1. A project of ``--files`` files (5 MB in all): time from enqueue to ``succeeded`` with one worker
   running, the API calls and writes it made (constant in the file count: no blob for inline text).
2. The unchanged re-sync: time and writes (none).
3. ``--projects`` projects, each to its own repository, synced by two workers: the total time and the
   most content-creating requests GitHub saw in any 60 s and in the whole run, against the budget
   (80 a minute, 500 an hour by default), which paces the run.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devtools.local_github import LocalGitHub  # needs no Django

WORK = Path(tempfile.mkdtemp(prefix="bench-github-"))
GITHUB = LocalGitHub().start()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--projects", type=int, default=100)
    parser.add_argument("--database-url", default=f"sqlite:///{WORK / 'bench.sqlite3'}")
    args = parser.parse_args()
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": args.database_url,
        "SECRET_KEY": "bench",
        "DEVTOOLS": "true",
        "TASKS_BACKEND": "database",
        "GITHUB_APP_ID": GITHUB.app_id,
        "GITHUB_API_URL": GITHUB.url,
        "GITHUB_WEB_URL": GITHUB.url,
        "GITHUB_APP_PRIVATE_KEY_FILE": str(GITHUB.write_private_key(WORK / "app-key.pem")),
        "GITHUB_APP_CLIENT_ID": GITHUB.client_id,
        "GITHUB_APP_CLIENT_SECRET": GITHUB.client_secret,
    }
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    workers = [worker(env)]
    try:
        first_sync(args.files)
        workers.append(worker(env))
        many_projects(args.projects)
    finally:
        for process in workers:
            process.send_signal(signal.SIGTERM)
        for process in workers:
            process.wait(timeout=30)
        GITHUB.stop()


def worker(env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "db_worker", "--interval", "0.05", "--no-startup-delay"],
        env={**os.environ, **env},
        cwd=ROOT,
    )


def make_project(name: str, files: int, size: int):
    from accounts.models import User
    from integrations.github import services
    from projects.models import GeneratedFile, Project

    owner, _ = User.objects.get_or_create(email="bench@example.com")
    project = Project.objects.create(owner=owner, name=name, cloud_provider="azure", iac_tool="terraform")
    line = f'resource "azurerm_resource_group" "{name}" {{ location = "westeurope" }}\n'
    body = (line * (size // len(line) + 1))[:size]
    GeneratedFile.objects.bulk_create(
        GeneratedFile(project=project, path=f"modules/m{n // 50}/file{n}.tf", content=body, sha256="0" * 64)
        for n in range(files)
    )
    GITHUB.create_repo("bench", name)
    services.set_mapping(project=project, owner="bench", name=name, branch="main", path="infra")
    return project


def timed_sync(project) -> tuple[float, object]:
    from integrations.github import services

    started = time.perf_counter()
    record = services.request_sync(project=project)
    while not record.is_final:
        time.sleep(0.005)
        record.refresh_from_db()
    return time.perf_counter() - started, record


def first_sync(files: int) -> None:
    project = make_project("big", files, 5 * 1024 * 1024 // files)
    time.sleep(1.0)  # the worker is up and polling
    writes = GITHUB.write_count()
    seconds, record = timed_sync(project)
    if record.status != "succeeded":
        raise SystemExit(f"the first sync ended {record.status}: {record.last_error}")
    print(
        f"first sync of {files} files ({record.bytes_count / 1e6:.1f} MB): {seconds:.2f} s enqueue to {record.status}; "
        f"{record.api_calls} API calls, {GITHUB.write_count() - writes} writes, "
        f"{GITHUB.count('POST', '/repos/*/git/blobs')} blobs"
    )
    writes = GITHUB.write_count()
    seconds, record = timed_sync(project)
    print(
        f"unchanged re-sync: {seconds * 1000:.0f} ms enqueue to {record.status}; {record.api_calls} API calls, "
        f"{GITHUB.write_count() - writes} writes"
    )


def many_projects(count: int) -> None:
    from integrations.github import services

    projects = [make_project(f"p{n}", 10, 2000) for n in range(count)]
    start_writes = GITHUB.write_count()
    started = time.perf_counter()
    records = [services.request_sync(project=p) for p in projects]
    samples: deque[tuple[float, int]] = deque()
    worst = 0
    while True:
        now, writes = time.perf_counter(), GITHUB.write_count()
        samples.append((now, writes))
        while samples and now - samples[0][0] > 60:
            samples.popleft()
        worst = max(worst, writes - samples[0][1])
        for record in records:
            if not record.is_final:
                record.refresh_from_db()
        if all(r.is_final for r in records):
            break
        time.sleep(0.25)
    statuses = {r.status for r in records}
    print(
        f"{count} projects by two workers: {time.perf_counter() - started:.0f} s, statuses {sorted(statuses)}; "
        f"at most {worst} writes in any 60 s (budget {os.environ.get('GITHUB_WRITES_PER_MINUTE', 80)}), "
        f"{GITHUB.write_count() - start_writes} in all (budget 500 an hour)"
    )


if __name__ == "__main__":
    main()
