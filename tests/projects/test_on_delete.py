"""Deleting a user cascades in the database itself, as the legacy schema did.

Rows written outside Django (the legacy application, SQL run by an operator)
must behave the same as rows deleted through the ORM.
"""

from __future__ import annotations

import pytest
from django.db import connection

from accounts.models import LegacyRefreshToken, User, UserPreferences
from integrations.models import GitHubSyncRecord
from projects.models import GeneratedFile, Project
from realtime.models import WebSocketSession


@pytest.fixture
def alice(db):
    user = User.objects.create_user("alice@example.com")
    project = Project.objects.create(owner=user, name="network", cloud_provider="azure", iac_tool="bicep")
    GeneratedFile.objects.create(project=project, path="main.bicep", content="x", sha256="0" * 64)
    UserPreferences.objects.create(user=user)
    LegacyRefreshToken.objects.create(user=user, token_hash="1" * 64, expires_at="2030-01-01T00:00:00Z")
    WebSocketSession.objects.create(user=user, channel_name="c")
    return user


def counts():
    return [m.objects.count() for m in (Project, GeneratedFile, UserPreferences, LegacyRefreshToken, WebSocketSession)]


def test_sql_delete_of_a_user_cascades_in_the_database(alice):
    bob = User.objects.create_user("bob@example.com")
    sync = GitHubSyncRecord.objects.create(
        project=Project.objects.create(owner=bob, name="p", cloud_provider="aws", iac_tool="terraform"),
        requested_by=alice,
        repository_owner="o",
        repository_name="r",
    )
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM users WHERE id = %s", [alice.pk])
    assert counts() == [1, 0, 0, 0, 0]
    sync.refresh_from_db()
    assert sync.requested_by_id is None  # ON DELETE SET NULL


def test_orm_delete_of_a_user_cascades_too(alice):
    alice.delete()
    assert counts() == [0, 0, 0, 0, 0]


@pytest.mark.postgres
def test_foreign_keys_carry_their_on_delete_action_in_postgres(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conrelid::regclass::text || '.' || a.attname, confdeltype FROM pg_constraint c "
            "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
            "WHERE contype = 'f' AND confrelid IN ('users'::regclass, 'projects'::regclass)"
        )
        actions = dict(cursor.fetchall())
    assert actions["projects.owner_id"] == "c"
    assert actions["generated_files.project_id"] == "c"
    assert actions["refresh_tokens.user_id"] == "c"
    assert actions["user_preferences.user_id"] == "c"
    assert actions["websocket_sessions.user_id"] == "c"
    assert actions["github_sync_records.project_id"] == "c"
    assert actions["github_sync_records.requested_by_id"] == "n"
    # Django's own tables keep Django's emulated cascade (NO ACTION in the database).
    assert actions["django_admin_log.user_id"] == "a"
