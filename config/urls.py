from django.contrib import admin
from django.http import HttpRequest, HttpResponseServerError
from django.template import loader
from django.urls import include, path
from django.views.generic import RedirectView

from accounts.entra import views as entra
from core.context_processors import VERSION

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="project-list", permanent=False)),
    # The admin signs in through Entra like everyone else: there are no passwords.
    path("admin/login/", RedirectView.as_view(url="/auth/login/?next=/admin/", permanent=False)),
    path("admin/logout/", entra.logout_view),  # signs out of Entra too
    path("admin/", admin.site.urls),
    path("", include("accounts.entra.urls")),
    path("", include("accounts.urls")),
    path("", include("projects.urls")),
    path("", include("integrations.urls")),
    path("", include("ops.urls")),
]


def server_error(request: HttpRequest) -> HttpResponseServerError:
    """500.html in the layout, without context processors or the session: they may be what failed."""
    return HttpResponseServerError(loader.render_to_string("500.html", {"platform_version": VERSION}))


# 400, 403 and 404 are Django's own handlers, rendering 400.html, 403.html and 404.html in the layout.
handler500 = server_error
