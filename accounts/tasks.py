"""Background work of the accounts app (Django's tasks framework)."""

from __future__ import annotations

import logging

from django.tasks import task

logger = logging.getLogger("accounts.tasks")


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
