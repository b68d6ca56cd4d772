from celery import shared_task

from meshportal.audit import audit_context
from products import services


@shared_task(name="products.tasks.expire_access_grants")
def expire_access_grants() -> int:
    with audit_context(door="task"):
        return services.access_grants_expire()


@shared_task(name="products.tasks.notify_product_event")
def notify_product_event(
    product_id: int, kind: str, title: str, body: str = "", url: str = "", urn: str = ""
) -> int:
    """Fan out one product event (publication, deprecation, ...) to its followers."""
    from products.lineage import services as lineage_services

    with audit_context(door="task"):
        return lineage_services.product_event_fanout(
            product_id=product_id, kind=kind, title=title, body=body, url=url, urn=urn
        )
