from django.apps import AppConfig


class ProductsConfig(AppConfig):
    name = "products"
    verbose_name = "Data products"

    def ready(self) -> None:
        # The cached mesh map is forgotten whenever a product or an edge changes.
        from django.db.models.signals import post_delete, post_save

        from products.lineage import graph as lineage
        from products.lineage import views as lineage_views  # noqa: F401  (the Lineage tab)
        from products.models import DataProduct, InputPort

        for model in (DataProduct, InputPort):
            for signal in (post_save, post_delete):
                signal.connect(
                    lineage.invalidate_mesh, sender=model, dispatch_uid=f"mesh-{model.__name__}"
                )
