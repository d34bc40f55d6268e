"""The /metrics registry: the families of ``core.metrics`` (all processes' in multiprocess mode) and the
figures read from the database (at most METRICS_DB_REFRESH_S old)."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, connections
from prometheus_client import REGISTRY, CollectorRegistry, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ops import selectors

logger = logging.getLogger("ops.metrics")
MIGRATION_STATES = ("linked", "flagged", "conflicts")


@dataclass(frozen=True)
class _Figures:
    gauges: selectors.MigrationGauges
    backlog: selectors.Backlog
    tables: list[tuple[str, int, int]]
    read_at: float  # time.monotonic()


def _read() -> _Figures:
    return _Figures(selectors.migration_gauges(), selectors.task_backlog(), selectors.table_sizes(), time.monotonic())


class DatabaseCollector(Collector):
    """Gauges read from the database: the migration's users, the task backlog, table and index sizes.

    Counting a million users' index entries takes about 100 ms, more than a scrape should: a
    scrape serves the figures read at most ``METRICS_DB_REFRESH_S`` ago and, when they are older,
    has them read again in a thread of its own, never waiting for it (the first scrape of a
    process reads them itself). ``ops_db_figures_age_seconds`` says how old they are; with
    ``METRICS_DB_REFRESH_S=0`` every scrape reads them. While the database does not answer, the
    last figures are served and their age grows; before any read succeeded these families have
    no samples (/health/ready is what says the database is down).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._figures: _Figures | None = None
        self._refreshing = False

    def _refresh_in_background(self) -> None:
        def run() -> None:
            try:
                figures = _read()
            except Exception as exc:  # whatever it was, the next scrape tries again
                logger.warning("metrics: the database figures could not be read: %s", type(exc).__name__)
                figures = None
            finally:
                connections.close_all()  # this thread's own connection
            with self._lock:
                self._refreshing = False
                if figures is not None:
                    self._figures = figures

        threading.Thread(target=run, name="metrics-db-refresh", daemon=True).start()

    def figures(self) -> _Figures:
        max_age = settings.METRICS_DB_REFRESH_S
        with self._lock:
            figures = self._figures
            if figures is not None and max_age > 0:
                if time.monotonic() - figures.read_at > max_age and not self._refreshing:
                    self._refreshing = True
                    self._refresh_in_background()
                return figures
        figures = _read()
        with self._lock:
            self._figures = figures
        return figures

    def collect(self) -> Iterator[GaugeMetricFamily]:
        users = GaugeMetricFamily(
            "entra_migration_users",
            "Users by migration state: linked to Entra, flagged and not yet signed in, conflicts to resolve",
            labels=["state"],
        )
        ready = GaugeMetricFamily("tasks_ready", "Tasks ready to run")
        oldest = GaugeMetricFamily("tasks_oldest_ready_age_seconds", "How long the oldest ready task has waited")
        sizes = GaugeMetricFamily("db_table_size_bytes", "Size of each of the project's tables", labels=["table"])
        index_sizes = GaugeMetricFamily(
            "db_index_size_bytes", "Size of the indexes of each of the project's tables", labels=["table"]
        )
        age = GaugeMetricFamily("ops_db_figures_age_seconds", "How long ago the figures read from the database were")
        try:
            figures = self.figures()
        except DatabaseError as exc:
            logger.warning("metrics: the database did not answer: %s", type(exc).__name__)
        else:
            since = time.monotonic() - figures.read_at
            for state in MIGRATION_STATES:
                users.add_metric([state], getattr(figures.gauges, state))
            ready.add_metric([], figures.backlog.ready)
            oldest.add_metric([], figures.backlog.oldest_age_s + since if figures.backlog.ready else 0.0)
            for table, data, indexes in figures.tables:
                sizes.add_metric([table], data)
                index_sizes.add_metric([table], indexes)
            age.add_metric([], since)
        yield from (users, ready, oldest, sizes, index_sizes, age)


class _Default(Collector):
    """This process's own families (the default registry), when not in multiprocess mode."""

    def collect(self):
        return REGISTRY.collect()


def build_registry() -> CollectorRegistry:
    import core.metrics  # noqa: F401 - defines (and touches) every family

    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Default())
    registry.register(DatabaseCollector())
    return registry
