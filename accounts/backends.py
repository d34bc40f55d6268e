from __future__ import annotations

from django.contrib.auth.backends import ModelBackend


class NoPasswordBackend(ModelBackend):
    """Permissions and session users as usual, but no credential sign-in.

    People sign in through Microsoft Entra ID, which calls ``login()`` with
    this backend; ``authenticate()`` with a username and password never works.
    """

    def authenticate(self, request, **credentials):
        return None
