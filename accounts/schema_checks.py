"""The Entra data checks of ``validate_entra_schema``, registered with the generic schema check."""

from __future__ import annotations

from django.db.backends.base.base import BaseDatabaseWrapper

from core.db.schema import ERROR, WARNING, Problem
from core.db.schema.catalog import Catalog


def check_entra_data(connection: BaseDatabaseWrapper, live: Catalog) -> list[Problem]:
    """The Entra data itself: links, duplicates, token columns, email collisions."""
    from accounts.models import TOKEN_HASH_COLUMNS, User, UserPreferences

    users = User._meta.db_table
    prefs = UserPreferences._meta.db_table
    columns = live.columns.get(users, {})
    problems = []
    with connection.cursor() as cursor:
        if "azure_entra_id" in columns and "user_id" in live.columns.get(prefs, {}):
            cursor.execute(
                f'SELECT count(*) FROM "{users}" u WHERE u.azure_entra_id IS NOT NULL '
                f'AND NOT EXISTS (SELECT 1 FROM "{prefs}" p WHERE p.user_id = u.id)'
            )
            (count,) = cursor.fetchone()
            if count:
                problems.append(
                    Problem(
                        ERROR,
                        "data",
                        f"{users}.preferences",
                        f"{count} user(s) linked to Entra have no preferences row",
                        "python manage.py migrate_users_to_entra --execute",
                    )
                )
        if "azure_entra_id" in columns:
            cursor.execute(
                f'SELECT lower(azure_entra_id), count(*) FROM "{users}" WHERE azure_entra_id IS NOT NULL '
                "GROUP BY lower(azure_entra_id) HAVING count(*) > 1 LIMIT 20"
            )
            for entra_id, count in cursor.fetchall():
                problems.append(
                    Problem(
                        ERROR,
                        "data",
                        f"{users}.azure_entra_id",
                        f"Entra id {entra_id} is held by {count} users when compared case-insensitively",
                        "keep one link (lower-case) and clear the others' azure_entra_id",
                    )
                )
        problems += _token_hash_problems(
            cursor, connection.vendor, users, [c for c in TOKEN_HASH_COLUMNS if c in columns]
        )
        if "email" in columns:
            for email, count in _email_collisions(cursor, users, live):
                problems.append(
                    Problem(
                        WARNING,
                        "data",
                        f"{users}.email",
                        f"{count} users share the email {email} when compared case-insensitively; "
                        "sign-in will link neither",
                        "merge or rename the accounts in the admin, keeping the one to link",
                    )
                )
    return problems


def _token_hash_problems(cursor, vendor: str, users: str, token_columns: list[str]) -> list[Problem]:
    """Every token-hash column checked in one scan of the table (a scan each took three times as long)."""
    if not token_columns:
        return []
    figures = []
    for column in token_columns:
        if vendor == "postgresql":
            bad = f"{column} IS NOT NULL AND {column} !~ '^[0-9a-f]{{64}}$'"
        else:
            bad = f"{column} IS NOT NULL AND (length({column}) <> 64 OR {column} GLOB '*[^0-9a-f]*')"
        figures += [
            f"count(*) FILTER (WHERE {bad})",
            f"min(id) FILTER (WHERE {bad})",
            f"count(*) FILTER (WHERE {bad} AND {column} LIKE 'eyJ%%')",
        ]
    cursor.execute(f'SELECT {", ".join(figures)} FROM "{users}"')
    row = cursor.fetchone()
    problems = []
    for n, column in enumerate(token_columns):
        count, first_id, jwts = row[3 * n : 3 * n + 3]
        if count:
            what = f"{jwts} look like JWTs" if jwts else "not 64-hex keyed hashes"
            problems.append(
                Problem(
                    ERROR,
                    "data",
                    f"{users}.{column}",
                    f"{count} row(s) hold something that is not a token hash ({what}; first id {first_id})",
                    f"revoke those tokens at the issuer, then UPDATE {users} SET {column} = NULL WHERE <those rows>",
                )
            )
    return problems


# Emails that differ from their lower case, up to which their collisions are looked up one by one.
MIXED_CASE_LOOKUPS = 1000


def _email_collisions(cursor, users: str, live: Catalog) -> list[tuple[str, int]]:
    """Up to 20 lower-cased emails held by more than one user.

    With ``email`` unique, two emails can only collide when one of them is not in lower case:
    those few are found in one scan and their collisions looked up by ``lower(email)``, rather
    than grouping every row (0.76 s of the check's 1.5 s at a million users, against 0.3 s).
    More than ``MIXED_CASE_LOOKUPS`` of them, or ``email`` not unique, and every row is grouped.
    """
    group = f'SELECT lower(email), count(*) FROM "{users}" {{where}} GROUP BY lower(email) HAVING count(*) > 1 ORDER BY 1 LIMIT 20'
    unique = any(
        i.table == users and i.keys == ("email",) and i.unique and i.valid and not i.predicate for i in live.indexes
    )
    if unique:
        # Not DISTINCT: PostgreSQL would walk the lower(email) index and fetch every row.
        cursor.execute(f'SELECT lower(email) FROM "{users}" WHERE email <> lower(email) LIMIT {MIXED_CASE_LOOKUPS + 1}')
        rows = cursor.fetchall()
        if not rows:
            return []
        if len(rows) <= MIXED_CASE_LOOKUPS:
            mixed = sorted({email for (email,) in rows})
            # Plain parameters: SQLite's json_each would cut a value at a NUL.
            cursor.execute(group.format(where=f"WHERE lower(email) IN ({', '.join(['%s'] * len(mixed))})"), mixed)
            return cursor.fetchall()
    cursor.execute(group.format(where=""))
    return cursor.fetchall()
