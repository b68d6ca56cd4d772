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


@shared_task(name="products.tasks.embed_products")
def embed_products(product_ids: list[int]) -> int:
    """Recompute the meaning vectors of these products (those whose text changed)."""
    from django.core.cache import cache

    from products.discovery import semantic
    from products.models import DataProduct

    # Changes from here on schedule a new run (this one may read their text or not).
    cache.delete_many([semantic.SCHEDULED_KEY.format(pk) for pk in product_ids])
    return semantic.embed(DataProduct.objects.filter(pk__in=product_ids))
