"""The project's GitHub page: the mapping, Sync now, the syncs; only the owner and staff see it."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import User
from integrations.models import GitHubRepositoryMapping, GitHubSyncRecord
from projects.models import Project

pytestmark = pytest.mark.django_db


def as_user(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_owner_maps_the_project_then_syncs_it(github_settings, project, django_capture_on_commit_callbacks):
    github = github_settings
    github.create_repo("acme", "infra")
    client = as_user(project.owner)
    url = f"/projects/{project.pk}/github/"
    assert client.get(url).status_code == 200
    response = client.post(url, {"action": "map", "repository": "acme/infra", "branch": "main", "path": "/web/"})
    assert response.status_code == 302
    mapping = GitHubRepositoryMapping.objects.get(project=project)
    assert (mapping.repository_owner, mapping.repository_name, mapping.path) == ("acme", "infra", "web")

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"action": "sync"})
    assert response.status_code == 302
    record = GitHubSyncRecord.objects.get(project=project)
    assert record.status == "pending"
    page = client.get(url)
    assert f'data-record="{record.pk}"'.encode() in page.content and b"Pending" in page.content


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"repository": "not a repo", "branch": "main", "path": ""}, b"owner/name"),
        ({"repository": "acme/infra", "branch": "main", "path": "../up"}, b"segment"),
        ({"repository": "acme/infra", "branch": "main", "path": ".git/hooks"}, b".git"),
    ],
)
def test_a_bad_mapping_is_a_400_with_the_reason(github_settings, project, data, message):
    response = as_user(project.owner).post(f"/projects/{project.pk}/github/", {"action": "map", **data})
    assert response.status_code == 400
    assert message in response.content
    assert not GitHubRepositoryMapping.objects.exists()


def test_another_user_gets_a_404_and_staff_see_it(github_settings, project):
    url = f"/projects/{project.pk}/github/"
    assert as_user(User.objects.create_user("bob@example.com")).get(url).status_code == 404
    assert as_user(User.objects.create_user("op@example.com", is_staff=True)).get(url).status_code == 200


def test_the_page_says_when_the_integration_is_off(project, settings):
    settings.GITHUB_ENABLED = False
    response = as_user(project.owner).get(f"/projects/{project.pk}/github/")
    assert response.status_code == 200
    assert b'id="github-off"' in response.content


def test_the_project_list_and_page_show_the_mapping_and_last_sync(github_settings, project, django_assert_max_num_queries):
    from integrations.github import services

    client = as_user(project.owner)
    assert b"Not mapped" in client.get("/projects/").content
    services.set_mapping(project=project, owner="acme", name="infra", path="web")
    GitHubSyncRecord.objects.create(project=project, repository_owner="acme", repository_name="infra", status="failed")
    GitHubSyncRecord.objects.create(project=project, repository_owner="acme", repository_name="infra", status="succeeded")
    for url in ("/projects/", f"/projects/{project.pk}/"):
        page = client.get(url).content.decode()
        assert "acme/infra@main:web" in page and "status-succeeded" in page and "status-failed" not in page
    for n in range(10):
        Project.objects.create(owner=project.owner, name=f"p{n}", cloud_provider="aws", iac_tool="terraform")
    with django_assert_max_num_queries(12):  # constant: not a query per project
        client.get("/projects/")


def test_the_account_page_shows_the_connection(github_settings, project):
    client = as_user(project.owner)
    page = client.get("/account/").content
    assert b'id="github-connect"' in page and b"Not connected" in page
    User.objects.filter(pk=project.owner.pk).update(github_username="octocat", github_connected_at="2026-12-01T00:00Z")
    page = client.get("/account/").content
    assert b"Connected as <strong>octocat</strong>" in page and b'id="github-disconnect"' in page
