"""Benchmark the Entra migration runbook on a large legacy PostgreSQL database.

    .venv/bin/python bench/migrate_users.py                  # 1,000,000 users
    .venv/bin/python bench/migrate_users.py --users 100000

In one run it:
1. builds a legacy database from ../shared/legacy/legacy_schema_postgres.sql
   with N users, a project, a generated file and a refresh token each;
2. adopts it (``migrate --fake-initial``) while another process keeps writing
   to ``users``, and reports the longest time one write waited;
3. times ``validate_entra_schema`` on the migrated database;
4. on identical copies of it, times ``migrate_users_to_entra --execute`` (with
   its peak memory), hand-written set-based SQL doing the same work, and a
   naive per-row ORM loop (on the first ``--naive-users`` users, then
   extrapolated per user: the full loop takes the better part of an hour).

Needs PostgreSQL (``--server``, default the local one); drops its databases
at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
LEGACY_SQL = ROOT.parent / "shared" / "legacy" / "legacy_schema_postgres.sql"
PY = sys.executable

HAND_WRITTEN_SQL = """
BEGIN;
INSERT INTO user_preferences (user_id)
    SELECT u.id FROM users u WHERE NOT EXISTS (SELECT 1 FROM user_preferences p WHERE p.user_id = u.id);
UPDATE users SET requires_entra_migration = TRUE
    WHERE azure_entra_id IS NULL AND requires_entra_migration = FALSE;
DELETE FROM refresh_tokens;
COMMIT;
ANALYZE users, user_preferences, refresh_tokens;
"""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class Server:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def db_url(self, name: str) -> str:
        return f"{self.url}/{name}"

    def admin(self):
        return psycopg.connect(self.db_url("postgres").replace("postgres://", "postgresql://"), autocommit=True)

    def connect(self, name: str):
        return psycopg.connect(self.db_url(name).replace("postgres://", "postgresql://"), autocommit=True)

    def create(self, name: str, template: str | None = None) -> None:
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))

    def drop(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(url: str, *args: str) -> tuple[float, str]:
    """Run manage.py; return (seconds, stdout)."""
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "bench", "DEBUG": "false"}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [PY, str(ROOT / "manage.py"), *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = proc.communicate()
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{out}\n{err}")
    return elapsed, out


def manage_with_memory(url: str, *args: str) -> tuple[float, float, str]:
    """Run manage.py; return (seconds, peak RSS of the process in MB, output)."""
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "bench", "DEBUG": "false"}
    with tempfile.NamedTemporaryFile("w", suffix=".out", delete=False) as out:
        out_path = Path(out.name)
        started = time.perf_counter()
        proc = subprocess.Popen([PY, str(ROOT / "manage.py"), *args], env=env, cwd=ROOT, stdout=out, stderr=out)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - started
    text = out_path.read_text()
    out_path.unlink()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{text}")
    return elapsed, usage.ru_maxrss / 1024, text


class Writer(threading.Thread):
    """The application: updates random users every 5 ms; records the slowest write."""

    def __init__(self, server: Server, name: str, users: int) -> None:
        super().__init__(daemon=True)
        self.conn = server.connect(name)
        self.users = users
        self.stop = threading.Event()
        self.longest = 0.0
        self.writes = 0

    def run(self) -> None:
        rng = random.Random(1)
        while not self.stop.is_set():
            started = time.perf_counter()
            self.conn.execute(
                "UPDATE users SET last_login_at = now() WHERE id = %s", [rng.randint(1, max(self.users, 1))]
            )
            self.longest = max(self.longest, time.perf_counter() - started)
            self.writes += 1
            time.sleep(0.005)

    def finish(self) -> None:
        self.stop.set()
        self.join()
        self.conn.close()


def build_legacy(server: Server, name: str, users: int) -> float:
    server.create(name)
    started = time.perf_counter()
    with server.connect(name) as conn:
        conn.execute(LEGACY_SQL.read_text())
    # The legacy application's own schema, so seeding goes through the baseline state's columns.
    manage(
        server.db_url(name),
        "seed_legacy_data",
        "--users",
        str(users),
        "--projects-per-user",
        "1",
        "--files-per-project",
        "1",
        "--tokens-per-user",
        "1",
    )
    with server.connect(name) as conn:
        conn.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


def hand_written(server: Server, name: str) -> float:
    with server.connect(name) as conn:
        started = time.perf_counter()
        conn.execute(HAND_WRITTEN_SQL)
        return time.perf_counter() - started


def naive_loop(server: Server, name: str, limit: int) -> tuple[float, int]:
    env = {**os.environ, "DATABASE_URL": server.db_url(name), "SECRET_KEY": "bench", "DEBUG": "false"}
    out = subprocess.run(
        [PY, str(ROOT / "bench" / "naive_loop.py"), str(limit)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = json.loads(out)
    return result["seconds"], result["users"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--naive-users", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--keep", action="store_true", help="Keep the databases afterwards.")
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    args = parser.parse_args()
    server = Server(args.server)
    n = args.users
    base, migrated = f"bench_legacy_{n}", f"bench_migrated_{n}"
    copies = [f"bench_cmd_{n}", f"bench_sql_{n}", f"bench_naive_{n}"]
    results: dict = {"users": n, "batch_size": args.batch_size}

    log(f"building the legacy database with {n:,} users")
    results["build_s"] = round(build_legacy(server, base, n), 1)
    log(f"built in {results['build_s']}s")

    log("migrate --fake-initial while a writer updates users")
    writer = Writer(server, base, n)
    writer.start()
    elapsed, _ = manage(server.db_url(base), "migrate", "--fake-initial", "--no-input")
    writer.finish()
    results["migrate_s"] = round(elapsed, 2)
    results["migrate_longest_write_wait_s"] = round(writer.longest, 3)
    results["migrate_writes_during"] = writer.writes
    log(f"migrate: {elapsed:.1f}s; longest write wait {writer.longest * 1000:.0f} ms over {writer.writes} writes")

    with server.connect(base) as conn:
        conn.execute("VACUUM ANALYZE")
    server.create(migrated, template=base)
    for copy in copies:
        server.create(copy, template=migrated)

    validate_s, _ = manage(server.db_url(migrated), "validate_entra_schema")
    results["validate_s"] = round(validate_s, 2)
    log(f"validate_entra_schema: {validate_s:.2f}s (process included)")

    log("migrate_users_to_entra --execute")
    report_path = Path(tempfile.mkstemp(suffix=".json")[1])
    cmd_s, rss_mb, _ = manage_with_memory(
        server.db_url(copies[0]),
        "migrate_users_to_entra",
        "--execute",
        "--batch-size",
        str(args.batch_size),
        "--report",
        str(report_path),
    )
    report = json.loads(report_path.read_text())
    report_path.unlink()
    results["command_process_s"] = round(cmd_s, 2)
    # The work itself, without the interpreter's and Django's start-up.
    cmd_s = report["timings_s"]["total"]
    results["command_s"] = round(cmd_s, 2)
    results["command_peak_rss_mb"] = round(rss_mb, 1)
    results["command_users_per_s"] = round(n / cmd_s)
    log(
        f"command: {cmd_s:.2f}s of work, {results['command_process_s']:.2f}s with start-up "
        f"({n / cmd_s:,.0f} users/s), peak RSS {rss_mb:.0f} MB"
    )

    log("hand-written set-based SQL")
    sql_s = hand_written(server, copies[1])
    results["hand_sql_s"] = round(sql_s, 2)
    log(f"hand-written SQL: {sql_s:.2f}s")

    log(f"naive per-row ORM loop on the first {args.naive_users:,} users")
    naive_s, naive_n = naive_loop(server, copies[2], args.naive_users)
    per_user = naive_s / max(naive_n, 1)
    results["naive_measured_users"] = naive_n
    results["naive_measured_s"] = round(naive_s, 2)
    results["naive_extrapolated_s"] = round(per_user * n, 1)
    log(f"naive loop: {naive_n:,} users in {naive_s:.1f}s -> {per_user * n:,.0f}s extrapolated to {n:,}")

    results["command_vs_hand_sql"] = round(cmd_s / sql_s, 2)
    results["naive_vs_command"] = round(per_user * n / cmd_s, 1)
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if not args.keep:
        for name in (base, migrated, *copies):
            server.drop(name)


if __name__ == "__main__":
    main()
