"""The metrics move when sign-ins, renewals and syncs happen; no JSON log line holds a token afterwards."""

from __future__ import annotations

import io
import logging

import pytest
from prometheus_client import REGISTRY

from accounts.models import User
from core.logging import ContextFilter, JsonFormatter, RedactFilter
from integrations.github import services
from tests.accounts.entra.conftest import ALICE, BOB, CAROL, browser, entra, entra_server, legacy_user  # noqa: F401
from tests.integrations.conftest import github, github_server, github_settings, project  # noqa: F401

pytestmark = pytest.mark.django_db


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def json_logs():
    """Every record of every logger, as the production handler writes it (JSON, redacted), at DEBUG."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactFilter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def test_sign_ins_count_by_outcome(browser, django_capture_on_commit_callbacks):  # noqa: F811
    linked = value("entra_sign_ins_total", outcome="linked", reason="")
    returning = value("entra_sign_ins_total", outcome="returning", reason="")
    refused = value("entra_sign_ins_total", outcome="refused", reason="no_account")
    legacy_user("alice@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        assert browser.sign_in(ALICE).status_code == 302
    with django_capture_on_commit_callbacks(execute=True):
        assert browser.sign_in(ALICE).status_code == 302
    with django_capture_on_commit_callbacks(execute=True):
        assert browser.sign_in(CAROL).status_code == 403  # nobody to link, no just-in-time creation
    assert value("entra_sign_ins_total", outcome="linked", reason="") == linked + 1
    assert value("entra_sign_ins_total", outcome="returning", reason="") == returning + 1
    assert value("entra_sign_ins_total", outcome="refused", reason="no_account") == refused + 1


def test_renewal_and_validation_are_counted(browser, django_capture_on_commit_callbacks):  # noqa: F811
    validations = value("entra_token_validation_seconds_count")
    renewed = value("entra_token_refresh_total", outcome="renewed")
    alice = legacy_user("alice@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        assert browser.sign_in(ALICE).status_code == 302
    User.objects.filter(pk=alice.pk).update(azure_token_expires_at="2000-01-01T00:00:00Z")
    assert browser.client.get("/account/").status_code == 200
    assert value("entra_token_refresh_total", outcome="renewed") >= renewed + 1  # the profile task renews too
    assert value("entra_token_validation_seconds_count") >= validations + 2  # the sign-in's and the renewal's


def test_syncs_and_github_requests_are_counted(github_settings, project, django_capture_on_commit_callbacks):  # noqa: F811
    github_settings.create_repo("acme", "infra")
    services.set_mapping(project=project, owner="acme", name="infra")
    succeeded = value("github_syncs_total", outcome="succeeded")
    retried = value("github_sync_retries_total", reason="server_error")
    ok = value("github_api_requests_total", status="200") + value("github_api_requests_total", status="201")
    durations = value("github_sync_duration_seconds_count")
    with django_capture_on_commit_callbacks(execute=True):
        record = services.request_sync(project=project)
    services.run_sync(record.pk)
    assert value("github_syncs_total", outcome="succeeded") == succeeded + 1
    assert value("github_sync_duration_seconds_count") == durations + 1
    assert value("github_api_requests_total", status="200") + value("github_api_requests_total", status="201") > ok
    assert value("github_rate_limit_remaining") > 0
    project.files.update(content="# changed\n")
    github_settings.fail(502)
    with django_capture_on_commit_callbacks(execute=True):
        record = services.request_sync(project=project)
    services.run_sync(record.pk)
    assert value("github_sync_retries_total", reason="server_error") == retried + 1
    assert value("github_api_requests_total", status="5xx") >= 1


def test_no_log_line_holds_a_token_after_sign_in_renewal_and_sync(
    browser,  # noqa: F811
    entra,  # noqa: F811
    github_settings,  # noqa: F811
    project,  # noqa: F811
    json_logs,
    django_capture_on_commit_callbacks,
):
    alice = User.objects.get(email="alice@example.com")
    User.objects.filter(pk=alice.pk).update(requires_entra_migration=True)
    issued_before = len(entra.issued)
    with django_capture_on_commit_callbacks(execute=True):
        assert browser.sign_in(ALICE).status_code == 302
    User.objects.filter(pk=alice.pk).update(azure_token_expires_at="2000-01-01T00:00:00Z")
    assert browser.client.get("/account/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        browser.sign_in(BOB)  # refused: nobody to link
    github_settings.create_repo("acme", "infra")
    services.set_mapping(project=project, owner="acme", name="infra")
    with django_capture_on_commit_callbacks(execute=True):
        record = services.request_sync(project=project)
    services.run_sync(record.pk)

    text = json_logs.getvalue()
    assert "core.request" in text and '"outcome": "succeeded"' in text  # the lines are there
    issued = entra.issued[issued_before:]
    assert len(issued) >= 6
    for secret in issued:
        assert secret not in text
    for token in list(github_settings._installation_tokens):
        assert token not in text
