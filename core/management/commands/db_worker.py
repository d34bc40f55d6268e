"""django-tasks-db's worker, plus the periodic jobs apps register (``core.worker``)."""

from __future__ import annotations

import threading

from django_tasks_db.management.commands.db_worker import Command as DBWorkerCommand

from core.worker import start_periodic_jobs


class Command(DBWorkerCommand):
    help = DBWorkerCommand.help + " Also runs the registered periodic jobs (taking back syncs of dead workers)."

    def handle(self, *args, **options):
        stop = threading.Event()
        start_periodic_jobs(stop)
        try:
            return super().handle(*args, **options)
        finally:
            stop.set()
