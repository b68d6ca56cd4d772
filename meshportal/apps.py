from django.apps import AppConfig


class MeshportalConfig(AppConfig):
    name = "meshportal"
    verbose_name = "Portal"

    def ready(self) -> None:
        from . import permissions

        permissions._register_core()
