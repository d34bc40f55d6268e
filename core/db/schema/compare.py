"""Comparing the catalogs, and the checks every database gets (migrations, sequences, orphans).

Indexes are compared by their ordered keys, method and predicate rather than by
name; foreign keys by columns, target, ``ON DELETE`` and validated state.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.executor import MigrationExecutor

from core.db.schema.catalog import Catalog, Column, IndexInfo
from core.db.schema.report import ERROR, NOT_APPLICABLE, WARNING, Problem


def _keys(keys: Iterable[str]) -> str:
    return "(" + ", ".join(keys) + ")"


def compare_schema(expected: Catalog, live: Catalog) -> list[Problem]:
    problems: list[Problem] = []
    add = problems.append
    present = set()
    for table in sorted(expected.tables):
        kind = live.tables.get(table)
        if kind is None:
            add(Problem(ERROR, "table", table, "table is missing", "run `python manage.py migrate`"))
        elif kind != "table":
            add(Problem(ERROR, "table", table, f"is a {kind}, not a table", f"replace the {kind} with the table"))
        else:
            present.add(table)

    for table in sorted(present):
        problems += _compare_columns(table, expected.columns.get(table, {}), live.columns.get(table, {}))
        problems += _compare_primary_key(table, expected, live)
    problems += _compare_indexes(expected, live, present)
    problems += _compare_foreign_keys(expected, live, present)
    return problems


def _compare_columns(table: str, expected: dict[str, Column], live: dict[str, Column]) -> list[Problem]:
    problems = []
    for name, want in expected.items():
        obj = f"{table}.{name}"
        have = live.get(name)
        if have is None:
            problems.append(Problem(ERROR, "column", obj, "column is missing", "run `python manage.py migrate`"))
            continue
        if have.type != want.type:
            problems.append(
                Problem(
                    ERROR,
                    "column-type",
                    obj,
                    f"type is {have.type}, expected {want.type}",
                    f"ALTER TABLE {table} ALTER COLUMN {name} TYPE {want.type}",
                )
            )
        if want.not_null and not have.not_null:
            problems.append(
                Problem(
                    ERROR,
                    "nullability",
                    obj,
                    "allows NULL, expected NOT NULL",
                    f"fill the NULLs, then ALTER TABLE {table} ALTER COLUMN {name} SET NOT NULL",
                )
            )
        elif have.not_null and not want.not_null:
            problems.append(
                Problem(
                    ERROR,
                    "nullability",
                    obj,
                    "is NOT NULL, expected nullable (inserts without it fail)",
                    f"ALTER TABLE {table} ALTER COLUMN {name} DROP NOT NULL",
                )
            )
    for name, have in live.items():
        if name not in expected and have.not_null and not have.has_default and not have.identity:
            problems.append(
                Problem(
                    ERROR,
                    "column",
                    f"{table}.{name}",
                    "unexpected NOT NULL column without a default: every insert by the application fails",
                    f"drop it, or give it a default: ALTER TABLE {table} ALTER COLUMN {name} SET DEFAULT …",
                )
            )
    return problems


def _compare_primary_key(table: str, expected: Catalog, live: Catalog) -> list[Problem]:
    want, have = expected.primary_key(table), live.primary_key(table)
    if want is None:
        return []
    if have is None:
        return [
            Problem(
                ERROR,
                "primary-key",
                table,
                f"no primary key, expected {_keys(want.keys)}",
                f"ALTER TABLE {table} ADD PRIMARY KEY {_keys(want.keys)}",
            )
        ]
    if have.keys != want.keys:
        return [
            Problem(
                ERROR,
                "primary-key",
                table,
                f"primary key is {_keys(have.keys)}, expected {_keys(want.keys)}",
                "recreate the primary key",
            )
        ]
    column = want.keys[0]
    want_col = expected.columns.get(table, {}).get(column)
    have_col = live.columns.get(table, {}).get(column)
    # An identity column and a serial (a nextval default) are equally fine.
    if (
        want_col
        and have_col
        and (want_col.identity or want_col.has_default)
        and not (have_col.identity or have_col.has_default)
    ):
        return [
            Problem(
                ERROR,
                "primary-key",
                f"{table}.{column}",
                "has neither an identity nor a sequence default: inserts without an id fail",
                f"ALTER TABLE {table} ALTER COLUMN {column} ADD GENERATED BY DEFAULT AS IDENTITY",
            )
        ]
    return []


def _index_label(index: IndexInfo) -> str:
    where = f" WHERE {index.predicate}" if index.predicate else ""
    return f"{index.name} {index.method} {_keys(index.keys)}{where}"


def _compare_indexes(expected: Catalog, live: Catalog, tables: set[str]) -> list[Problem]:
    problems = []
    by_signature: dict[tuple, list[IndexInfo]] = {}
    for index in live.indexes:
        by_signature.setdefault(index.signature, []).append(index)
    live_by_name = {(i.table, i.name): i for i in live.indexes}
    for want in expected.indexes:
        if want.table not in tables or want.constraint == "p":
            continue
        obj = f"{want.table}.{want.name}"
        candidates = by_signature.get(want.signature, [])
        if want.unique:
            unique = [i for i in candidates if i.unique]
            valid = [i for i in unique if i.valid]
            kind = "unique constraint" if want.constraint == "u" else "unique index"
            if valid:
                if want.constraint == "u" and not any(i.constraint == "u" for i in valid):
                    problems.append(
                        Problem(
                            WARNING,
                            "unique",
                            obj,
                            f"{_keys(want.keys)} is enforced by unique index {valid[0].name}, not by a constraint",
                            f"ALTER TABLE {want.table} ADD CONSTRAINT {want.name} UNIQUE USING INDEX {valid[0].name}",
                        )
                    )
                continue
            # An index that is there but wrong is named as it is in the database.
            if unique:
                problems.append(
                    Problem(
                        ERROR,
                        "unique",
                        f"{want.table}.{unique[0].name}",
                        f"unique index {unique[0].name} on {_keys(want.keys)} is INVALID: uniqueness is not enforced",
                        f"resolve the duplicates, DROP INDEX CONCURRENTLY {unique[0].name}, then rebuild it with "
                        "CREATE UNIQUE INDEX CONCURRENTLY",
                    )
                )
            elif candidates:
                problems.append(
                    Problem(
                        ERROR,
                        "unique",
                        f"{want.table}.{candidates[0].name}",
                        f"{kind} on {_keys(want.keys)} is missing; {candidates[0].name} there is a plain index",
                        f"find the duplicates, then CREATE UNIQUE INDEX CONCURRENTLY on {want.table} {_keys(want.keys)}",
                    )
                )
            else:
                problems.append(_missing_index(want, live_by_name, kind))
            continue
        if any(i.valid for i in candidates):
            continue
        if candidates:
            problems.append(
                Problem(
                    ERROR,
                    "index",
                    f"{want.table}.{candidates[0].name}",
                    f"index {candidates[0].name} on {_keys(want.keys)} is INVALID (an interrupted concurrent build)",
                    "`python manage.py migrate` rebuilds it if its migration is unapplied; otherwise "
                    f"REINDEX INDEX CONCURRENTLY {candidates[0].name}",
                )
            )
        else:
            problems.append(_missing_index(want, live_by_name, "index"))
    return problems


def _missing_index(want: IndexInfo, live_by_name: dict, kind: str) -> Problem:
    same_name = live_by_name.get((want.table, want.name))
    detail = f"; an index of that name is {_index_label(same_name)}" if same_name else ""
    return Problem(
        ERROR,
        "unique" if want.unique else "index",
        f"{want.table}.{want.name}",
        f"{kind} {_index_label(want)} is missing{detail}",
        f"DROP INDEX CONCURRENTLY {want.name} (if present), then build {_keys(want.keys)} "
        f"with CREATE {'UNIQUE ' if want.unique else ''}INDEX CONCURRENTLY",
    )


def _compare_foreign_keys(expected: Catalog, live: Catalog, tables: set[str]) -> list[Problem]:
    problems = []
    live_by_columns = {(fk.table, fk.columns): fk for fk in live.foreign_keys}
    for want in expected.foreign_keys:
        if want.table not in tables:
            continue
        obj = f"{want.table}{_keys(want.columns)}"
        target = f"{want.ref_table}{_keys(want.ref_columns)}"
        have = live_by_columns.get((want.table, want.columns))
        if have is None:
            problems.append(
                Problem(
                    ERROR,
                    "foreign-key",
                    obj,
                    f"foreign key to {target} ON DELETE {want.on_delete} is missing",
                    f"ALTER TABLE {want.table} ADD FOREIGN KEY {_keys(want.columns)} REFERENCES {target} "
                    f"ON DELETE {want.on_delete} NOT VALID; then VALIDATE CONSTRAINT",
                )
            )
            continue
        if (have.ref_table, have.ref_columns) != (want.ref_table, want.ref_columns):
            problems.append(
                Problem(
                    ERROR,
                    "foreign-key",
                    obj,
                    f"references {have.ref_table}{_keys(have.ref_columns)}, expected {target}",
                    "recreate the foreign key",
                )
            )
        if have.on_delete != want.on_delete:
            problems.append(
                Problem(
                    ERROR,
                    "foreign-key",
                    obj,
                    f"{have.name} is ON DELETE {have.on_delete}, expected ON DELETE {want.on_delete}",
                    f"recreate {have.name} with ON DELETE {want.on_delete} (NOT VALID, then VALIDATE)",
                )
            )
        if not have.validated:
            problems.append(
                Problem(
                    ERROR,
                    "foreign-key",
                    obj,
                    f"{have.name} is NOT VALID: existing rows are not checked",
                    f"remove orphan rows, then ALTER TABLE {want.table} VALIDATE CONSTRAINT {have.name}",
                )
            )
    return problems


# --- Live-only checks ---------------------------------------------------------


def check_migrations(executor: MigrationExecutor) -> list[Problem]:
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [
        Problem(
            ERROR,
            "migrations",
            f"{migration.app_label}.{migration.name}",
            "rolled back" if backwards else "not applied",
            "run `python manage.py migrate`",
        )
        for migration, backwards in plan
    ]


def check_sequences(connection: BaseDatabaseWrapper, expected: Catalog, live: Catalog) -> list[Problem]:
    """A sequence behind max(id) makes the next insert fail with a duplicate key."""
    if connection.vendor != "postgresql":
        return [Problem(NOT_APPLICABLE, "sequence", "*", "SQLite assigns ids after the largest one")]
    problems = []
    with connection.cursor() as cursor:
        for table in sorted(set(expected.tables) & set(live.columns)):
            pk = expected.primary_key(table)
            if pk is None or len(pk.keys) != 1 or not expected.columns[table][pk.keys[0]].identity:
                continue
            column = pk.keys[0]
            if column not in live.columns[table]:
                continue
            cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [f'"{table}"', column])
            (sequence,) = cursor.fetchone()
            if sequence is None:
                continue
            cursor.execute(
                f'SELECT (SELECT max("{column}") FROM "{table}"), '
                f"(SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM {sequence})"
            )
            max_id, last = cursor.fetchone()
            if max_id is not None and last < max_id:
                problems.append(
                    Problem(
                        ERROR,
                        "sequence",
                        f"{table}.{column}",
                        f"sequence {sequence} is at {last}, behind max({column}) = {max_id}: the next insert fails",
                        f"SELECT setval('{sequence}', (SELECT max({column}) FROM {table}))",
                    )
                )
    return problems


def check_not_applicable(connection: BaseDatabaseWrapper) -> list[Problem]:
    if connection.vendor == "postgresql":
        return []
    return [
        Problem(NOT_APPLICABLE, "index", "*", "index validity (indisvalid) exists only on PostgreSQL"),
        Problem(NOT_APPLICABLE, "foreign-key", "*", "NOT VALID foreign keys exist only on PostgreSQL"),
    ]


def check_orphans(connection: BaseDatabaseWrapper, expected: Catalog, live: Catalog) -> list[Problem]:
    """Rows whose foreign key points nowhere, where no valid constraint rules them out."""
    live_fks = {(fk.table, fk.columns): fk for fk in live.foreign_keys}
    problems = []
    with connection.cursor() as cursor:
        for fk in expected.foreign_keys:
            have = live_fks.get((fk.table, fk.columns))
            columns = live.columns.get(fk.table, {})
            if len(fk.columns) != 1 or fk.columns[0] not in columns or fk.ref_table not in live.columns:
                continue
            if connection.vendor == "postgresql" and have is not None and have.validated:
                continue
            col, ref_col = fk.columns[0], fk.ref_columns[0]
            cursor.execute(
                f'SELECT count(*) FROM "{fk.table}" c WHERE c."{col}" IS NOT NULL AND NOT EXISTS '
                f'(SELECT 1 FROM "{fk.ref_table}" p WHERE p."{ref_col}" = c."{col}")'
            )
            (count,) = cursor.fetchone()
            if count:
                problems.append(
                    Problem(
                        ERROR,
                        "orphans",
                        f"{fk.table}.{col}",
                        f"{count} row(s) reference a missing {fk.ref_table}.{ref_col}",
                        f"DELETE FROM {fk.table} c WHERE NOT EXISTS (SELECT 1 FROM {fk.ref_table} p WHERE p.{ref_col} = c.{col}) "
                        "(after a backup)",
                    )
                )
    return problems
