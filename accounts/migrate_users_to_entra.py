"""Prepare existing users for Entra sign-in: the data step after ``migrate``.

Set-based and batched: each batch of users (a primary-key range) gets a few
``INSERT … SELECT`` / ``UPDATE … WHERE id BETWEEN`` / ``DELETE`` statements in
one transaction. A run that dies loses at most the batch in flight; running
again finishes the job, because every statement only touches rows that still
need it. Nothing is read into Python per user.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

from django.contrib.sessions.models import Session
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from accounts.models import LegacyRefreshToken, User, UserPreferences
from core.db.locks import advisory_lock

LOCK_NAME = "migrate_users_to_entra"
# An address the linking step can match: something@domain.tld, no spaces.
USABLE_EMAIL_SQL = {
    "postgresql": "email ~ '^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$'",
    "sqlite": "(email LIKE '%_@_%._%' AND email NOT LIKE '%@%@%' AND email NOT LIKE '% %')",
}


class NotReady(Exception):
    """The database is not in a state this step can run on."""


@dataclass
class Batch:
    number: int
    total: int
    first_id: int
    last_id: int


@dataclass
class Report:
    mode: str  # "dry-run" or "execute"
    database: str
    users_total: int = 0
    batches: int = 0
    batch_size: int = 0
    # What was done (execute) or would be done (dry run).
    preferences_created: int = 0
    users_flagged: int = 0
    refresh_tokens_deleted: int = 0
    sessions_deleted: int = 0
    # Left as they are.
    users_already_linked: int = 0
    users_already_flagged: int = 0
    # What the step must not guess: surfaced, not stopped on.
    email_collisions: list[dict] = field(default_factory=list)
    email_collision_users: int = 0
    unusable_emails: list[dict] = field(default_factory=list)
    unusable_email_users: int = 0
    inactive_users: list[dict] = field(default_factory=list)
    inactive_users_total: int = 0
    sample_to_flag: list[dict] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    analyzed: bool = False
    # Tables whose ANALYZE was left to the session holding them (an autovacuum worker, as a rule).
    analyze_skipped: list[str] = field(default_factory=list)
    batches_retried: int = 0

    @property
    def changes(self) -> int:
        return self.preferences_created + self.users_flagged + self.refresh_tokens_deleted + self.sessions_deleted

    def as_dict(self) -> dict:
        data = asdict(self)
        data["changes"] = self.changes
        data["inactive_users_policy"] = INACTIVE_POLICY
        return data


INACTIVE_POLICY = (
    "Inactive users are prepared like the others (preferences, flag, token clean-up) so that reactivating one "
    "needs nothing more; Entra sign-in refuses them while they are inactive."
)


def check_ready() -> None:
    executor = MigrationExecutor(connection)
    targets = [key for key in executor.loader.graph.leaf_nodes() if key[0] == "accounts"]
    pending = executor.migration_plan(targets)
    if pending:
        ours = [f"{m.app_label}.{m.name}" for m, _ in pending if m.app_label == "accounts"]
        raise NotReady(
            f"{len(pending)} unapplied migrations (accounts: {', '.join(ours) or 'none'}): "
            "run `python manage.py migrate` first"
        )
    with connection.cursor() as cursor:
        columns = {c.name for c in connection.introspection.get_table_description(cursor, User._meta.db_table)}
    if "hashed_password" in columns:
        raise NotReady("users still has a hashed_password column: the schema migration did not run")


def _id_ranges(batch_size: int) -> Iterator[Batch]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT min(id), max(id) FROM {User._meta.db_table}")
        low, high = cursor.fetchone()
    if low is None:
        return
    total = (high - low) // batch_size + 1
    for number, first in enumerate(range(low, high + 1, batch_size), start=1):
        yield Batch(number, total, first, min(first + batch_size - 1, high))


def _table_names() -> dict[str, str]:
    return {
        "users": User._meta.db_table,
        "prefs": UserPreferences._meta.db_table,
        "tokens": LegacyRefreshToken._meta.db_table,
    }


def _true() -> str:
    return "TRUE" if connection.vendor == "postgresql" else "1"


def _false() -> str:
    return "FALSE" if connection.vendor == "postgresql" else "0"


def _batch_statements(*, on_conflict: bool = False) -> dict[str, str]:
    """The set-based work for one primary-key range; each is safe to run again.

    The preferences insert is a plain one: its anti-join is bounded to the
    batch's range on both sides, so it stays a small join whatever the
    statistics say (taken while the table was empty, they would make an
    unbounded one a hash join over the whole, growing table, every batch).
    ``on_conflict`` lets the unique index decide instead, for a batch in which
    a row appeared meanwhile; it costs a speculative insertion per row.
    """
    t = _table_names()
    prefs = f"INSERT INTO {t['prefs']} (user_id) SELECT u.id FROM {t['users']} u WHERE u.id BETWEEN %s AND %s "
    if on_conflict:
        prefs += "ON CONFLICT (user_id) DO NOTHING"
    else:
        prefs += f"AND NOT EXISTS (SELECT 1 FROM {t['prefs']} p WHERE p.user_id = u.id AND p.user_id BETWEEN %s AND %s)"
    return {
        "preferences": prefs,
        "flags": (
            f"UPDATE {t['users']} SET requires_entra_migration = {_true()} "
            f"WHERE id BETWEEN %s AND %s AND azure_entra_id IS NULL AND requires_entra_migration = {_false()}"
        ),
        "tokens": f"DELETE FROM {t['tokens']} WHERE user_id BETWEEN %s AND %s",
    }


def _run_batch(statements: dict[str, str], batch: Batch, timings: dict[str, float]) -> dict[str, int]:
    """One batch in one transaction; the rows each statement changed."""
    counts = {}
    with transaction.atomic(), connection.cursor() as cursor:
        for step, sql in statements.items():
            t0 = time.perf_counter()
            cursor.execute(sql, [batch.first_id, batch.last_id] * (sql.count("%s") // 2))
            timings[step] += time.perf_counter() - t0
            counts[step] = cursor.rowcount
        statements_done = time.perf_counter()
    timings["commit"] += time.perf_counter() - statements_done  # deferred foreign-key checks run here
    return counts


def _analyze(report: Report) -> None:
    """Fresh planner statistics, without waiting behind a session that holds a table.

    That session is an autovacuum worker as a rule (batches that commit make
    the tables eligible while the run goes on); waiting would cancel it after
    ``deadlock_timeout`` and throw its work away, and it analyzes the table
    itself when it has changed this much.
    """
    for table in _table_names().values():
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '50ms'")
                cursor.execute(f"ANALYZE {table}")
        except OperationalError as exc:
            if getattr(exc.__cause__, "sqlstate", None) != "55P03":  # lock_not_available
                raise
            report.analyze_skipped.append(table)
    report.analyzed = True


def _dry_run_counts(report: Report) -> None:
    t = _table_names()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {t['users']} u WHERE NOT EXISTS "
            f"(SELECT 1 FROM {t['prefs']} p WHERE p.user_id = u.id)"
        )
        report.preferences_created = cursor.fetchone()[0]
        cursor.execute(
            f"SELECT count(*) FROM {t['users']} WHERE azure_entra_id IS NULL AND requires_entra_migration = {_false()}"
        )
        report.users_flagged = cursor.fetchone()[0]
        cursor.execute(f"SELECT count(*) FROM {t['tokens']}")
        report.refresh_tokens_deleted = cursor.fetchone()[0]


def _survey(report: Report, *, max_listed: int) -> None:
    """Counts and samples of what the step must not guess (read-only)."""
    t = _table_names()
    users = t["users"]
    with connection.cursor() as cursor:
        unusable = f"NOT ({USABLE_EMAIL_SQL[connection.vendor]})"
        # One pass for the counts. No parameters here: the LIKE patterns hold percent signs.
        cursor.execute(
            f"SELECT count(*), "
            f"sum(CASE WHEN azure_entra_id IS NOT NULL THEN 1 ELSE 0 END), "
            f"sum(CASE WHEN azure_entra_id IS NULL AND requires_entra_migration = {_true()} THEN 1 ELSE 0 END), "
            f"sum(CASE WHEN is_active = {_false()} THEN 1 ELSE 0 END), "
            f"sum(CASE WHEN azure_entra_id IS NULL AND {unusable} THEN 1 ELSE 0 END) FROM {users}"
        )
        total, linked, flagged, inactive, unusable_count = cursor.fetchone()
        report.users_total = total
        report.users_already_linked = linked or 0
        report.users_already_flagged = flagged or 0
        report.inactive_users_total = inactive or 0
        report.unusable_email_users = unusable_count or 0

        cursor.execute(
            f"SELECT lower(email), count(*) FROM {users} GROUP BY lower(email) HAVING count(*) > 1 ORDER BY 1"
        )
        groups = cursor.fetchall()
        report.email_collision_users = sum(count for _, count in groups)
        for email, _count in groups[:max_listed]:
            cursor.execute(f"SELECT id, email FROM {users} WHERE lower(email) = %s ORDER BY id", [email])
            report.email_collisions.append(
                {
                    "email": email,
                    "users": [{"id": i, "email": e} for i, e in cursor.fetchall()],
                    "reason": "emails equal when compared case-insensitively would link to the same Entra "
                    "account; sign-in links neither until an operator resolves it",
                }
            )

        if report.unusable_email_users:
            cursor.execute(
                f"SELECT id, email FROM {users} WHERE azure_entra_id IS NULL AND {unusable} "
                f"ORDER BY id LIMIT {int(max_listed)}"
            )
            report.unusable_emails = [
                {"id": i, "email": e, "reason": "no usable email: sign-in cannot match this user; fix the email"}
                for i, e in cursor.fetchall()
            ]
        cursor.execute(f"SELECT id, email FROM {users} WHERE is_active = {_false()} ORDER BY id LIMIT %s", [max_listed])
        report.inactive_users = [{"id": i, "email": e} for i, e in cursor.fetchall()]


def _stale_sessions(max_users_per_query: int = 1000) -> Iterator[list[str]]:
    """Keys of sign-in sessions of users who have not signed in with Entra, in chunks.

    Session data is opaque to SQL, so sessions are decoded in Python: one
    pass over the session table, chunk by chunk, never over the users.
    """
    chunk: dict[str, int] = {}

    def flush() -> list[str]:
        unlinked = set(
            User.objects.filter(pk__in=set(chunk.values()), azure_entra_id__isnull=True).values_list("pk", flat=True)
        )
        return [key for key, user_id in chunk.items() if user_id in unlinked]

    for session in Session.objects.only("session_key", "session_data").iterator(chunk_size=2000):
        user_id = session.get_decoded().get("_auth_user_id")
        if user_id is None:
            continue
        try:
            chunk[session.session_key] = int(user_id)
        except (TypeError, ValueError):
            continue
        if len(chunk) >= max_users_per_query:
            yield flush()
            chunk = {}
    if chunk:
        yield flush()


def prepare_users_for_entra(
    *,
    execute: bool,
    batch_size: int = 10_000,
    max_listed: int = 100,
    on_batch: Callable[[Batch], None] | None = None,
) -> Report:
    """Create missing preferences, flag unlinked users, remove password-era sign-in data.

    Dry run unless ``execute``: then only counts are taken and nothing is written.
    """
    check_ready()
    report = Report(mode="execute" if execute else "dry-run", database=connection.vendor, batch_size=batch_size)
    started = time.perf_counter()
    timings = dict.fromkeys(("preferences", "flags", "tokens", "sessions", "survey"), 0.0)

    t0 = time.perf_counter()
    _survey(report, max_listed=max_listed)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, email FROM {User._meta.db_table} WHERE azure_entra_id IS NULL "
            f"AND requires_entra_migration = {_false()} ORDER BY id LIMIT 10"
        )
        report.sample_to_flag = [{"id": i, "email": e} for i, e in cursor.fetchall()]
    timings["survey"] = time.perf_counter() - t0

    if not execute:
        t0 = time.perf_counter()
        _dry_run_counts(report)
        timings["preferences"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        report.sessions_deleted = sum(len(keys) for keys in _stale_sessions())
        timings["sessions"] = time.perf_counter() - t0
        report.batches = len(list(_id_ranges(batch_size)))
    else:
        statements, retry_statements = _batch_statements(), _batch_statements(on_conflict=True)
        counters = {"preferences": "preferences_created", "flags": "users_flagged", "tokens": "refresh_tokens_deleted"}
        timings["commit"] = 0.0
        for batch in _id_ranges(batch_size):
            try:
                counts = _run_batch(statements, batch, timings)
            except IntegrityError:
                # The application created a preferences row in this range meanwhile (the
                # account page does on a first visit): the batch rolled back; once more,
                # letting the unique index decide.
                counts = _run_batch(retry_statements, batch, timings)
                report.batches_retried += 1
            for step, rowcount in counts.items():
                setattr(report, counters[step], getattr(report, counters[step]) + rowcount)
            report.batches += 1
            if on_batch:
                on_batch(batch)
        t0 = time.perf_counter()
        for keys in _stale_sessions():
            if keys:
                report.sessions_deleted += Session.objects.filter(session_key__in=keys).delete()[0]
        timings["sessions"] = time.perf_counter() - t0
        if connection.vendor == "postgresql" and report.changes:
            # Fresh planner statistics after bulk changes.
            t0 = time.perf_counter()
            _analyze(report)
            timings["analyze"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - started
    report.timings_s = {k: round(v, 3) for k, v in timings.items()}
    return report


def run_exclusively(**kwargs) -> Report:
    """``prepare_users_for_entra`` under an advisory lock (PostgreSQL): one run at a time."""
    with advisory_lock(connection, LOCK_NAME, wait_s=0):
        return prepare_users_for_entra(**kwargs)
