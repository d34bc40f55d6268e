"""The Entra link audit cannot be erased: not through the admin, not by deleting the user."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.db import connection
from django.test import RequestFactory
from django.urls import reverse

from accounts.models import EntraLinkAudit, User
from tests.support.admin import shown

pytestmark = pytest.mark.django_db


@pytest.fixture
def bob():
    return User.objects.create_user("bob@example.com", azure_entra_id="oid-bob", azure_tenant_id="tenant-a")


@pytest.fixture
def audit(bob):
    return EntraLinkAudit.objects.create(
        user=bob, event=EntraLinkAudit.Event.LINKED, tenant_id="tenant-a", object_id="oid-bob", matched_email=bob.email
    )


def stored(audit: EntraLinkAudit) -> tuple:
    row = EntraLinkAudit.objects.values_list("user_id", "matched_email", "tenant_id", "object_id").get(pk=audit.pk)
    return tuple(row)


def test_audit_row_survives_the_orm_deleting_its_user(bob, audit):
    user_id = bob.pk

    bob.delete()

    assert not User.objects.filter(pk=user_id).exists()
    assert stored(audit) == (user_id, "bob@example.com", "tenant-a", "oid-bob")


def test_audit_row_survives_sql_deleting_its_user(bob, audit):
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM users WHERE id = %s", [bob.pk])

    assert stored(audit) == (bob.pk, "bob@example.com", "tenant-a", "oid-bob")


def test_audit_rows_cannot_be_deleted_in_the_admin_even_by_a_superuser(client, operator, audit):
    request = RequestFactory().get("/")
    request.user = operator
    model_admin = admin.site._registry[EntraLinkAudit]

    assert not model_admin.has_delete_permission(request)
    assert not model_admin.has_delete_permission(request, audit)
    assert "delete_selected" not in model_admin.get_actions(request)
    delete_url = reverse("admin:accounts_entralinkaudit_delete", args=[audit.pk])
    assert client.get(delete_url).status_code == 403
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    client.post(
        reverse("admin:accounts_entralinkaudit_changelist"),
        {"action": "delete_selected", "_selected_action": [audit.pk], "post": "yes"},
    )
    assert EntraLinkAudit.objects.filter(pk=audit.pk).exists()


def test_audit_rows_cannot_be_added_or_changed_in_the_admin(client, operator, audit):
    assert client.get(reverse("admin:accounts_entralinkaudit_add")).status_code == 403
    change_url = reverse("admin:accounts_entralinkaudit_change", args=[audit.pk])
    assert client.post(change_url, {"event": "created", "object_id": "forged"}).status_code == 403
    assert stored(audit) == (audit.user_id, "bob@example.com", "tenant-a", "oid-bob")


def test_admin_links_an_audit_row_to_its_user(client, operator, bob, audit):
    user_url = reverse("admin:accounts_user_change", args=[bob.pk])

    listing = client.get(reverse("admin:accounts_entralinkaudit_changelist"))
    page = client.get(reverse("admin:accounts_entralinkaudit_change", args=[audit.pk]))

    assert shown(listing) == [audit]
    assert f'href="{user_url}"' in listing.content.decode()
    assert page.status_code == 200
    assert f'href="{user_url}"' in page.content.decode()


def test_admin_shows_audit_rows_of_deleted_users(client, operator, bob, audit):
    user_id = bob.pk
    bob.delete()
    changelist = reverse("admin:accounts_entralinkaudit_changelist")

    listing = client.get(changelist)
    found = client.get(changelist, {"q": "bob@example.com"})
    page = client.get(reverse("admin:accounts_entralinkaudit_change", args=[audit.pk]))

    assert shown(listing) == [audit]
    assert f"deleted user {user_id}" in listing.content.decode()
    assert shown(found) == [audit]
    assert page.status_code == 200
    assert f"deleted user {user_id}" in page.content.decode()


def test_migration_keeps_existing_audit_rows_and_they_outlive_their_user(migrated_db):
    migrated_db.call("migrate", "accounts", "0006", "--no-input")
    migrated_db.execute("INSERT INTO users (id, email) VALUES (42, 'carol@example.com')")
    migrated_db.execute(
        "INSERT INTO entra_link_audits (user_id, event, tenant_id, object_id, matched_email, created_at) "
        "VALUES (42, 'linked', 'tenant-a', 'oid-carol', 'carol@example.com', CURRENT_TIMESTAMP)"
    )

    migrated_db.call("migrate", "--no-input")
    # SQLite enforces foreign keys only when a connection asks it to.
    pragma = "PRAGMA foreign_keys = ON; " if migrated_db.vendor == "sqlite" else ""
    migrated_db.executescript(f"{pragma}DELETE FROM users WHERE id = 42;")

    assert migrated_db.execute("SELECT count(*) FROM users WHERE id = 42") == [(0,)]
    assert migrated_db.execute("SELECT user_id, matched_email, tenant_id, object_id FROM entra_link_audits") == [
        (42, "carol@example.com", "tenant-a", "oid-carol")
    ]
    assert migrated_db.call("validate_entra_schema", check=False).returncode == 0
