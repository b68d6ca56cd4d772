from django.apps import AppConfig


class ProductsConfig(AppConfig):
    name = "products"
    verbose_name = "Data products"

    def ready(self) -> None:
        from . import lineage_scale, lineage_views  # noqa: F401  (lineage_views: the Lineage tab)

        lineage_scale.register()
        # The cached mesh map is forgotten whenever a product or an edge changes.
        from django.db.models.signals import post_delete, post_save

        from . import lineage
        from .models import DataProduct, InputPort

        for model in (DataProduct, InputPort):
            for signal in (post_save, post_delete):
                signal.connect(
                    lineage.invalidate_mesh, sender=model, dispatch_uid=f"mesh-{model.__name__}"
                )
