"""The site's URLs plus views that fail, to see the error pages as a person would."""

from __future__ import annotations

from django.core.exceptions import BadRequest, PermissionDenied
from django.urls import path

from config.urls import handler500
from config.urls import urlpatterns as site_urlpatterns


def broken(request):
    raise RuntimeError("secret detail of a bug")


def forbidden(request):
    raise PermissionDenied("secret detail of a refusal")


def bad(request):
    raise BadRequest("secret detail of a bad request")


urlpatterns = [
    path("test/broken/", broken),
    path("test/forbidden/", forbidden),
    path("test/bad/", bad),
    *site_urlpatterns,
]
__all__ = ["handler500", "urlpatterns"]
