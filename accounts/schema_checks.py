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
        for column in TOKEN_HASH_COLUMNS:
            if column not in columns:
                continue
            if connection.vendor == "postgresql":
                bad = f"{column} !~ '^[0-9a-f]{{64}}$'"
            else:
                bad = f"(length({column}) <> 64 OR {column} GLOB '*[^0-9a-f]*')"
            cursor.execute(
                f"SELECT count(*), min(id), sum(CASE WHEN {column} LIKE 'eyJ%%' THEN 1 ELSE 0 END) "
                f'FROM "{users}" WHERE {column} IS NOT NULL AND {bad}'
            )
            count, first_id, jwts = cursor.fetchone()
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
        if "email" in columns:
            cursor.execute(
                f'SELECT lower(email), count(*) FROM "{users}" GROUP BY lower(email) HAVING count(*) > 1 '
                "ORDER BY 1 LIMIT 20"
            )
            for email, count in cursor.fetchall():
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
