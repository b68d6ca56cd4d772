from django.apps import AppConfig


class DomainsConfig(AppConfig):
    name = "domains"
    verbose_name = "Domains and teams"

    def ready(self) -> None:
        from domains.models import Membership
        from meshportal import cache

        # The inbox badge follows who owns which team.
        cache.forget_users_on(cache.NAV_COUNTS, Membership)
