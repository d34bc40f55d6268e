"""Check the live database against the schema the migrations expect, for every app's models.

``validate()`` reads two catalogs (``catalog``), compares them and runs the checks
every database gets (``compare``), then the data checks apps register: an app adds
what only it knows (``accounts`` registers the Entra data checks in its ``ready()``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.executor import MigrationExecutor

from core.db.schema.catalog import Catalog, read_catalogs
from core.db.schema.compare import (
    check_migrations,
    check_not_applicable,
    check_orphans,
    check_sequences,
    compare_schema,
)
from core.db.schema.report import ERROR, NOT_APPLICABLE, WARNING, Problem, Report

__all__ = ["ERROR", "NOT_APPLICABLE", "WARNING", "Problem", "Report", "register_data_check", "validate"]

DataCheck = Callable[[BaseDatabaseWrapper, Catalog], list[Problem]]
_data_checks: list[DataCheck] = []


def register_data_check(check: DataCheck) -> DataCheck:
    """Run ``check(connection, live_catalog)`` in every ``validate()``; usable as a decorator."""
    if check not in _data_checks:
        _data_checks.append(check)
    return check


def validate(using: str = "default") -> Report:
    connection = connections[using]
    started = time.perf_counter()
    report = Report(vendor=connection.vendor)
    # One migration graph (read from disk and django_migrations) for both uses.
    executor = MigrationExecutor(connection)
    report.problems += check_migrations(executor)
    expected, live = read_catalogs(connection, executor)
    report.problems += compare_schema(expected, live)
    report.problems += check_sequences(connection, expected, live)
    report.problems += check_orphans(connection, expected, live)
    for check in _data_checks:
        report.problems += check(connection, live)
    report.problems += check_not_applicable(connection)
    report.duration_ms = (time.perf_counter() - started) * 1000
    return report
