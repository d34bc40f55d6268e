"""The /metrics registry: the families of ``core.metrics`` (all processes' in multiprocess mode) and the
figures read from the database at scrape time."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

from django.db import DatabaseError
from prometheus_client import REGISTRY, CollectorRegistry, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ops import selectors

logger = logging.getLogger("ops.metrics")
MIGRATION_STATES = ("linked", "flagged", "conflicts")


class DatabaseCollector(Collector):
    """Gauges read at scrape time: the migration's users, the task backlog, table and index sizes.

    A database that does not answer leaves these families without samples (the scrape
    still answers: /health/ready is the place that says the database is down).
    """

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
        try:
            gauges = selectors.migration_gauges()
            backlog = selectors.task_backlog()
            tables = selectors.table_sizes()
        except DatabaseError as exc:
            logger.warning("metrics: the database did not answer: %s", type(exc).__name__)
        else:
            for state in MIGRATION_STATES:
                users.add_metric([state], getattr(gauges, state))
            ready.add_metric([], backlog.ready)
            oldest.add_metric([], backlog.oldest_age_s)
            for table, data, indexes in tables:
                sizes.add_metric([table], data)
                index_sizes.add_metric([table], indexes)
        yield from (users, ready, oldest, sizes, index_sizes)


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
