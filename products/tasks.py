from celery import shared_task

from meshportal.audit import audit_context

from . import services


@shared_task(name="products.tasks.expire_access_grants")
def expire_access_grants() -> int:
    with audit_context(door="task"):
        return services.access_grants_expire()
