"""Scratch databases: ones a test can take to any state, apart from the pytest-django test database.

A scratch database is a new PostgreSQL database or a SQLite file. Tests start
from templates built once per session (``CREATE DATABASE … TEMPLATE`` on
PostgreSQL, a file copy on SQLite) rather than migrating and seeding each time.

Commands run two ways: ``manage()`` in a process of its own, as an operator
would (``tests.support.startup``), for what needs one (the runbook, a run
blocked midway, settings read from the environment); ``call()`` in-process,
with Django's default connection pointed at the scratch database, for
everything else.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import DEFAULT_DB_ALIAS, connections
from django.test import override_settings

from tests.support import startup

# What commands run with, in a subprocess or not: an operator's environment off DEBUG.
SECRET_KEY = "tests-only-not-secret"


def is_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


@dataclass
class Result:
    """What a command left behind, in-process or not: its exit code and output."""

    returncode: int
    stdout: str
    stderr: str


@dataclass
class ScratchDatabase:
    vendor: str
    name: str  # database name (PostgreSQL) or file path (SQLite)
    blocker: Any = field(default=None, repr=False, compare=False)  # pytest-django's, for call()

    @property
    def url(self) -> str:
        if self.vendor == "postgresql":
            db = settings.DATABASES["default"]
            user = db.get("USER") or "postgres"
            password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
            return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{self.name}"
        return f"sqlite:///{self.name}"

    def env(self, **extra: str) -> dict[str, str]:
        env = {**os.environ, "DATABASE_URL": self.url, "SECRET_KEY": SECRET_KEY, "DEBUG": "false"}
        env.update(extra)
        return env

    def manage(self, *args: str, check: bool = True, timeout: float = 300, **env: str) -> Result:
        """Run ``python manage.py ARGS`` against this database in a process of its own, as an operator would."""
        proc = startup.manage(*args, env=self.env(**env), timeout=timeout)
        result = Result(proc.returncode, proc.stdout, proc.stderr)
        if check and result.returncode != 0:
            raise AssertionError(
                f"manage.py {' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
            )
        return result

    def call(self, *args: str, check: bool = True) -> Result:
        """Run the command ``ARGS`` in-process against this database, with manage.py's exit code and output.

        A ``CommandError`` becomes exit code and message on stderr, as ``manage.py``
        prints it; any other exception propagates (``manage.py`` would print a traceback).
        """
        out, err = StringIO(), StringIO()
        with self.as_default(), override_settings(SECRET_KEY=SECRET_KEY, DEBUG=False):
            try:
                call_command(*args, stdout=out, stderr=err)
                returncode = 0
            except CommandError as exc:
                err.write(f"{exc.__class__.__name__}: {exc}\n")
                returncode = exc.returncode
        result = Result(returncode, out.getvalue(), err.getvalue())
        if check and returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {returncode}\n{result.stdout}\n{result.stderr}")
        return result

    @contextmanager
    def as_default(self) -> Iterator[None]:
        """Make this database Django's default connection, in this thread, for the duration."""
        from django.contrib.contenttypes.models import ContentType

        original = connections[DEFAULT_DB_ALIAS]
        scratch = type(original)({**original.settings_dict, "NAME": self.name}, alias=DEFAULT_DB_ALIAS)
        connections[DEFAULT_DB_ALIAS] = scratch
        try:
            with self.blocker.unblock():
                yield
        finally:
            scratch.close()
            connections[DEFAULT_DB_ALIAS] = original
            # post_migrate fills the content type cache (by alias) from the scratch database.
            ContentType.objects.clear_cache()

    def connect(self):
        if self.vendor == "postgresql":
            return psycopg.connect(_conninfo(self.name), autocommit=True)
        return sqlite3.connect(self.name, isolation_level=None)

    def execute(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        """Run one statement in autocommit and return its rows (if any)."""
        conn = self.connect()
        try:
            if self.vendor == "sqlite":
                sql = sql.replace("%s", "?")
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def executescript(self, sql: str) -> None:
        conn = self.connect()
        try:
            if self.vendor == "sqlite":
                conn.executescript(sql)
            else:
                conn.execute(sql)
        finally:
            conn.close()

    def fingerprint(self) -> str:
        """The whole database: the SQLite file's bytes; on PostgreSQL, the schema and every row of every table.

        Rows are compared as content, in a fixed order, not as pages: PostgreSQL
        may store a row elsewhere without changing it.
        """
        if self.vendor == "sqlite":
            _checkpoint(self.name)  # or a commit still in the -wal file would go unseen
            return hashlib.sha256(Path(self.name).read_bytes()).hexdigest()
        digest = hashlib.sha256(self._schema_dump())
        conn = self.connect()
        try:
            tables = conn.execute(
                "SELECT c.oid::regclass::text, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'S') ORDER BY 1"
            ).fetchall()
            for table, kind in tables:
                query = (
                    f"SELECT last_value, is_called FROM {table}"
                    if kind == "S"
                    else f"SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM {table} t"
                )
                digest.update(f"{table} {conn.execute(query).fetchone()}\n".encode())
        finally:
            conn.close()
        return digest.hexdigest()

    def _schema_dump(self) -> bytes:
        dump = subprocess.run(
            ["pg_dump", "--schema-only", "--no-owner", "--dbname", self.url.replace("postgres://", "postgresql://")],
            capture_output=True,
            check=True,
        ).stdout
        # Newer pg_dump marks each dump with a random \restrict key.
        return b"\n".join(line for line in dump.splitlines() if not line.startswith((b"\\restrict", b"\\unrestrict")))


def _checkpoint(path: str) -> None:
    """Move what the -wal file holds into the SQLite database file (WAL mode: the settings' init_command)."""
    conn = sqlite3.connect(path)
    try:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        conn.close()
    assert not busy, f"{path}: a connection kept the WAL from being checkpointed"


def _conninfo(dbname: str) -> str:
    db = settings.DATABASES["default"]
    parts = {
        "host": db.get("HOST") or "127.0.0.1",
        "port": db.get("PORT") or 5432,
        "user": db.get("USER") or "postgres",
        "dbname": dbname,
    }
    if db.get("PASSWORD"):
        parts["password"] = db["PASSWORD"]
    return " ".join(f"{k}={v}" for k, v in parts.items())


class Databases:
    """Makes scratch databases, empty or cloned from a template, and drops them."""

    def __init__(self, directory: Path, blocker: Any) -> None:
        self.directory = directory  # SQLite files
        self.blocker = blocker
        self.vendor = "postgresql" if is_postgres() else "sqlite"
        self._to_drop: list[str] = []
        self._made: dict[str, ScratchDatabase] = {}  # not dropped yet: close() drops what is left
        self.migrated: ScratchDatabase | None = None  # the conftest's copy of the freshly migrated test database

    def empty(self) -> ScratchDatabase:
        return self._create()

    def clone(self, template: ScratchDatabase) -> ScratchDatabase:
        return self._create(template)

    def copy_test_database(self) -> ScratchDatabase:
        """A copy of the pytest-django test database as it is now (just migrated, at the start of a session)."""
        connection = connections[DEFAULT_DB_ALIAS]
        if self.vendor == "sqlite":
            copy = ScratchDatabase(
                "sqlite", str(self.directory / f"scratch_{uuid.uuid4().hex[:12]}.sqlite3"), self.blocker
            )
            target = sqlite3.connect(copy.name)
            try:
                with self.blocker.unblock():
                    connection.ensure_connection()
                    connection.connection.backup(target)
            finally:
                target.close()
            return self._made.setdefault(copy.name, copy)
        connection.close()  # CREATE DATABASE … TEMPLATE needs the template idle
        return self._create(ScratchDatabase("postgresql", connection.settings_dict["NAME"], self.blocker))

    def freeze(self, template: ScratchDatabase) -> ScratchDatabase:
        """Make a database a template: nothing connects to it any more (a clone needs it idle)."""
        if self.vendor == "postgresql":
            self._admin(f'ALTER DATABASE "{template.name}" WITH ALLOW_CONNECTIONS false')
            self._admin(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [template.name],
            )
        else:
            _checkpoint(template.name)  # clones copy the database file alone
        return template

    def drop(self, db: ScratchDatabase) -> None:
        self._made.pop(db.name, None)
        if db.vendor == "postgresql":
            # At the end: each DROP DATABASE waits for a checkpoint, seconds on a busy server,
            # and drops running together share one.
            self._admin(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [db.name],
            )
            self._to_drop.append(db.name)
        else:
            Path(db.name).unlink(missing_ok=True)

    def close(self) -> None:
        """Drop every database still there (the PostgreSQL ones together)."""
        for db in list(self._made.values()):
            self.drop(db)
        with ThreadPoolExecutor(max_workers=16) as pool:
            drops = [
                pool.submit(self._admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)') for name in self._to_drop
            ]
        for drop in drops:
            drop.result()

    def _create(self, template: ScratchDatabase | None = None) -> ScratchDatabase:
        name = f"scratch_{uuid.uuid4().hex[:12]}"
        if self.vendor == "sqlite":
            path = self.directory / f"{name}.sqlite3"
            if template:
                shutil.copyfile(template.name, path)
            return self._made.setdefault(str(path), ScratchDatabase("sqlite", str(path), self.blocker))
        name = f"entra_{name}"
        statement = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template.name}"' if template else "")
        deadline = time.monotonic() + 10
        while True:
            try:
                self._admin(statement)
                break
            except psycopg.errors.ObjectInUse:
                # A session still leaving the template (a closed connection's backend exits asynchronously).
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        return self._made.setdefault(name, ScratchDatabase("postgresql", name, self.blocker))

    def _admin(self, sql: str, params: list | None = None) -> None:
        with psycopg.connect(_conninfo("postgres"), autocommit=True) as conn:
            conn.execute(sql, params)


def leave_an_orphan_behind_a_not_valid_foreign_key(db: ScratchDatabase) -> str:
    """A generated file of project 4242, which does not exist, kept by its foreign key re-added NOT VALID
    (as a failed validation leaves it; PostgreSQL). The foreign key's name."""
    fk = "generated_files_project_id_13abf42e_fk_projects_id"
    db.execute(f"ALTER TABLE generated_files DROP CONSTRAINT {fk}")
    db.execute(
        "INSERT INTO generated_files (project_id, path, content, sha256) VALUES (4242, 'main.tf', '', %s)", ["0" * 64]
    )
    db.execute(
        f"ALTER TABLE generated_files ADD CONSTRAINT {fk} FOREIGN KEY (project_id) REFERENCES projects (id) "
        "ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED NOT VALID"
    )
    return fk
