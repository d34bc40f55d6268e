"""Index usage (PostgreSQL): each index of the project's tables with its size and scans since the statistics reset."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from django.db.backends.base.base import BaseDatabaseWrapper


@dataclass(frozen=True)
class IndexUsage:
    table: str
    index: str
    size_bytes: int
    scans: int
    enforces_constraint: bool  # unique or primary key: needed even when never scanned

    @property
    def unused(self) -> bool:
        return self.scans == 0 and not self.enforces_constraint

    def as_dict(self) -> dict:
        data = asdict(self)
        data["unused"] = self.unused
        return data


def statistics_reset_at(connection: BaseDatabaseWrapper) -> datetime | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()")
        row = cursor.fetchone()
    return row[0] if row else None


def index_usage(connection: BaseDatabaseWrapper, tables: list[str]) -> list[IndexUsage]:
    """Every index of ``tables`` (largest first): its size and its scans since the statistics were reset."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT s.relname, s.indexrelname, pg_relation_size(s.indexrelid), s.idx_scan, "
            "i.indisunique OR i.indisprimary "
            "FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid "
            "WHERE s.schemaname = current_schema() AND s.relname = ANY(%s) "
            "ORDER BY pg_relation_size(s.indexrelid) DESC, s.relname, s.indexrelname",
            [tables],
        )
        return [IndexUsage(*row) for row in cursor.fetchall()]
