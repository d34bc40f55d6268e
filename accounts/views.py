"""The account page (profile from Entra, preferences) and the profile photo."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts.forms import PreferencesForm
from accounts.models import ProfilePhoto, UserPreferences


@login_required
def account_view(request: HttpRequest) -> HttpResponse:
    preferences, _ = UserPreferences.objects.get_or_create(user=request.user)
    form = PreferencesForm(request.POST if request.method == "POST" else None, instance=preferences)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Your preferences have been saved.")
        return redirect("account")
    return render(request, "accounts/account.html", {"form": form, "profile": request.user, "section": "account"})


@login_required
def photo_view(request: HttpRequest) -> HttpResponse:
    photo = ProfilePhoto.objects.filter(user=request.user).first()
    if photo is None:
        return HttpResponse(status=404)
    if photo.etag and request.headers.get("If-None-Match") == photo.etag:
        return HttpResponse(status=304)
    response = HttpResponse(bytes(photo.content), content_type=photo.content_type)
    response["ETag"] = photo.etag
    response["Cache-Control"] = "private, max-age=3600"
    return response
