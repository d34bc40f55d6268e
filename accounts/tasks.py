"""Background work of the accounts app (Django's tasks framework)."""

from __future__ import annotations

import logging

from django.tasks import task

from core import events

logger = logging.getLogger("accounts.tasks")

PROFILE_SYNCED = "accounts.profile_synced"


@task
def sync_profile_after_sign_in(user_id: int) -> None:
    """Profile sync on sign-in, off the request: a Graph failure never blocks sign-in."""
    from accounts.entra.graph import GraphError, sync_profile
    from accounts.entra.signin import EntraUnreachable, renew_access_token
    from accounts.models import User

    user = User.objects.filter(pk=user_id).first()
    if user is None:
        return
    try:
        result = renew_access_token(user=user)
        if result is None:
            logger.info("no Graph token for user %s; profile not synced", user_id)
            return
        sync_profile(user=user, token=result["access_token"])
    except (GraphError, EntraUnreachable, OSError) as exc:
        logger.warning("profile sync of user %s failed: %s", user_id, exc)
        return
    events.publish(PROFILE_SYNCED, user_id=user_id)


@task
def sync_all_profiles() -> dict:
    """Every linked user's profile, with the app's credentials: the periodic job (also `sync_entra_profiles`)."""
    from accounts.entra.graph import sync_all_profiles as sync_all

    synced, failures = sync_all()
    if failures:
        logger.warning("periodic profile sync: %d failure(s)", len(failures))
    return {"synced": synced, "failed": len(failures)}
