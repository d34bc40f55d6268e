"""PostgreSQL session helpers: advisory locks, and naming who holds a lock."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.db.backends.base.base import BaseDatabaseWrapper


class LockBusy(Exception):
    """Another session holds the advisory lock."""


NAMESPACE = "entra-platform"


def advisory_key(name: str) -> int:
    """The signed 64-bit key of the lock ``name``: SHA-256 of the name under this project's namespace.

    Advisory keys are shared by everything connected to a database; a bare 32-bit checksum of
    a word as common as "migrate" could be another application's key too.
    """
    return int.from_bytes(hashlib.sha256(f"{NAMESPACE}:{name}".encode()).digest()[:8], "big", signed=True)


def advisory_lock_holder(connection: BaseDatabaseWrapper, name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.pid, a.application_name, a.client_addr::text, a.backend_start "
            "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            # A bigint key shows as its high 32 bits (classid) and its low 32 bits (objid), objsubid 1.
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
            "AND l.classid = %s::bigint::oid AND l.objid = %s::bigint::oid AND l.pid <> pg_backend_pid() "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            [(key := advisory_key(name) & 0xFFFFFFFFFFFFFFFF) >> 32, key & 0xFFFFFFFF],
        )
        row = cursor.fetchone()
    if not row:
        return "another session"
    pid, app, addr, started = row
    return f"pid {pid} (application {app or '-'}, client {addr or 'local'}, connected {started:%Y-%m-%d %H:%M:%S})"


@contextmanager
def advisory_lock(connection: BaseDatabaseWrapper, name: str, *, wait_s: float = 0.0) -> Iterator[None]:
    """Hold a session-level advisory lock; a no-op on databases without them.

    Waits up to ``wait_s`` seconds for a holder to finish, then raises
    ``LockBusy`` naming the session that holds it.
    """
    if connection.vendor != "postgresql":
        yield
        return
    key = advisory_key(name)
    deadline = time.monotonic() + wait_s
    while True:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
            if cursor.fetchone()[0]:
                break
        if time.monotonic() >= deadline:
            raise LockBusy(f"{name} is already running in {advisory_lock_holder(connection, name)}")
        time.sleep(0.2)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


def lock_holders(connection: BaseDatabaseWrapper, tables: list[str]) -> list[str]:
    """Other sessions holding locks on these tables, oldest transaction first."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT a.pid, a.usename, a.application_name, a.client_addr::text, a.state, "
            "       a.xact_start, left(a.query, 120), c.relname, l.mode "
            "FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.granted AND l.pid <> pg_backend_pid() AND c.relname = ANY(%s) "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "ORDER BY a.xact_start NULLS LAST",
            [tables],
        )
        rows = cursor.fetchall()
    return [
        f"pid {pid} (user {user}, application {app or '-'}, client {addr or 'local'}, {state}"
        f"{f' since {since:%H:%M:%S}' if since else ''}) holds {mode} on {rel}; last query: {query!r}"
        for pid, user, app, addr, state, since, query, rel, mode in rows
    ]


def advisory_xact_lock(connection: BaseDatabaseWrapper, name: str) -> None:
    """Hold an advisory lock until the current transaction ends (PostgreSQL; SQLite serializes writers anyway)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [advisory_key(name)])
