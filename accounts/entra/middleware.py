from __future__ import annotations

import time
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import logout
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import urlencode

RENEW_BEFORE = timedelta(minutes=5)
# While Entra is unreachable, a renewal is tried again at most this often per session.
UNREACHABLE_RETRY_S = 30
RETRY_KEY = "entra_renew_retry_at"


class EntraTokenRenewalMiddleware:
    """Renew a signed-in user's access token before it expires; if that fails, sign in again.

    While Entra is unreachable the user keeps the session until the token actually
    expires (retrying every ``UNREACHABLE_RETRY_S``), then gets a page that says so.
    """

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
            response = self._renew(request, user)
            if response is not None:
                return response
        return self.get_response(request)

    def _renew(self, request, user):
        from accounts.entra.signin import EntraUnreachable, renew_access_token

        expired = user.azure_token_expires_at <= timezone.now()
        if not expired and request.session.get(RETRY_KEY, 0) > time.time():
            return None
        try:
            result = renew_access_token(user=user, force=True)
        except EntraUnreachable:
            if not expired:
                request.session[RETRY_KEY] = time.time() + UNREACHABLE_RETRY_S
                return None
            logout(request)
            message = (
                "Your session has ended and Microsoft Entra ID cannot be reached to renew it. "
                "Please try again in a few minutes."
            )
            return render(request, "accounts/sign_in_error.html", {"message": message}, status=503)
        request.session.pop(RETRY_KEY, None)
        if result is None:
            logout(request)
            return redirect(f"{settings.LOGIN_URL}?{urlencode({'next': request.get_full_path()})}")
        return None
