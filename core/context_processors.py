"""What the base layout shows on every page: the platform's version and the signed-in user's theme."""

from __future__ import annotations

import tomllib
from pathlib import Path

from django.apps import apps
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
THEMES = ("system", "light", "dark")


def _read_version() -> str:
    # The project is not installed as a distribution (importlib.metadata knows nothing of it).
    try:
        with PYPROJECT.open("rb") as file:
            return str(tomllib.load(file)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


VERSION = _read_version()


def _theme(request: HttpRequest) -> str:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return "system"
    # A missing preferences row raises RelatedObjectDoesNotExist, an AttributeError.
    theme = getattr(getattr(user, "preferences", None), "theme", "system")
    return theme if theme in THEMES else "system"


def layout(request: HttpRequest) -> dict[str, object]:
    # Lazy: pages that never show the theme (the admin) make no query for it.
    return {
        "platform_version": VERSION,
        "theme": SimpleLazyObject(lambda: _theme(request)),
        # The live notices come with realtime/; without it the pages work as they are.
        "live_notices": apps.is_installed("realtime"),
    }
