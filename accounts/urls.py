from django.urls import path

from accounts import views

urlpatterns = [
    path("account/", views.account_view, name="account"),
    path("account/photo/", views.photo_view, name="account-photo"),
]
