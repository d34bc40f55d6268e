"""Sign-in, sign-out and the bearer-token API: thin views."""

from __future__ import annotations

import logging
import time
from functools import wraps

from django.conf import settings
from django.contrib.auth import login, logout
from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from accounts.entra import signin
from accounts.entra.bearer import BearerError, authenticate_bearer
from accounts.entra.conf import entra_config
from accounts.tasks import sync_profile_after_sign_in
from core import metrics

logger = logging.getLogger("accounts.entra.views")
BACKEND = "accounts.backends.NoPasswordBackend"


def _error(request: HttpRequest, message: str, *, status: int = 400) -> HttpResponse:
    # The status tells the page which next step to suggest (try again, wait, ask an administrator).
    return render(request, "accounts/sign_in_error.html", {"message": message, "status": status}, status=status)


def entra_required(view):
    """503 with a clear message, not a 500, where Entra sign-in is not configured."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not settings.ENTRA_ENABLED:
            message = "Sign-in with Microsoft Entra ID is not configured on this server (ENTRA_CLIENT_ID)."
            if request.path.startswith("/api/"):
                return JsonResponse({"error": "temporarily_unavailable", "error_description": message}, status=503)
            return _error(request, message, status=503)
        return view(request, *args, **kwargs)

    return wrapper


def _too_many_flows(request: HttpRequest) -> bool:
    """Each started sign-in writes a session: at most ENTRA_LOGIN_FLOWS_PER_MINUTE per client address."""
    key = f"entra-login-flows:{request.META.get('REMOTE_ADDR', '')}:{int(time.time() // 60)}"
    cache.add(key, 0, timeout=60)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        count = 1
    return count > entra_config().login_flows_per_minute


@entra_required
@require_GET
def login_view(request: HttpRequest) -> HttpResponse:
    next_url = request.GET.get("next") or reverse("account")
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return _error(request, "The page to return to after signing in must be on this site.")
    if _too_many_flows(request):
        return _error(request, "Too many sign-ins were started from your address. Wait a minute and try again.", status=429)
    return redirect(signin.start_sign_in(session=request.session, next_url=next_url))


@entra_required
@require_GET
def callback_view(request: HttpRequest) -> HttpResponse:
    try:
        user, next_url, _ = signin.complete_sign_in(session=request.session, params=request.GET.dict())
    except signin.SignInError as exc:
        metrics.sign_in("refused", exc.reason)
        logger.info("sign-in refused", extra={"outcome": "refused", "reason": exc.reason})
        return _error(request, exc.message, status=403 if exc.reason not in {"state", "error", "code"} else 400)
    login(request, user, backend=BACKEND)
    transaction.on_commit(lambda: sync_profile_after_sign_in.enqueue(user.pk))
    return redirect(next_url)


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    user = request.user
    hint = request.session.get("entra_logout_hint", "")
    logout(request)
    if not user.is_authenticated:
        return redirect("/")
    if not settings.ENTRA_ENABLED:
        return redirect("signed-out")
    post_logout = request.build_absolute_uri(reverse("signed-out"))
    return redirect(
        signin.sign_out_url(user=user, logout_hint=hint or user.email, post_logout_redirect_uri=post_logout)
    )


def signed_out_view(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/signed_out.html")


@entra_required
def api_me_view(request: HttpRequest) -> JsonResponse:
    """The caller's profile, for API clients holding an access token for this API."""
    try:
        user = authenticate_bearer(request)
    except BearerError as exc:
        response = JsonResponse({"error": exc.error, "error_description": exc.description}, status=exc.status)
        response["WWW-Authenticate"] = exc.www_authenticate
        metrics.entra_api_requests.labels(str(exc.status)).inc()
        return response
    metrics.entra_api_requests.labels("200").inc()
    return JsonResponse(
        {
            "id": user.pk,
            "email": user.email,
            "name": user.full_name,
            "organization": user.organization,
            "department": user.department,
            "tenant_id": user.azure_tenant_id,
            "entra_object_id": user.azure_entra_id,
            "profile_picture_url": user.profile_picture_url,
        }
    )
