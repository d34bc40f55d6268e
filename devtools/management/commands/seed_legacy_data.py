"""Fill a database in the legacy (password-era) state with sample data.

For the demo, the tests and the benchmark: users with password hashes,
projects, generated files and refresh tokens, inserted with a few set-based
statements so a million users take seconds. Works on PostgreSQL and SQLite.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

# Per-vendor spellings of "a fixed-width string made of the number n".
_PAD64 = {"postgresql": "lpad(({n})::text, 64, '0')", "sqlite": "printf('%064d', {n})"}


class Command(BaseCommand):
    help = (
        "Insert sample legacy data (users with hashed_password, projects, generated files, refresh tokens) "
        "into a database at the legacy baseline. Refuses a database that is past the baseline."
    )

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, default=50)
        parser.add_argument("--projects-per-user", type=int, default=2)
        parser.add_argument("--files-per-project", type=int, default=2)
        parser.add_argument("--tokens-per-user", type=int, default=1)
        parser.add_argument(
            "--edge-cases",
            action="store_true",
            help="Also add what the migration must not guess: an email collision, an inactive user, a bad email.",
        )

    def handle(self, *args, users, projects_per_user, files_per_project, tokens_per_user, edge_cases, **options):
        if users < 0:
            raise CommandError("--users must be 0 or more")
        with connection.cursor() as cursor:
            columns = {c.name for c in connection.introspection.get_table_description(cursor, "users")}
        if "hashed_password" not in columns:
            raise CommandError(
                "users has no hashed_password column: this database is not at the legacy baseline "
                "(python manage.py migrate projects 0001_legacy_baseline on an empty database)"
            )
        started = time.perf_counter()
        pad = _PAD64[connection.vendor]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT coalesce(max(id), 0) FROM users")
            (base,) = cursor.fetchone()
            series = (
                f"WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {int(users)}) "
                if connection.vendor == "sqlite"
                else ""
            )
            source = "s" if connection.vendor == "sqlite" else f"generate_series(1, {int(users)}) AS s(n)"
            cursor.execute(
                "INSERT INTO users (id, email, full_name, hashed_password, is_active, is_superuser, last_login_at) "
                f"{series}SELECT {base} + n, 'user' || ({base} + n) || '@example.com', 'User ' || ({base} + n), "
                "'pbkdf2_sha256$600000$salt$' || " + pad.format(n="n") + ", "
                f"{'true' if connection.vendor == 'postgresql' else '1'}, "
                f"{'false' if connection.vendor == 'postgresql' else '0'}, NULL FROM {source}"
            )
            new_users = f"id > {base}"
            for k in range(projects_per_user):
                cursor.execute(
                    "INSERT INTO projects (owner_id, name, description, cloud_provider, iac_tool) "
                    f"SELECT id, 'project-{k}', 'Generated infrastructure', "
                    f"CASE WHEN id % 3 = 0 THEN 'aws' WHEN id % 3 = 1 THEN 'azure' ELSE 'gcp' END, "
                    f"CASE WHEN id % 2 = 0 THEN 'terraform' ELSE 'bicep' END FROM users WHERE {new_users}"
                )
            for k in range(files_per_project):
                cursor.execute(
                    "INSERT INTO generated_files (project_id, path, content, sha256) "
                    f"SELECT p.id, 'main-{k}.tf', 'resource \"example\" \"p' || p.id || '\" {{}}', "
                    + pad.format(n=f"p.id * 10 + {k}")
                    + f" FROM projects p WHERE p.owner_id > {base}"
                )
            for k in range(tokens_per_user):
                cursor.execute(
                    "INSERT INTO refresh_tokens (user_id, token_hash, expires_at) "
                    f"SELECT id, {pad.format(n=f'id * 100 + {k}')}, CURRENT_TIMESTAMP FROM users WHERE {new_users}"
                )
            if edge_cases:
                self._edge_cases(cursor, base + users)
            if connection.vendor == "postgresql":
                # Explicit ids above: move the sequence past them.
                cursor.execute("SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT max(id) FROM users))")
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {users} legacy user(s) with {projects_per_user} project(s), {files_per_project} file(s) "
                f"per project and {tokens_per_user} refresh token(s) each in {time.perf_counter() - started:.1f}s"
            )
        )

    def _edge_cases(self, cursor, last_id: int) -> None:
        rows = [
            (last_id + 1, "Shared.Mailbox@Example.com", "Shared mailbox (upper case)", True),
            (last_id + 2, "shared.mailbox@example.com", "Shared mailbox (lower case)", True),
            (last_id + 3, "former.employee@example.com", "Former employee", False),
            (last_id + 4, "not-an-email", "Imported without an email", True),
        ]
        for id_, email, name, active in rows:
            cursor.execute(
                "INSERT INTO users (id, email, full_name, hashed_password, is_active) VALUES (%s, %s, %s, %s, %s)",
                [id_, email, name, "pbkdf2_sha256$600000$salt$edgecase", active],
            )
