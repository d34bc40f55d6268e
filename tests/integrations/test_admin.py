"""The GitHub sync records admin: browse, filter and search; nothing can be added or edited."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import User
from integrations.models import GitHubSyncRecord
from projects.models import Project
from tests.support.admin import shown

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:integrations_githubsyncrecord_changelist")
Status = GitHubSyncRecord.Status


@pytest.fixture
def owner():
    return User.objects.create_user("owner@example.com")


def project(owner: User, name: str) -> Project:
    return Project.objects.create(owner=owner, name=name, cloud_provider="azure", iac_tool="terraform")


def sync(project: Project, owner: str, name: str, status: str, created_at: datetime, **fields) -> GitHubSyncRecord:
    fields.setdefault("requested_by", project.owner)
    return GitHubSyncRecord.objects.create(
        project=project,
        repository_owner=owner,
        repository_name=name,
        status=status,
        created_at=created_at,
        **fields,
    )


@pytest.fixture
def records(owner) -> dict[str, GitHubSyncRecord]:
    network = project(owner, "landing-zone-network")
    billing = project(owner, "billing-dashboard")
    return {
        "network_ok": sync(network, "contoso", "infra-network", Status.SUCCEEDED, datetime(2025, 3, 4, 10, tzinfo=UTC)),
        "network_failed": sync(
            network, "contoso", "infra-network", Status.FAILED, datetime(2026, 1, 9, 8, tzinfo=UTC), last_error="422"
        ),
        "billing_failed": sync(billing, "fabrikam", "billing-iac", Status.FAILED, datetime(2026, 2, 1, 12, tzinfo=UTC)),
        "billing_pending": sync(
            billing, "fabrikam", "billing-iac", Status.PENDING, datetime(2026, 2, 2, 9, tzinfo=UTC)
        ),
    }


def listed(response) -> set[int]:
    return {record.pk for record in shown(response)}


def pks(records: dict[str, GitHubSyncRecord], *names: str) -> set[int]:
    return {records[name].pk for name in names}


def test_changelist_lists_every_record_with_its_project_and_requester(client, operator, records):
    response = client.get(CHANGELIST)

    assert listed(response) == pks(records, *records)
    html = response.content.decode()
    assert "contoso/infra-network" in html and "fabrikam/billing-iac" in html
    assert "landing-zone-network" in html and "owner@example.com" in html


def test_changelist_joins_project_and_requester(client, operator, owner, records):
    with CaptureQueriesContext(connection) as few:
        client.get(CHANGELIST)
    for i in range(5):
        requester = User.objects.create_user(f"u{i}@example.com")
        sync(project(requester, f"p{i}"), f"org{i}", "repo", Status.RUNNING, datetime(2026, 3, 1, tzinfo=UTC))
    with CaptureQueriesContext(connection) as many:
        response = client.get(CHANGELIST)

    assert len(listed(response)) == 9
    assert len(many) == len(few)


def test_filter_by_status(client, operator, records):
    assert listed(client.get(CHANGELIST, {"status__exact": "failed"})) == pks(
        records, "network_failed", "billing_failed"
    )
    assert listed(client.get(CHANGELIST, {"status__exact": "pending"})) == pks(records, "billing_pending")


def test_date_hierarchy_narrows_by_created_at(client, operator, records):
    assert listed(client.get(CHANGELIST, {"created_at__year": "2025"})) == pks(records, "network_ok")
    assert listed(client.get(CHANGELIST, {"created_at__year": "2026", "created_at__month": "2"})) == pks(
        records, "billing_failed", "billing_pending"
    )


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("contoso", ("network_ok", "network_failed")),
        ("billing-iac", ("billing_failed", "billing_pending")),
        ("landing-zone", ("network_ok", "network_failed")),
    ],
    ids=["repository_owner", "repository_name", "project_name"],
)
def test_search(client, operator, records, term, expected):
    assert listed(client.get(CHANGELIST, {"q": term})) == pks(records, *expected)


def test_records_cannot_be_added(client, operator):
    assert client.get(reverse("admin:integrations_githubsyncrecord_add")).status_code == 403


def test_records_are_read_only(client, operator, records):
    record = records["network_failed"]
    url = reverse("admin:integrations_githubsyncrecord_change", args=[record.pk])

    response = client.get(url)

    assert response.status_code == 200
    assert not response.context["adminform"].form.fields
    assert "422" in response.content.decode()
    assert client.post(url, {"status": "succeeded", "last_error": ""}).status_code == 403
    record.refresh_from_db()
    assert (record.status, record.last_error) == (Status.FAILED, "422")


def test_records_can_be_deleted(client, operator, records):
    record = records["billing_pending"]

    response = client.post(reverse("admin:integrations_githubsyncrecord_delete", args=[record.pk]), {"post": "yes"})

    assert response.status_code == 302
    assert not GitHubSyncRecord.objects.filter(pk=record.pk).exists()
