from django.apps import AppConfig


class MeshportalConfig(AppConfig):
    name = "meshportal"
    verbose_name = "Portal"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from meshportal import permissions

        permissions._register_core()
        # Permission ids are cached per process; a flush (tests) or migration may renumber them.
        post_migrate.connect(
            lambda **kwargs: permissions._permission_id.cache_clear(),
            weak=False,
            dispatch_uid="meshportal-permission-ids",
        )
