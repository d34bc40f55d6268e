"""Every admin action of this project's apps states the permission it needs.

Walks ``admin.site._registry`` rather than a list kept by hand, so an action
added later, to any of our ModelAdmins, is checked too. A view-only member of
staff must neither be offered an action nor be able to run one by POSTing it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.admin import ActionLocation
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.options import Action
from django.contrib.auth.models import Permission
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from accounts.models import EntraLinkAudit, LegacyRefreshToken, RefusedEntraLink, User
from core.crypto import hash_token
from integrations.models import GitHubRepositoryMapping, GitHubSyncRecord
from projects.models import Project
from realtime.models import WebSocketSession

pytestmark = pytest.mark.django_db

OUR_APPS = {"accounts", "projects", "integrations", "realtime"}


def our_model_admins() -> list[admin.ModelAdmin]:
    return [ma for model, ma in admin.site._registry.items() if model._meta.app_label in OUR_APPS]


def registered_actions() -> list[tuple[admin.ModelAdmin, ActionLocation, Action]]:
    """Every action of our admins, site-wide ones included, on the change list and on the change form."""
    return [
        (ma, location, action)
        for ma in our_model_admins()
        for location in ActionLocation
        for action in ma._get_base_actions(action_location=location)
    ]


def action_id(ma: admin.ModelAdmin, location: ActionLocation, action: Action) -> str:
    return f"{ma.model._meta.label}.{action.name}@{location.value}"


ACTIONS = registered_actions()
ACTION_IDS = [action_id(*entry) for entry in ACTIONS]


@pytest.fixture
def viewer(client, db):
    """Staff with every view_* permission of our apps and nothing else."""
    user = User.objects.create_user("viewer@example.com", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label__in=OUR_APPS, codename__startswith="view_")
    )
    client.force_login(user)
    return user


@pytest.fixture
def one_of_each(viewer):
    """A row for every model our admins show, in the state an action would change."""
    bob = User.objects.create_user("bob@example.com")
    project = Project.objects.create(owner=bob, name="network", cloud_provider="aws", iac_tool="terraform")
    LegacyRefreshToken.objects.create(
        user=bob, token_hash=hash_token("legacy"), expires_at=timezone.now() + timedelta(days=1)
    )
    RefusedEntraLink.objects.create(reason=RefusedEntraLink.Reason.NO_ACCOUNT, tenant_id="t", object_id="o")
    EntraLinkAudit.objects.create(user=bob, event=EntraLinkAudit.Event.LINKED, tenant_id="t", object_id="o")
    GitHubSyncRecord.objects.create(
        project=project, repository_owner="acme", repository_name="infra", status=GitHubSyncRecord.Status.FAILED
    )
    GitHubRepositoryMapping.objects.create(project=project, repository_owner="acme", repository_name="infra")
    WebSocketSession.objects.create(user=bob, channel_name="specific.channel")
    missing = [ma.model._meta.label for ma in our_model_admins() if not ma.model._default_manager.exists()]
    assert not missing, f"add a row of {missing} to one_of_each, so their actions are tried"


def snapshot() -> dict[str, list[dict]]:
    return {ma.model._meta.label: list(ma.model._default_manager.order_by("pk").values()) for ma in our_model_admins()}


def test_there_are_actions_to_check():
    names = {action.name for _ma, _location, action in ACTIONS}

    assert {"mark_requires_entra_migration", "clear_requires_entra_migration", "mark_resolved"} <= names


@pytest.mark.parametrize(("model_admin", "location", "action"), ACTIONS, ids=ACTION_IDS)
def test_every_action_declares_its_permissions(model_admin, location, action):
    assert getattr(action.func, "allowed_permissions", None), (
        f"{type(model_admin).__name__}.{action.name} needs @admin.action(permissions=[...])"
    )


@pytest.mark.parametrize("location", ActionLocation, ids=lambda location: location.value)
@pytest.mark.parametrize("model_admin", our_model_admins(), ids=lambda ma: ma.model._meta.label)
def test_view_only_staff_are_offered_no_action(model_admin, location, viewer):
    request = RequestFactory().get("/")
    request.user = viewer

    assert model_admin.has_view_permission(request)
    assert model_admin.get_actions(request, action_location=location) == {}


@pytest.mark.parametrize(("model_admin", "location", "action"), ACTIONS, ids=ACTION_IDS)
def test_view_only_staff_cannot_run_an_action_by_posting_it(client, viewer, one_of_each, model_admin, location, action):
    opts = model_admin.model._meta
    pks = list(model_admin.model._default_manager.order_by("pk").values_list("pk", flat=True))
    # What delete_selected's confirmation page sends, too.
    data = {ACTION_CHECKBOX_NAME: pks, "post": "yes"}
    if location == ActionLocation.CHANGE_LIST:
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        data["action"] = action.name
    else:
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[pks[0]])
        data.update({f"{location.value}-action": action.name, ACTION_CHECKBOX_NAME: [pks[0]]})
    before = snapshot()

    response = client.post(url, data)

    assert response.status_code in (200, 302, 403)
    assert snapshot() == before


def test_a_superuser_can_run_mark_resolved(client, operator):
    """The POST above does run an action for someone allowed to."""
    refused = RefusedEntraLink.objects.create(reason=RefusedEntraLink.Reason.NO_ACCOUNT, tenant_id="t", object_id="o")

    response = client.post(
        reverse("admin:accounts_refusedentralink_changelist"),
        {"action": "mark_resolved", "_selected_action": [refused.pk]},
    )

    assert response.status_code == 302
    refused.refresh_from_db()
    assert refused.resolved
