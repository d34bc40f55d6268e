"""/projects/: one's own projects (staff: everyone's), newest first, 25 a page; a project's files; one file."""

from __future__ import annotations

import hashlib

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from projects.models import GeneratedFile
from tests.pages.conftest import make_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(client):
    user = User.objects.create(email="alice@example.com", full_name="Alice Example")
    client.force_login(user)
    return user


@pytest.fixture
def bob():
    return User.objects.create(email="bob@example.com", full_name="Bob")


def names(response) -> list[str]:
    return [project.name for project in response.context["page_obj"]]


def test_the_list_shows_only_ones_own_projects_with_their_file_counts(client, alice, bob):
    make_project(alice, "network-hub", files=3)
    make_project(bob, "bobs-project", files=1)

    response = client.get("/projects/")

    assert response.status_code == 200
    assert names(response) == ["network-hub"]
    assert response.context["page_obj"][0].file_count == 3
    assert b"bobs-project" not in response.content
    assert b"<th scope=\"col\">Owner</th>" not in response.content
    assert b"<h1>Your projects</h1>" in response.content


def test_staff_see_every_project_with_an_owner_column(client, alice, bob):
    make_project(alice, "network-hub")
    make_project(bob, "bobs-project")
    staff = User.objects.create(email="staff@example.com", is_staff=True)
    client.force_login(staff)

    response = client.get("/projects/")

    assert sorted(names(response)) == ["bobs-project", "network-hub"]
    assert b"<th scope=\"col\">Owner</th>" in response.content
    assert b'<td class="owner">bob@example.com</td>' in response.content
    assert b"<h1>All projects</h1>" in response.content


def test_projects_come_newest_first_25_a_page(client, alice):
    for i in range(30):
        make_project(alice, f"project-{i:02}", files=0)

    first = client.get("/projects/")
    second = client.get("/projects/", {"page": 2})

    assert names(first) == [f"project-{i:02}" for i in range(29, 4, -1)]
    assert names(second) == [f"project-{i:02}" for i in range(4, -1, -1)]
    assert b'href="?page=2"' in first.content and b"Page 1 of 2" in first.content
    assert b'href="?page=1"' in second.content
    assert names(client.get("/projects/", {"page": "nonsense"})) == names(first)  # a bad page number: the first


def test_the_list_costs_the_same_queries_for_3_projects_or_25(client, alice):
    def queries() -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/projects/").status_code == 200
        return [query["sql"] for query in captured.captured_queries]

    client.get("/projects/")  # the first request of a session saves it (sliding expiry): not counted
    for i in range(3):
        make_project(alice, f"few-{i}", files=2)
    few = queries()
    for i in range(22):
        make_project(alice, f"many-{i}", files=2)
    many = queries()

    assert len(many) == len(few)
    (listing,) = [sql for sql in many if "COUNT(" in sql.upper() and "generated_files" in sql and "LIMIT" in sql.upper()]
    assert "projects" in listing  # projects and their file counts in one query


def test_an_empty_list_says_what_will_appear_there(client, alice):
    response = client.get("/projects/")
    assert b'id="no-projects"' in response.content


def test_a_project_lists_its_files_with_their_size_in_bytes(client, alice):
    project = make_project(alice, "network-hub", files=0)
    GeneratedFile.objects.create(project=project, path="b.tf", content="é" * 10, sha256="0" * 64)
    GeneratedFile.objects.create(project=project, path="a.tf", content="x" * 2048, sha256="1" * 64)

    response = client.get(f"/projects/{project.pk}/")

    assert response.status_code == 200
    assert [(f.path, f.size) for f in response.context["page_obj"]] == [("a.tf", 2048), ("b.tf", 20)]
    assert b"<h1>network-hub</h1>" in response.content
    assert b"2.0\xc2\xa0KB" in response.content and b"20\xc2\xa0bytes" in response.content


def test_a_file_shows_its_content_under_its_own_name(client, alice):
    project = make_project(alice, "network-hub", files=0)
    content = 'resource "azurerm_virtual_network" "hub" {}\n<script>alert(1)</script>\n'
    file = GeneratedFile.objects.create(
        project=project, path="modules/network/vnet.tf", content=content, sha256=hashlib.sha256(content.encode()).hexdigest()
    )

    response = client.get(f"/projects/{project.pk}/files/{file.pk}/")

    assert response.status_code == 200
    assert b"<h1>vnet.tf</h1>" in response.content
    assert b"<title>vnet.tf \xc2\xb7 network-hub" in response.content
    assert b"resource &quot;azurerm_virtual_network&quot; &quot;hub&quot; {}" in response.content
    assert b"<script>alert(1)</script>" not in response.content  # shown as text, never run


def test_another_users_project_and_file_are_not_found(client, alice, bob):
    bobs = make_project(bob, "bobs-project", files=1)
    bobs_file = bobs.files.get()
    mine = make_project(alice, "mine", files=1)

    assert client.get(f"/projects/{bobs.pk}/").status_code == 404
    assert client.get(f"/projects/{bobs.pk}/files/{bobs_file.pk}/").status_code == 404
    # Bob's file under my project's id is not found either.
    assert client.get(f"/projects/{mine.pk}/files/{bobs_file.pk}/").status_code == 404
    response = client.get(f"/projects/{bobs.pk}/")
    assert b"bobs-project" not in response.content and b"Page not found" in response.content


def test_staff_can_open_anyones_project_and_file(client, bob):
    bobs = make_project(bob, "bobs-project", files=1)
    client.force_login(User.objects.create(email="staff@example.com", is_staff=True))
    assert client.get(f"/projects/{bobs.pk}/").status_code == 200
    assert client.get(f"/projects/{bobs.pk}/files/{bobs.files.get().pk}/").status_code == 200


@pytest.mark.parametrize("path", ["/projects/", "/projects/1/", "/projects/1/files/1/"])
def test_the_project_pages_ask_a_visitor_to_sign_in(client, path):
    response = client.get(path)
    assert response.status_code == 302 and response["Location"].startswith("/auth/login/?next=")


def test_the_home_page_is_the_project_list(client, alice):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == "/projects/"
