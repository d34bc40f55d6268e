from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from accounts.entra import views as entra

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="account", permanent=False)),
    # The admin signs in through Entra like everyone else: there are no passwords.
    path("admin/login/", RedirectView.as_view(url="/auth/login/?next=/admin/", permanent=False)),
    path("admin/logout/", entra.logout_view),  # signs out of Entra too
    path("admin/", admin.site.urls),
    path("auth/login/", entra.login_view, name="login"),
    path("auth/callback/", entra.callback_view, name="callback"),
    path("auth/logout/", entra.logout_view, name="logout"),
    path("auth/signed-out/", entra.signed_out_view, name="signed-out"),
    path("account/", entra.account_view, name="account"),
    path("account/photo/", entra.photo_view, name="account-photo"),
    path("api/me", entra.api_me_view, name="api-me"),
]
