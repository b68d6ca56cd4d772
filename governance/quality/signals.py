"""A changed freshness SLO re-judges the stored breach at once (badge and alert), instead of
waiting for the product's next freshness run. From outside the products app, after commit."""

from django.db import transaction
from django.db.models.signals import post_save


def _on_product(sender, instance, created, update_fields=None, **kwargs):
    if created or (update_fields is not None and "freshness_slo_hours" not in update_fields):
        return
    product_id = instance.pk

    def recheck():
        from governance.quality.services import freshness_recheck

        freshness_recheck(product_id=product_id)

    transaction.on_commit(recheck)


def connect() -> None:
    from products.models import DataProduct

    post_save.connect(_on_product, sender=DataProduct, dispatch_uid="quality_slo_changed")
