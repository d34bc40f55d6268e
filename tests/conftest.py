"""Shared fixtures. The helpers behind them are modules of ``tests/support/``.

The pytest-django test database serves ordinary tests. Tests of migrations,
adoption and the runbook need a database of their own that they can take to
any state (``tests.support.scratch``): ``scratch_db`` is an empty one of the
same kind (a new PostgreSQL database, or a SQLite file), dropped afterwards;
the others are clones of templates built once per session:

- ``migrated_db``: fully migrated, no rows;
- ``legacy_db``: at the legacy baseline (the password-era schema), no rows;
- ``seeded_legacy_db``: at the legacy baseline with ``seed_legacy_data --users 25 --edge-cases``
  (29 users, 50 projects, 100 generated files, 25 refresh tokens).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.support import ROOT
from tests.support.admin import sign_in
from tests.support.legacy import migrate_to_baseline, seed
from tests.support.scratch import Databases, ScratchDatabase, is_postgres

__all__ = ["ROOT"]  # for the modules that still import it from here; its home is tests.support


@pytest.fixture(scope="session")
def databases(tmp_path_factory, django_db_blocker):
    # SQLite files in memory where there is a tmpfs: no fsync at every commit of a migration.
    shm = Path("/dev/shm")  # noqa: S108 (mkdtemp makes a private directory of its own there)
    in_memory = shm.is_dir() and os.access(shm, os.W_OK)
    directory = Path(tempfile.mkdtemp(prefix="scratch-", dir=shm)) if in_memory else tmp_path_factory.mktemp("scratch")
    databases = Databases(directory, django_db_blocker)
    yield databases
    databases.close()
    if in_memory:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def clone(databases):
    """``clone(template)``: a scratch copy of a template database, dropped after the test."""
    made: list[ScratchDatabase] = []

    def clone(template: ScratchDatabase) -> ScratchDatabase:
        made.append(databases.clone(template))
        return made[-1]

    yield clone
    for db in made:
        databases.drop(db)


@pytest.fixture
def scratch_db(databases):
    db = databases.empty()
    yield db
    databases.drop(db)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_use_migrations, django_db_keepdb, databases):
    """The test database, migrated; and a copy of it as it is then, the template of ``migrated_db``.

    Migrating once per session is the slowest part of setting up (seconds).
    """
    from django.db import connection

    # Only if the session has tests that asked for the test database (else there is none).
    created = connection.settings_dict["NAME"] == connection.creation._get_test_db_name()
    if created and django_db_use_migrations and not django_db_keepdb:
        databases.migrated = databases.freeze(databases.copy_test_database())
    return django_db_setup


@pytest.fixture(scope="session")
def migrated_template(databases, django_db_setup):
    if databases.migrated:
        db = databases.migrated
    else:  # no test database, or not one `migrate` made just now (--nomigrations, --reuse-db)
        db = databases.empty()
        db.call("migrate", "--no-input")
        databases.freeze(db)
    yield db
    databases.drop(db)


@pytest.fixture
def migrated_db(clone, migrated_template):
    return clone(migrated_template)


@pytest.fixture(scope="session")
def legacy_template(databases):
    db = databases.empty()
    migrate_to_baseline(db)
    yield databases.freeze(db)
    databases.drop(db)


@pytest.fixture
def legacy_db(clone, legacy_template):
    return clone(legacy_template)


@pytest.fixture(scope="session")
def seeded_legacy_template(databases, legacy_template):
    db = databases.clone(legacy_template)
    seed(db, users=25, edge_cases=True)
    yield databases.freeze(db)
    databases.drop(db)


@pytest.fixture
def seeded_legacy_db(clone, seeded_legacy_template):
    return clone(seeded_legacy_template)


@pytest.fixture
def operator(client, db):
    """A superuser signed in to the admin (as Entra sign-in would have done)."""
    from accounts.models import User

    user = User.objects.create_superuser("admin@example.com")
    sign_in(client, user)
    return user


@pytest.fixture(autouse=True)
def _empty_cache():
    """Counters kept in the cache (the sign-in throttle) start from zero in every test."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(scope="session", autouse=True)
def _plain_http():
    """The test client and the live server speak plain HTTP, which off DEBUG (as here) is redirected to https.

    For the whole session, so that it is in force before the live server loads its middleware.
    Only the redirect is off: cookies stay secure and HSTS on, as in production. Tests of the
    redirect turn it back on; subprocesses (``manage.py``) read the environment as an operator's would.
    """
    from django.test import override_settings

    with override_settings(SECURE_SSL_REDIRECT=False):
        yield


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason="PostgreSQL only: run with DATABASE_URL=postgres://…")
    if not is_postgres():
        for item in items:
            if "postgres" in item.keywords:
                item.add_marker(skip)
