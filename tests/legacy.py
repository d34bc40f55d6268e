"""Moved to ``tests.support.legacy``; this shim goes once no test imports it."""

from __future__ import annotations

from tests.support.legacy import LEGACY_SQL, SNAPSHOT_QUERIES, adopt_legacy_sql, migrate_to_baseline, seed, snapshot
from tests.support.scratch import ScratchDatabase

__all__ = ["LEGACY_SQL", "SNAPSHOT_QUERIES", "build_legacy", "snapshot"]


def build_legacy(db: ScratchDatabase, *, users: int = 20, edge_cases: bool = True, from_sql: bool = False) -> None:
    (adopt_legacy_sql if from_sql else migrate_to_baseline)(db)
    seed(db, users=users, edge_cases=edge_cases)
