from django.apps import AppConfig


class ProductsConfig(AppConfig):
    name = "products"
    verbose_name = "Data products"

    def ready(self) -> None:
        from . import lineage_views  # noqa: F401  (registers the Lineage tab)
