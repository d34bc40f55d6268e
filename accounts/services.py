"""Writes on users that the admin (and later, commands) call: keyword-only, set-based."""

from __future__ import annotations

from django.db.models import QuerySet
from django.db.models.functions import Now

from accounts.models import User


def set_entra_migration_flag(*, users: QuerySet[User], required: bool) -> int:
    """Set ``requires_entra_migration`` on ``users``; return how many rows changed.

    One UPDATE, touching only the rows whose flag differs, so the count is what
    actually changed and rows already in that state keep their ``updated_at``
    (which ``update()`` would not maintain on its own).
    """
    return users.exclude(requires_entra_migration=required).update(requires_entra_migration=required, updated_at=Now())
