"""sync_entra_profiles: Graph with the app's own credentials, per-user failures reported."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.models import ProfilePhoto
from tests.accounts.entra.conftest import ALICE, BOB, TENANT, legacy_user

pytestmark = pytest.mark.django_db


def linked(email: str, oid: str):
    return legacy_user(email, azure_entra_id=oid, azure_tenant_id=TENANT, requires_entra_migration=False)


def test_syncs_every_linked_user_with_the_app_token(entra):
    alice = linked("alice@example.com", ALICE.oid)
    out = StringIO()
    call_command("sync_entra_profiles", stdout=out)
    alice.refresh_from_db()
    assert (alice.organization, alice.department) == ("Example Corp", "Platform")
    assert bytes(ProfilePhoto.objects.get(user=alice).content) == ALICE.photo
    assert "Synced 1 profile(s); 0 failure(s)." in out.getvalue()
    photo_fetches = entra.graph_requests.get(f"/v1.0/users/{ALICE.oid}/photo/$value", 0)

    call_command("sync_entra_profiles", stdout=StringIO())
    # Unchanged ETag: Graph answered 304 and the photo was kept.
    assert entra.graph_requests.get(f"/v1.0/users/{ALICE.oid}/photo/$value", 0) == photo_fetches + 1
    assert bytes(ProfilePhoto.objects.get(user=alice).content) == ALICE.photo


def test_reports_each_failure_and_exits_non_zero(entra):
    linked("alice@example.com", ALICE.oid)
    linked("ghost@example.com", "99999999-0000-4000-8000-000000000009")
    linked("bob@example.com", BOB.oid)
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError, match="1 profile"):
        call_command("sync_entra_profiles", stdout=out, stderr=err)
    assert "FAILED ghost@example.com" in err.getvalue()
    assert "Synced 2 profile(s); 1 failure(s)." in out.getvalue()
