"""Microsoft Graph: the profile and photo of a user, and syncing them."""

from __future__ import annotations

import logging

from django.urls import reverse

from accounts.entra.conf import entra_config
from accounts.models import ProfilePhoto, User
from core import http

logger = logging.getLogger("accounts.entra.graph")


class GraphError(Exception):
    pass


def _get(path: str, token: str, headers: dict | None = None):
    config = entra_config()
    response = http.session(ca_bundle=config.ca_bundle).get(
        f"{config.graph_url}/v1.0/{path}", headers={"Authorization": f"Bearer {token}", **(headers or {})}
    )
    if response.status_code >= 400 and response.status_code != 404:
        raise GraphError(f"Graph {path.split('/')[0]} answered {response.status_code}")
    return response


def sync_profile(*, user: User, token: str, app_only: bool = False) -> list[str]:
    """Fill name, organization, department and the photo from Graph; return what changed.

    With ``app_only`` the token is the app's own and the user is addressed by id.
    The photo is fetched again only when its ETag changed.
    """
    base = f"users/{user.azure_entra_id}" if app_only else "me"
    # Graph returns companyName and department only when asked for.
    response = _get(f"{base}?$select=id,displayName,mail,userPrincipalName,companyName,department", token)
    if response.status_code == 404:
        raise GraphError("Graph does not know this user")
    profile = response.json()
    changed = []
    for field, key in (("full_name", "displayName"), ("organization", "companyName"), ("department", "department")):
        value = profile.get(key)
        if value is not None and getattr(user, field) != value:
            setattr(user, field, value)
            changed.append(field)

    photo = ProfilePhoto.objects.filter(user=user).only("etag").first()
    headers = {"If-None-Match": photo.etag} if photo and photo.etag else {}
    response = _get(f"{base}/photo/$value", token, headers)
    if response.status_code == 200:
        ProfilePhoto.objects.update_or_create(
            user=user,
            defaults={
                "content": response.content,
                "content_type": response.headers.get("Content-Type", "image/jpeg"),
                "etag": response.headers.get("ETag", ""),
            },
        )
        user.profile_picture_url = reverse("account-photo")
        changed.append("photo")
    elif response.status_code == 404 and photo is not None:
        photo.delete()
        user.profile_picture_url = None
        changed.append("photo")
    if changed:
        user.save(update_fields=[f for f in changed if f != "photo"] + ["profile_picture_url", "updated_at"])
    return changed


class AppTokenError(GraphError):
    """The app's own Graph token could not be had (its credentials, or Entra)."""


def sync_all_profiles(*, emails: list[str] | None = None, on_result=None) -> tuple[int, list[tuple[User, str]]]:
    """Sync every linked user's profile with the app's own credentials: (synced, [(user, error), …]).

    ``on_result(user, changed_fields, error)`` is called per user (the command prints from it).
    Raises ``AppTokenError`` when no app token can be had: then nobody is synced.
    """
    from accounts.entra.signin import build_app

    config = entra_config()
    result = build_app(config=config, app_only=True).acquire_token_for_client(scopes=[f"{config.graph_url}/.default"])
    if "access_token" not in result:
        raise AppTokenError(f"No app token for Graph: {result.get('error')}: {result.get('error_description', '')}")
    users = User.objects.linked_to_entra().order_by("pk")
    if emails:
        users = users.filter(email__in=emails)
    synced, failures = 0, []
    for user in users.iterator(chunk_size=500):
        try:
            changed = sync_profile(user=user, token=result["access_token"], app_only=True)
        except (GraphError, OSError) as exc:
            failures.append((user, str(exc)))
            if on_result:
                on_result(user, [], str(exc))
            continue
        synced += 1
        if on_result:
            on_result(user, changed, None)
    return synced, failures
