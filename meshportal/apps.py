from django.apps import AppConfig


class MeshportalConfig(AppConfig):
    name = "meshportal"
    verbose_name = "Portal"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from meshportal import permissions

        permissions._register_core()
        # The navigation badges, cached per user: a notification, a user (superuser, active)
        # or a group membership (the platform group) changes them.
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group

        from meshportal import cache
        from meshportal.models import Notification

        user = get_user_model()
        cache.forget_users_on(cache.NAV_COUNTS, Notification, user, Group, user.groups.through)
        # Permission ids are cached per process; a flush (tests) or migration may renumber them.
        post_migrate.connect(
            lambda **kwargs: permissions.forget_permission_ids(),
            weak=False,
            dispatch_uid="meshportal-permission-ids",
        )
