from django.apps import AppConfig
from django.conf import settings


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"

    def ready(self) -> None:
        from integrations.github import conf, receivers
        from projects.signals import projects_shown

        projects_shown.connect(receivers.attach_github, dispatch_uid="integrations.attach_github")

        if settings.GITHUB_ENABLED:
            conf.check_settings({name: getattr(settings, name) for name in dir(settings) if name.isupper()})
            from core.worker import register_periodic
            from integrations.github import services

            # Every worker looks for dead workers' syncs a few times per stale period.
            register_periodic(
                "github-sync-sweep",
                every_s=lambda: min(60.0, conf.github_config().stale_after_s / 3),
                run=services.sweep_stale_syncs,
            )
