"""Jobs every task worker runs periodically, besides its tasks (``manage.py db_worker``).

Apps register them in ``AppConfig.ready()`` (integrations: taking back syncs of dead
workers). They run in a daemon thread of each worker process, so nothing is enqueued
for them and a worker that dies takes its thread with it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from django.db import close_old_connections, connection

logger = logging.getLogger("core.worker")


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    every_s: Callable[[], float]
    run: Callable[[], object]


_jobs: dict[str, PeriodicJob] = {}


def register_periodic(name: str, *, every_s: Callable[[], float], run: Callable[[], object]) -> None:
    _jobs[name] = PeriodicJob(name, every_s, run)


def start_periodic_jobs(stop: threading.Event) -> list[threading.Thread]:
    threads = []
    for job in _jobs.values():
        thread = threading.Thread(target=_loop, args=(job, stop), name=f"periodic-{job.name}", daemon=True)
        thread.start()
        threads.append(thread)
    return threads


def _loop(job: PeriodicJob, stop: threading.Event) -> None:
    while not stop.wait(job.every_s()):
        try:
            close_old_connections()
            job.run()
        except Exception:
            logger.exception("periodic job %s failed", job.name)
        finally:
            connection.close()
