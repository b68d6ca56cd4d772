from django.apps import AppConfig


class ProductsConfig(AppConfig):
    name = "products"
    verbose_name = "Data products"

    def ready(self) -> None:
        from . import lineage_scale, lineage_views  # noqa: F401  (lineage_views: the Lineage tab)

        lineage_scale.register()
