from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from accounts.entra import views as entra

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="account", permanent=False)),
    # The admin signs in through Entra like everyone else: there are no passwords.
    path("admin/login/", RedirectView.as_view(url="/auth/login/?next=/admin/", permanent=False)),
    path("admin/logout/", entra.logout_view),  # signs out of Entra too
    path("admin/", admin.site.urls),
    path("", include("accounts.entra.urls")),
    path("", include("accounts.urls")),
]
