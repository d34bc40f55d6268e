"""Shared fixtures: scratch databases driven through ``manage.py`` as an operator would.

The pytest-django test database serves ordinary tests. Tests of migrations,
adoption and the runbook need a database of their own that they can take to
any state: ``scratch_db`` is an empty one of the same kind (a new PostgreSQL
database, or a SQLite file), dropped afterwards; ``migrated_db`` is a copy of
a fully migrated one.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
LEGACY_SQL = ROOT.parent / "shared" / "legacy" / "legacy_schema_postgres.sql"


def is_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


@dataclass
class ScratchDatabase:
    vendor: str
    name: str  # database name (PostgreSQL) or file path (SQLite)

    @property
    def url(self) -> str:
        if self.vendor == "postgresql":
            db = settings.DATABASES["default"]
            user = db.get("USER") or "postgres"
            password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
            return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{self.name}"
        return f"sqlite:///{self.name}"

    def env(self, **extra: str) -> dict[str, str]:
        env = {**os.environ, "DATABASE_URL": self.url, "SECRET_KEY": "tests-only-not-secret", "DEBUG": "false"}
        env.update(extra)
        return env

    def manage(self, *args: str, check: bool = True, timeout: float = 300, **env: str):
        """Run ``python manage.py ARGS`` against this database, as an operator would."""
        result = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            env=self.env(**env),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"manage.py {' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
            )
        return result

    def connect(self):
        if self.vendor == "postgresql":
            return psycopg.connect(_admin_conninfo(self.name), autocommit=True)
        conn = sqlite3.connect(self.name, isolation_level=None)
        return conn

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


def _admin_conninfo(dbname: str) -> str:
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


def _create(tmp_dir: Path, template: ScratchDatabase | None = None) -> ScratchDatabase:
    if is_postgres():
        name = f"entra_scratch_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(_admin_conninfo("postgres"), autocommit=True) as conn:
            if template:
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template.name}"')
            else:
                conn.execute(f'CREATE DATABASE "{name}"')
        return ScratchDatabase("postgresql", name)
    path = tmp_dir / f"scratch_{uuid.uuid4().hex[:12]}.sqlite3"
    if template:
        shutil.copyfile(template.name, path)
    return ScratchDatabase("sqlite", str(path))


def _drop(db: ScratchDatabase) -> None:
    if db.vendor == "postgresql":
        with psycopg.connect(_admin_conninfo("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE)')
    else:
        Path(db.name).unlink(missing_ok=True)


@pytest.fixture
def scratch_db(tmp_path):
    db = _create(tmp_path)
    yield db
    _drop(db)


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory):
    db = _create(tmp_path_factory.mktemp("template"))
    db.manage("migrate", "--no-input")
    yield db
    _drop(db)


@pytest.fixture
def migrated_db(migrated_template, tmp_path):
    db = _create(tmp_path, template=migrated_template)
    yield db
    _drop(db)


@pytest.fixture
def operator(client, db):
    """A superuser signed in to the admin (as Entra sign-in would have done)."""
    from accounts.models import User
    from core.middleware import REFRESHED_AT

    user = User.objects.create_superuser("admin@example.com")
    client.force_login(user)
    # As a sign-in leaves it, having passed the middleware that extends sessions: the next
    # requests do not save the session again (tests count their queries).
    session = client.session
    session[REFRESHED_AT] = int(time.time())
    session.save()
    return user


@pytest.fixture(autouse=True)
def _empty_cache():
    """Counters kept in the cache (the sign-in throttle) start from zero in every test."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(scope="session", autouse=True)
def _plain_http():
    """The test client and the live server speak plain HTTP, which off DEBUG (as here) is redirected to https.

    For the whole session, so that it is in force before the live server loads its middleware.
    Only the redirect is off: cookies stay secure and HSTS on, as in production. Tests of the
    redirect turn it back on; subprocesses (``manage.py``) read the environment as an operator's would.
    """
    from django.test import override_settings

    with override_settings(SECURE_SSL_REDIRECT=False):
        yield


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason="PostgreSQL only: run with DATABASE_URL=postgres://…")
    if not is_postgres():
        for item in items:
            if "postgres" in item.keywords:
                item.add_marker(skip)
