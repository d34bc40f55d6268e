from django.apps import AppConfig


class DevtoolsConfig(AppConfig):
    """Local stand-ins (Entra, GitHub) and seeders: installed only with DEVTOOLS=true, never in production."""

    name = "devtools"
    verbose_name = "Development tools"
