from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance and quality"

    def ready(self):
        from . import quality_permissions, quality_views  # noqa: F401 - registers the Quality tab

        quality_permissions.register()
