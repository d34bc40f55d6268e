from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import logout
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.http import urlencode

RENEW_BEFORE = timedelta(minutes=5)


class EntraTokenRenewalMiddleware:
    """Renew a signed-in user's access token before it expires; if that fails, sign in again."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (
            settings.ENTRA_ENABLED
            and user is not None
            and user.is_authenticated
            and user.azure_token_expires_at is not None
            and user.azure_token_expires_at - timezone.now() < RENEW_BEFORE
            and not request.path.startswith("/auth/")
        ):
            from accounts.entra.signin import renew_access_token

            if renew_access_token(user=user, force=True) is None:
                logout(request)
                return redirect(f"{settings.LOGIN_URL}?{urlencode({'next': request.get_full_path()})}")
        return self.get_response(request)
