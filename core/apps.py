from django.apps import AppConfig


class CoreConfig(AppConfig):
    """What every app uses: the database layer, the HTTP chokepoint, keyed hashes and Fernet, events."""

    name = "core"
    verbose_name = "Platform core"
