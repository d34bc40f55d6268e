"""Compare the live database with the schema the migrations expect.

The expected schema is not a hand-kept list: the migration state's models are
created in a scratch space (a schema that is rolled back on PostgreSQL, an
in-memory database on SQLite) and both are read with the same catalog queries.
So types are compared as the database spells them (``format_type``), indexes
by their ordered keys, method and predicate rather than by name, and
PostgreSQL states that Django's introspection hides (INVALID indexes,
``NOT VALID`` foreign keys) are read directly.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.executor import MigrationExecutor

ERROR = "error"
WARNING = "warning"
NOT_APPLICABLE = "n/a"

ON_DELETE = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
HASH_COLUMNS = ("azure_access_token_hash", "azure_refresh_token_hash", "github_access_token_hash")


@dataclass(frozen=True)
class Problem:
    severity: str
    check: str
    object: str
    message: str
    fix: str = ""


@dataclass(frozen=True)
class Column:
    type: str
    not_null: bool
    has_default: bool
    identity: bool = False


@dataclass(frozen=True)
class IndexInfo:
    name: str
    table: str
    keys: tuple[str, ...]
    method: str
    predicate: str | None
    unique: bool
    valid: bool
    constraint: str | None  # 'p', 'u' or None for a plain index

    @property
    def signature(self) -> tuple:
        return (self.table, self.keys, self.method, self.predicate)


@dataclass(frozen=True)
class ForeignKey:
    name: str
    table: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    on_delete: str
    validated: bool


@dataclass
class Catalog:
    tables: dict[str, str] = field(default_factory=dict)  # name -> "table" | "view" | ...
    columns: dict[str, dict[str, Column]] = field(default_factory=dict)
    indexes: list[IndexInfo] = field(default_factory=list)
    foreign_keys: list[ForeignKey] = field(default_factory=list)

    def primary_key(self, table: str) -> IndexInfo | None:
        return next((i for i in self.indexes if i.table == table and i.constraint == "p"), None)


@dataclass
class Report:
    vendor: str
    problems: list[Problem] = field(default_factory=list)
    duration_ms: float = 0.0

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == WARNING]

    def as_dict(self) -> dict:
        return {
            "database": self.vendor,
            "ok": not self.errors,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "duration_ms": round(self.duration_ms, 1),
            "problems": [asdict(p) for p in self.problems],
        }


# --- Reading catalogs -------------------------------------------------------

_PG_RELKINDS = {"r": "table", "p": "table", "v": "view", "m": "materialized view", "f": "foreign table"}


def _read_postgres(cursor, schema: str) -> Catalog:
    catalog = Catalog()
    cursor.execute(
        "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
        [schema],
    )
    catalog.tables = {name: _PG_RELKINDS[kind] for name, kind in cursor.fetchall()}
    cursor.execute(
        "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.atthasdef, "
        "       a.attidentity <> '' "
        "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped",
        [schema],
    )
    for table, name, type_, not_null, has_default, identity in cursor.fetchall():
        catalog.columns.setdefault(table, {})[name] = Column(type_, not_null, has_default, identity)
    # One text per key: the column or expression, a non-default operator
    # class, and the sort order; so (a, b) differs from (b, a) and from
    # (a varchar_pattern_ops, b).
    cursor.execute(
        "SELECT i.relname, t.relname, am.amname, ix.indisunique, ix.indisvalid AND ix.indisready, "
        "       pg_get_expr(ix.indpred, ix.indrelid, true), con.contype, "
        "       ARRAY(SELECT pg_get_indexdef(ix.indexrelid, k, true) "
        "                    || CASE WHEN opc.opcdefault THEN '' ELSE ' ' || opc.opcname END "
        "                    || CASE WHEN (ix.indoption[k - 1] & 1) = 1 THEN ' DESC' ELSE '' END "
        "             FROM generate_series(1, ix.indnkeyatts) AS k "
        "             JOIN pg_opclass opc ON opc.oid = ix.indclass[k - 1] ORDER BY k) "
        "FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid JOIN pg_class t ON t.oid = ix.indrelid "
        "JOIN pg_namespace n ON n.oid = t.relnamespace JOIN pg_am am ON am.oid = i.relam "
        "LEFT JOIN pg_constraint con ON con.conindid = ix.indexrelid AND con.conrelid = ix.indrelid "
        "     AND con.contype IN ('p', 'u') "
        "WHERE n.nspname = %s",
        [schema],
    )
    for name, table, method, unique, valid, predicate, contype, keys in cursor.fetchall():
        catalog.indexes.append(IndexInfo(name, table, tuple(keys), method, predicate, unique, valid, contype))
    cursor.execute(
        "SELECT con.conname, t.relname, "
        "       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(num, ord) "
        "             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num ORDER BY k.ord), "
        "       rt.relname, "
        "       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(num, ord) "
        "             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num ORDER BY k.ord), "
        "       con.confdeltype, con.convalidated "
        "FROM pg_constraint con JOIN pg_class t ON t.oid = con.conrelid JOIN pg_class rt ON rt.oid = con.confrelid "
        "JOIN pg_namespace n ON n.oid = t.relnamespace WHERE con.contype = 'f' AND n.nspname = %s",
        [schema],
    )
    for name, table, cols, ref_table, ref_cols, deltype, validated in cursor.fetchall():
        catalog.foreign_keys.append(
            ForeignKey(name, table, tuple(cols), ref_table, tuple(ref_cols), ON_DELETE[deltype], validated)
        )
    return catalog


def _normalize_sql(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace('"', "").replace("`", "")).strip().lower()


def _read_sqlite(cursor) -> Catalog:
    catalog = Catalog()
    cursor.execute(
        "SELECT name, type, sql FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%'"
    )
    for name, kind, _sql in cursor.fetchall():
        catalog.tables[name] = kind
    for table, kind in catalog.tables.items():
        if kind != "table":
            continue
        cursor.execute(f'PRAGMA table_xinfo("{table}")')
        pk_columns = []
        for _cid, name, type_, not_null, default, pk, _hidden in cursor.fetchall():
            # SQLite's INTEGER PRIMARY KEY is the rowid: it never needs a default.
            catalog.columns.setdefault(table, {})[name] = Column(
                type_.lower(), bool(not_null) or bool(pk), default is not None, bool(pk)
            )
            if pk:
                pk_columns.append((pk, name))
        if pk_columns:
            keys = tuple(name for _, name in sorted(pk_columns))
            catalog.indexes.append(IndexInfo(f"{table}_pkey", table, keys, "btree", None, True, True, "p"))
        cursor.execute(f'PRAGMA index_list("{table}")')
        for _seq, index, unique, origin, partial in cursor.fetchall():
            if origin == "pk":
                continue
            cursor.execute(f'PRAGMA index_xinfo("{index}")')
            keys = []
            expression = False
            for _seqno, cid, name, desc, _coll, key in cursor.fetchall():
                if not key:
                    continue
                expression = expression or cid == -2
                keys.append(f"{name}{' DESC' if desc else ''}")
            cursor.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = %s", [index])
            row = cursor.fetchone()
            sql = _normalize_sql(row[0]) if row and row[0] else ""
            predicate = sql.split(" where ", 1)[1] if partial and " where " in sql else None
            if expression:
                # The key list as written, without its enclosing parentheses:
                # "(lower(email))" for Lower("email").
                body = sql.split(" on ", 1)[1].split(" where ", 1)[0]
                keys = [body[body.index("(") + 1 : body.rindex(")")].strip()]
            constraint = "u" if origin == "u" else None
            if constraint:
                # SQLite calls a UNIQUE constraint's index sqlite_autoindex_<table>_<n>
                # and forgets the constraint's name: name it as PostgreSQL does.
                index = f"{table}_{'_'.join(keys)}_key"
            catalog.indexes.append(
                IndexInfo(index, table, tuple(keys), "btree", predicate, bool(unique), True, constraint)
            )
        cursor.execute(f'PRAGMA foreign_key_list("{table}")')
        grouped: dict[int, list] = {}
        for fk_id, _seq, ref_table, col, ref_col, _on_update, on_delete, _match in cursor.fetchall():
            grouped.setdefault(fk_id, []).append((col, ref_table, ref_col, on_delete))
        for fk_id, rows in grouped.items():
            catalog.foreign_keys.append(
                ForeignKey(
                    f"{table}_fk{fk_id}",
                    table,
                    tuple(r[0] for r in rows),
                    rows[0][1],
                    tuple(r[2] for r in rows),
                    rows[0][3].upper(),
                    True,
                )
            )
    return catalog


def _expected_models(executor: MigrationExecutor) -> list:
    state = executor.loader.project_state()
    return [m for m in state.apps.get_models() if m._meta.managed and not m._meta.proxy]


class _Rollback(Exception):
    pass


def _expected_postgres(connection: BaseDatabaseWrapper, models: list) -> Catalog:
    scratch = f"zz_expected_schema_{os.getpid()}"
    catalog = None
    try:
        with transaction.atomic(using=connection.alias):
            with connection.cursor() as cursor:
                cursor.execute("SELECT current_setting('search_path')")
                (search_path,) = cursor.fetchone()
                cursor.execute(f'CREATE SCHEMA "{scratch}"')
                cursor.execute(f'SET LOCAL search_path TO "{scratch}"')
            with connection.schema_editor(atomic=False) as editor:
                for model in models:
                    editor.create_model(model)
            with connection.cursor() as cursor:
                catalog = _read_postgres(cursor, scratch)
                cursor.execute("SELECT set_config('search_path', %s, true)", [search_path])
            raise _Rollback
    except _Rollback:
        pass
    return catalog


def _expected_sqlite(connection: BaseDatabaseWrapper, models: list) -> Catalog:
    settings_dict = {**connection.settings_dict, "NAME": ":memory:"}
    scratch = connection.__class__(settings_dict, alias="__expected_schema__")
    try:
        with scratch.schema_editor(atomic=False) as editor:
            for model in models:
                editor.create_model(model)
        with scratch.cursor() as cursor:
            return _read_sqlite(cursor)
    finally:
        scratch.close()


def read_catalogs(connection: BaseDatabaseWrapper, executor: MigrationExecutor) -> tuple[Catalog, Catalog]:
    """(expected, live) catalogs of this connection's database."""
    models = _expected_models(executor)
    if connection.vendor == "postgresql":
        expected = _expected_postgres(connection, models)
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_schema()")
            (schema,) = cursor.fetchone()
            live = _read_postgres(cursor, schema)
    elif connection.vendor == "sqlite":
        expected = _expected_sqlite(connection, models)
        with connection.cursor() as cursor:
            live = _read_sqlite(cursor)
    else:
        raise NotImplementedError(f"validate_entra_schema supports PostgreSQL and SQLite, not {connection.vendor}")
    return expected, live


# --- Comparing ---------------------------------------------------------------


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


def check_data(connection: BaseDatabaseWrapper, live: Catalog) -> list[Problem]:
    """The Entra data itself: links, duplicates, token columns, email collisions."""
    from accounts.models import User, UserPreferences

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
        for column in HASH_COLUMNS:
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


def validate(using: str = "default") -> Report:
    connection = connections[using]
    started = time.perf_counter()
    report = Report(vendor=connection.vendor)
    # One migration graph (read from disk and django_migrations) for both uses.
    executor = MigrationExecutor(connection)
    report.problems += check_migrations(executor)
    expected, live = read_catalogs(connection, executor)
    report.problems += compare_schema(expected, live)
    report.problems += check_sequences(connection, expected, live)
    report.problems += check_orphans(connection, expected, live)
    report.problems += check_data(connection, live)
    report.problems += check_not_applicable(connection)
    report.duration_ms = (time.perf_counter() - started) * 1000
    return report
