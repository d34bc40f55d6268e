from django.apps import AppConfig
from django.conf import settings


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self) -> None:
        from accounts import schema_checks
        from accounts.entra import conf
        from core.db.schema import register_data_check

        register_data_check(schema_checks.check_entra_data)
        if settings.ENTRA_ENABLED:
            # Start-up stops, naming the variable, when Entra sign-in is misconfigured.
            conf.check_settings({name: getattr(settings, name) for name in dir(settings) if name.isupper()})
