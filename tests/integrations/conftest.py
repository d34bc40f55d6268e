"""The local GitHub (shared by the session, reset per test) and settings pointing at it, as the environment would."""

from __future__ import annotations

import pytest

from integrations.github.auth import forget_tokens
from tests.devtools.conftest import CALLBACK, HUBOT, OCTOCAT, Api, github, github_server  # noqa: F401 (fixtures)

__all__ = ["CALLBACK", "HUBOT", "OCTOCAT", "Api"]


@pytest.fixture
def github_settings(github, settings, tmp_path_factory):  # noqa: F811 (the fixture imported above)
    key = github.write_private_key(tmp_path_factory.mktemp("github") / "app-key.pem")
    settings.GITHUB_ENABLED = True
    settings.GITHUB_LOCAL = False
    settings.GITHUB_APP_ID = github.app_id
    settings.GITHUB_API_URL = github.url
    settings.GITHUB_WEB_URL = github.url
    settings.GITHUB_APP_PRIVATE_KEY_FILE = str(key)
    settings.GITHUB_APP_CLIENT_ID = github.client_id
    settings.GITHUB_APP_CLIENT_SECRET = github.client_secret
    settings.GITHUB_SYNC_MAX_ATTEMPTS = 3
    settings.GITHUB_SYNC_RETRY_BASE_S = 10.0
    settings.GITHUB_READ_TIMEOUT_S = 1.0
    settings.GITHUB_CONNECT_TIMEOUT_S = 1.0
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
    forget_tokens()
    yield github
    forget_tokens()


@pytest.fixture
def project(db):
    """Alice's project "web" with one generated file, not mapped to a repository."""
    from accounts.models import User
    from projects.models import GeneratedFile, Project

    owner = User.objects.create_user("alice@example.com")
    project = Project.objects.create(owner=owner, name="web", cloud_provider="azure", iac_tool="terraform")
    GeneratedFile.objects.create(project=project, path="main.tf", content="# main\n", sha256="0" * 64)
    return project
