"""Check the live database against the schema the migrations expect."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from core.db.schema import ERROR, NOT_APPLICABLE, validate
from core.db.schema.usage import index_usage, statistics_reset_at


class Command(BaseCommand):
    help = (
        "Compare the live database with what the models and migrations expect: unapplied migrations, "
        "tables, column types and nullability, primary keys and sequences, unique constraints, indexes "
        "(by columns, method and predicate; validity), foreign keys (target, ON DELETE, validated) and "
        "Entra data integrity. Changes nothing. Exits non-zero on any error (--strict: on warnings too). "
        "--index-usage (PostgreSQL) instead lists each of the project's indexes with its size and scans since "
        "the statistics were reset, flagging the unused ones."
    )

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=["table", "json"], default="table")
        parser.add_argument("--strict", action="store_true", help="Fail on warnings as well as errors.")
        parser.add_argument("--database", default="default")
        parser.add_argument(
            "--index-usage", action="store_true", help="List index sizes and scans, flag unused (PostgreSQL)."
        )

    def handle(self, *args, format: str, strict: bool, database: str, index_usage: bool, **options):
        if index_usage:
            return self._index_usage(database, format)
        report = validate(using=database)
        if format == "json":
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
        else:
            self._print_table(report)
        failing = len(report.errors) + (len(report.warnings) if strict else 0)
        if failing:
            raise CommandError(
                f"{len(report.errors)} schema error(s), {len(report.warnings)} warning(s) on {report.vendor}"
                + (" (--strict)" if strict and report.warnings else "")
            )

    def _print_table(self, report) -> None:
        rows = [p for p in report.problems if p.severity != NOT_APPLICABLE]
        if rows:
            width = max(len(p.object) for p in rows)
            check_width = max(len(p.check) for p in rows)
            for p in rows:
                style = self.style.ERROR if p.severity == ERROR else self.style.WARNING
                line = f"{p.severity.upper():<7} {p.check:<{check_width}}  {p.object:<{width}}  {p.message}"
                if p.fix:
                    line += f"  -> fix: {p.fix}"
                self.stdout.write(style(line))
        for p in report.problems:
            if p.severity == NOT_APPLICABLE:
                self.stdout.write(f"n/a     {p.check}: {p.message}")
        summary = (
            f"{report.vendor}: {len(report.errors)} error(s), {len(report.warnings)} warning(s) "
            f"in {report.duration_ms:.0f} ms"
        )
        if report.errors:
            self.stdout.write(self.style.ERROR(summary))
        elif report.warnings:
            self.stdout.write(self.style.WARNING(summary))
        else:
            self.stdout.write(self.style.SUCCESS(f"Entra schema OK ({summary})"))

    def _index_usage(self, database: str, format: str) -> None:
        connection = connections[database]
        if connection.vendor != "postgresql":
            raise CommandError("--index-usage reads PostgreSQL's statistics: it needs a postgres:// DATABASE_URL")
        tables = sorted(connection.introspection.django_table_names(only_existing=True, include_views=False))
        rows = index_usage(connection, tables)
        reset = statistics_reset_at(connection)
        if format == "json":
            data = {"statistics_reset_at": reset.isoformat() if reset else None, "indexes": [r.as_dict() for r in rows]}
            self.stdout.write(json.dumps(data, indent=2))
            return
        since = f"since {reset:%Y-%m-%d %H:%M} UTC" if reset else "since the statistics began"
        width = max([len("index"), *(len(r.index) for r in rows)])
        table_width = max([len("table"), *(len(r.table) for r in rows)])
        self.stdout.write(f"{'table':<{table_width}}  {'index':<{width}}  {'size':>10}  {'scans':>12}  ({since})")
        for r in rows:
            line = f"{r.table:<{table_width}}  {r.index:<{width}}  {_size(r.size_bytes):>10}  {r.scans:>12}"
            self.stdout.write(self.style.WARNING(f"{line}  unused") if r.unused else line)
        unused = [r for r in rows if r.unused]
        self.stdout.write(
            f"{len(rows)} index(es), {_size(sum(r.size_bytes for r in rows))}; {len(unused)} unused "
            f"({_size(sum(r.size_bytes for r in unused))}) {since}"
        )


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
