"""Product edits mark the product for a debounced policy evaluation.

A hook from outside the products app: the products services know nothing of governance. The mark
is made after commit, so a rolled-back or deleted product leaves nothing behind.
"""

from django.db import transaction
from django.db.models.signals import post_delete, post_save


def _changed(product_id):
    from governance.policies.services import product_mark_changed

    transaction.on_commit(lambda: product_mark_changed(product_id=product_id))


def _on_product(sender, instance, **kwargs):
    _changed(instance.pk)


def _on_products(sender, products, **kwargs):
    ids = [p.pk for p in products]

    def mark():
        from governance.policies.services import products_mark_changed

        products_mark_changed(product_ids=ids)

    transaction.on_commit(mark)


def _on_port(sender, instance, **kwargs):
    _changed(instance.product_id)


def _on_field(sender, instance, **kwargs):
    port_id = instance.port_id

    def mark():
        from governance.policies.services import product_mark_changed
        from products.models import OutputPort

        product_id = (
            OutputPort.objects.filter(pk=port_id).values_list("product_id", flat=True).first()
        )
        if product_id is not None:
            product_mark_changed(product_id=product_id)

    transaction.on_commit(mark)


def connect() -> None:
    from products.models import DataProduct, OutputPort, SchemaField
    from products.signals import products_created

    post_save.connect(_on_product, sender=DataProduct, dispatch_uid="gov_product_changed")
    products_created.connect(_on_products, sender=DataProduct, dispatch_uid="gov_products_created")
    post_save.connect(_on_port, sender=OutputPort, dispatch_uid="gov_port_changed")
    post_delete.connect(_on_port, sender=OutputPort, dispatch_uid="gov_port_deleted")
    post_save.connect(_on_field, sender=SchemaField, dispatch_uid="gov_field_changed")
    post_delete.connect(_on_field, sender=SchemaField, dispatch_uid="gov_field_deleted")
