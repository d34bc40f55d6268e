"""Benchmark the Entra migration runbook on a large legacy PostgreSQL database.

    .venv/bin/python bench/migrate_users.py                  # 1,000,000 users
    .venv/bin/python bench/migrate_users.py --users 100000
    .venv/bin/python bench/migrate_users.py --shape messy    # 200,000 users

In one run it:
1. builds a legacy database from ../shared/legacy/legacy_schema_postgres.sql
   with N users of one shape: ``uniform`` (the default) gives each a project,
   a generated file and a refresh token; ``messy`` gives each two refresh
   tokens, a project (with a generated file) to every third user, makes every
   50th inactive and every 1,000th a case-insensitive duplicate of the email
   before it;
2. adopts it (``migrate --fake-initial``) while another process keeps writing
   to ``users``, and reports the longest time one write waited;
3. times ``validate_entra_schema`` on the migrated database;
4. on identical copies of it, times ``migrate_users_to_entra --execute`` (with
   its peak memory) and hand-written set-based SQL doing the same work, in
   turn, ``--rounds`` times (each on a fresh copy after a CHECKPOINT, so that
   neither inherits the other's dirty buffers or full-page writes; medians
   are reported, with the server's CPU time for each, which other load on a
   shared machine hardly changes), and a naive per-row ORM loop (on the first
   ``--naive-users`` users, then extrapolated per user: the full loop takes
   the better part of an hour; 0 skips it).

Needs PostgreSQL (``--server``, default the local one); drops its databases
at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Shape:
    users: int  # the default --users
    tokens_per_user: int
    project_every: int  # every k-th user owns a project (with one generated file)
    inactive_every: int = 0  # 0: nobody
    collision_every: int = 0  # every k-th user's email is the one before it in other case


SHAPES = {
    "uniform": Shape(users=1_000_000, tokens_per_user=1, project_every=1),
    "messy": Shape(users=200_000, tokens_per_user=2, project_every=3, inactive_every=50, collision_every=1000),
}


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


def manage(url: str, *args: str, devtools: bool = False) -> tuple[float, str]:
    """Run manage.py; return (seconds, stdout). ``devtools``: with the seeders installed."""
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "bench", "DEBUG": "false"}
    if devtools:
        env["DEVTOOLS"] = "true"
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


class ServerCPU(threading.Thread):
    """CPU seconds the server's backends spend on one database, read from /proc.

    Wall time on a shared machine depends on what else runs; the server's CPU
    time for the same work hardly does. Only for a server on this host; None
    when its processes cannot be read. Polled, so the last ``interval`` of
    each backend goes uncounted, alike for whatever is measured.
    """

    def __init__(self, server: Server, name: str, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.server, self.name, self.interval = server, name, interval
        self.stop = threading.Event()
        self.last: dict[int, float] = {}
        self.readable = True

    @staticmethod
    def cpu_s(pid: int) -> float | None:
        try:
            if b"postgres" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                return None
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def run(self) -> None:
        with self.server.admin() as conn:
            while not self.stop.is_set():
                pids = conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client backend'",
                    [self.name],
                ).fetchall()
                for (pid,) in pids:
                    used = self.cpu_s(pid)
                    if used is None:
                        self.readable = False
                    else:
                        self.last[pid] = used
                time.sleep(self.interval)

    def __enter__(self) -> ServerCPU:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.join()

    @property
    def seconds(self) -> float | None:
        return sum(self.last.values()) if self.readable and self.last else None


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


def build_legacy(server: Server, name: str, users: int, shape: Shape) -> float:
    server.create(name)
    started = time.perf_counter()
    with server.connect(name) as conn:
        conn.execute(LEGACY_SQL.read_text())
    # The legacy application's own schema, so seeding goes through the baseline state's columns.
    uniform = shape.project_every == 1
    manage(
        server.db_url(name),
        "seed_legacy_data",
        "--users",
        str(users),
        "--projects-per-user",
        "1" if uniform else "0",
        "--files-per-project",
        "1" if uniform else "0",
        "--tokens-per-user",
        str(shape.tokens_per_user),
        devtools=True,
    )
    with server.connect(name) as conn:
        if not uniform:
            # What seed_legacy_data would insert for these owners only.
            conn.execute(
                "INSERT INTO projects (owner_id, name, description, cloud_provider, iac_tool) "
                "SELECT id, 'project-0', 'Generated infrastructure', "
                "CASE WHEN id % 3 = 0 THEN 'aws' WHEN id % 3 = 1 THEN 'azure' ELSE 'gcp' END, "
                "CASE WHEN id % 2 = 0 THEN 'terraform' ELSE 'bicep' END "
                f"FROM users WHERE id % {shape.project_every} = 0"
            )
            conn.execute(
                "INSERT INTO generated_files (project_id, path, content, sha256) "
                "SELECT id, 'main-0.tf', 'resource \"example\" \"p' || id || '\" {}', lpad((id * 10)::text, 64, '0') "
                "FROM projects"
            )
        if shape.inactive_every:
            conn.execute(f"UPDATE users SET is_active = false WHERE id % {shape.inactive_every} = 0")
        if shape.collision_every:
            # user999@example.com, then User999@Example.Com: distinct, equal ignoring case.
            conn.execute(
                "UPDATE users u SET email = initcap(p.email) FROM users p "
                f"WHERE p.id = u.id - 1 AND u.id % {shape.collision_every} = 0"
            )
        conn.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


def fresh_copy(server: Server, name: str, template: str) -> None:
    """A copy to time on, starting from a checkpoint like every other."""
    server.create(name, template=template)
    with server.admin() as conn:
        conn.execute("CHECKPOINT")


def command(server: Server, name: str, batch_size: int) -> dict:
    report_path = Path(tempfile.mkstemp(suffix=".json")[1])
    with ServerCPU(server, name) as cpu:
        process_s, rss_mb, _ = manage_with_memory(
            server.db_url(name),
            "migrate_users_to_entra",
            "--execute",
            "--batch-size",
            str(batch_size),
            "--report",
            str(report_path),
        )
    report = json.loads(report_path.read_text())
    report_path.unlink()
    return {
        # The work itself, without the interpreter's and Django's start-up.
        "s": report["timings_s"]["total"],
        "process_s": process_s,
        "server_cpu_s": cpu.seconds,
        "rss_mb": rss_mb,
        "timings": report["timings_s"],
    }


def hand_written(server: Server, name: str) -> dict:
    with ServerCPU(server, name) as cpu, server.connect(name) as conn:
        started = time.perf_counter()
        conn.execute(HAND_WRITTEN_SQL)
        elapsed = time.perf_counter() - started
    return {"s": elapsed, "server_cpu_s": cpu.seconds}


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
    parser.add_argument("--shape", choices=SHAPES, default="uniform", help="The legacy data (see above).")
    parser.add_argument("--users", type=int, help="Users to build (default: 1,000,000 uniform, 200,000 messy).")
    parser.add_argument("--rounds", type=int, default=3, help="Times the command and the SQL each run (median).")
    parser.add_argument("--naive-users", type=int, default=20_000, help="0: no naive loop.")
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--keep", action="store_true", help="Keep the databases afterwards.")
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be 1 or more")
    server = Server(args.server)
    shape = SHAPES[args.shape]
    n = args.users or shape.users
    tag = f"{n}" if args.shape == "uniform" else f"{args.shape}_{n}"
    base, migrated = f"bench_legacy_{tag}", f"bench_migrated_{tag}"
    copies = [f"bench_cmd_{tag}", f"bench_sql_{tag}", f"bench_naive_{tag}"]
    results: dict = {"shape": args.shape, "users": n, "batch_size": args.batch_size}

    log(f"building the {args.shape} legacy database with {n:,} users")
    results["build_s"] = round(build_legacy(server, base, n, shape), 1)
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
    if args.naive_users > 0:
        server.create(copies[2], template=migrated)

    validate_s, _ = manage(server.db_url(migrated), "validate_entra_schema")
    results["validate_s"] = round(validate_s, 2)
    log(f"validate_entra_schema: {validate_s:.2f}s (process included)")

    runs, sql_runs = [], []
    for number in range(1, args.rounds + 1):
        fresh_copy(server, copies[0], migrated)
        runs.append(command(server, copies[0], args.batch_size))
        fresh_copy(server, copies[1], migrated)
        sql_runs.append(hand_written(server, copies[1]))
        run, sql = runs[-1], sql_runs[-1]
        log(
            f"round {number}/{args.rounds}: command {run['s']:.2f}s of work ({run['process_s']:.2f}s with "
            f"start-up, server CPU {run['server_cpu_s']}s), hand-written SQL {sql['s']:.2f}s (server CPU "
            f"{sql['server_cpu_s']}s); command by statement: {run['timings']}"
        )
    median = {key: statistics.median(r[key] for r in runs) for key in ("s", "process_s")}
    sql_s = statistics.median(r["s"] for r in sql_runs)
    cmd_s = median["s"]
    results["command_s"] = round(cmd_s, 2)
    results["command_process_s"] = round(median["process_s"], 2)
    results["command_runs_s"] = [r["s"] for r in runs]
    results["command_timings_s"] = sorted(runs, key=lambda r: r["s"])[(len(runs) - 1) // 2]["timings"]
    results["command_peak_rss_mb"] = round(max(r["rss_mb"] for r in runs), 1)
    results["command_users_per_s"] = round(n / cmd_s)
    results["hand_sql_s"] = round(sql_s, 2)
    results["hand_sql_runs_s"] = [round(r["s"], 2) for r in sql_runs]
    results["command_vs_hand_sql"] = round(cmd_s / sql_s, 2)
    # On a shared machine the best runs are the least disturbed ones, and CPU time hardly depends on the rest.
    best = min(r["s"] for r in runs) / min(r["s"] for r in sql_runs)
    results["command_vs_hand_sql_best"] = round(best, 2)
    results["command_vs_hand_sql_by_round"] = [round(r["s"] / x["s"], 2) for r, x in zip(runs, sql_runs, strict=True)]
    cpu_line = ""
    if all(r["server_cpu_s"] for r in runs + sql_runs):
        cmd_cpu = statistics.median(r["server_cpu_s"] for r in runs)
        sql_cpu = statistics.median(r["server_cpu_s"] for r in sql_runs)
        results["command_server_cpu_s"], results["hand_sql_server_cpu_s"] = round(cmd_cpu, 2), round(sql_cpu, 2)
        results["command_vs_hand_sql_server_cpu"] = round(cmd_cpu / sql_cpu, 2)
        cpu_line = f", server CPU {cmd_cpu:.2f}s against {sql_cpu:.2f}s: {cmd_cpu / sql_cpu:.2f}x"
    log(
        f"median of {args.rounds}: command {cmd_s:.2f}s ({n / cmd_s:,.0f} users/s), hand-written SQL {sql_s:.2f}s: "
        f"{cmd_s / sql_s:.2f}x (best runs {best:.2f}x){cpu_line}; peak RSS {results['command_peak_rss_mb']:.0f} MB"
    )

    if args.naive_users > 0:
        log(f"naive per-row ORM loop on the first {args.naive_users:,} users")
        naive_s, naive_n = naive_loop(server, copies[2], args.naive_users)
        per_user = naive_s / max(naive_n, 1)
        results["naive_measured_users"] = naive_n
        results["naive_measured_s"] = round(naive_s, 2)
        results["naive_extrapolated_s"] = round(per_user * n, 1)
        results["naive_vs_command"] = round(per_user * n / cmd_s, 1)
        log(f"naive loop: {naive_n:,} users in {naive_s:.1f}s -> {per_user * n:,.0f}s extrapolated to {n:,}")
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if not args.keep:
        for name in (base, migrated, *copies):
            server.drop(name)


if __name__ == "__main__":
    main()
