"""Real-time tests: the local Entra's fixtures, personas linked to it, and settings for quick timers."""

from __future__ import annotations

import pytest

from accounts.models import User
from tests.accounts.entra import conftest as entra_conftest
from tests.accounts.entra.conftest import ALICE, BOB, CLIENT_ID, TENANT, legacy_user

# The local Entra's fixtures, here too.
entra_server = entra_conftest.entra_server
entra = entra_conftest.entra

API = f"api://{CLIENT_ID}"


def linked(persona, **fields) -> User:
    """A user signed in before with Entra: linked to the persona's object id."""
    return legacy_user(
        persona.email.lower(),
        azure_entra_id=persona.oid,
        azure_tenant_id=TENANT,
        requires_entra_migration=False,
        **fields,
    )


@pytest.fixture
def alice(db) -> User:
    return linked(ALICE, full_name="Alice Example")


@pytest.fixture
def bob(db) -> User:
    return linked(BOB, full_name="Bob")


@pytest.fixture(scope="session", autouse=True)
def _no_server_left_running():
    """Whatever a failing test left running of the server processes it started ends with the session."""
    yield
    from tests.realtime.server import stop_all

    stop_all()


@pytest.fixture(scope="session")
def realtime_template(tmp_path_factory):
    """A migrated database the server-process tests clone, one per module (migrated once a session)."""
    from tests.realtime.server import LiveDatabase

    db = LiveDatabase.migrated(tmp_path_factory.mktemp("realtime-template"))
    yield db
    db.drop()


@pytest.fixture
def realtime_settings(settings):
    """Timers of a second, one database thread (tests count its statements), the in-memory layer."""
    settings.REALTIME_HEARTBEAT_S = 1
    settings.REALTIME_HEARTBEAT_WRITE_S = 3600  # the tests write heartbeats when they choose
    settings.REALTIME_RECHECK_S = 3600
    settings.REALTIME_SERVER_BEAT_S = 3600
    settings.REALTIME_DB_THREADS = 1
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    return settings
