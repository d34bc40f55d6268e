"""The catalogs compared: the live database's, and a scratch copy built from the migration state.

The expected schema is not a hand-kept list: the migration state's models are
created in a scratch space (a schema that is rolled back on PostgreSQL, an
in-memory database on SQLite) and both are read with the same catalog queries.
So types are compared as the database spells them (``format_type``), and
PostgreSQL states that Django's introspection hides (INVALID indexes,
``NOT VALID`` foreign keys) are read directly.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.executor import MigrationExecutor

ON_DELETE = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


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
