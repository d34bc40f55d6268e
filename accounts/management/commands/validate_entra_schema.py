"""Check the live database against the schema the migrations expect."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from core.db.schema import ERROR, NOT_APPLICABLE, validate


class Command(BaseCommand):
    help = (
        "Compare the live database with what the models and migrations expect: unapplied migrations, "
        "tables, column types and nullability, primary keys and sequences, unique constraints, indexes "
        "(by columns, method and predicate; validity), foreign keys (target, ON DELETE, validated) and "
        "Entra data integrity. Changes nothing. Exits non-zero on any error (--strict: on warnings too)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=["table", "json"], default="table")
        parser.add_argument("--strict", action="store_true", help="Fail on warnings as well as errors.")
        parser.add_argument("--database", default="default")

    def handle(self, *args, format: str, strict: bool, database: str, **options):
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
