from django.urls import path

from accounts.entra import views

urlpatterns = [
    path("auth/login/", views.login_view, name="login"),
    path("auth/callback/", views.callback_view, name="callback"),
    path("auth/logout/", views.logout_view, name="logout"),
    path("auth/signed-out/", views.signed_out_view, name="signed-out"),
    path("api/me", views.api_me_view, name="api-me"),
]
