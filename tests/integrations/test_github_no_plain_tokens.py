"""After connecting an account and syncing, no GitHub token, code or private key is in any table, session or log line."""

from __future__ import annotations

import logging

import pytest
from django.contrib.admin.models import ADDITION, LogEntry

from accounts.models import User
from integrations.github import services
from projects.models import GeneratedFile, Project
from tests.accounts.entra.test_no_plain_tokens import everything_stored
from tests.integrations.conftest import OCTOCAT

pytestmark = pytest.mark.django_db


def test_no_github_secret_in_plain_text_anywhere(github_settings, client, caplog, django_capture_on_commit_callbacks):
    github = github_settings
    caplog.set_level(logging.DEBUG)
    alice = User.objects.create_user("alice@example.com")
    client.force_login(alice)
    github.create_repo("acme", "infra")
    auth_uri = client.get("/account/github/connect/")["Location"]
    callback = github.sign_in(auth_uri, OCTOCAT)
    assert client.get("/account/github/callback/", callback.params).status_code == 302
    project = Project.objects.create(owner=alice, name="web", cloud_provider="azure", iac_tool="terraform")
    GeneratedFile.objects.create(project=project, path="main.tf", content="# main\n", sha256="0" * 64)
    services.set_mapping(project=project, owner="acme", name="infra", path="web")
    with django_capture_on_commit_callbacks(execute=True):
        record = services.request_sync(project=project)
    services.run_sync(record.pk)

    secrets = [callback.params["code"], *github.revoked_tokens, *(t.token for t in github.token_requests)]
    assert len(secrets) >= 3  # the code, the user token, an installation token
    key_body = github.private_key_pem().decode().splitlines()[1]  # a line of the PEM's base64
    stored = everything_stored()
    for secret in [*secrets, key_body, github.client_secret]:
        assert secret not in stored
        assert secret not in caplog.text
    # The decoy: a secret that is stored must be found, or this test proves nothing.
    LogEntry.objects.create(user=alice, action_flag=ADDITION, object_repr="decoy", change_message=secrets[-1])
    assert secrets[-1] in everything_stored()
