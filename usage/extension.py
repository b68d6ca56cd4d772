"""What usage adds to products (`products.extensions.ProductExtension`): the Lineage tab's
"Observed" section and the observed edges of the mesh map and impact analysis, read from the
warehouses' query logs. Named in `PRODUCT_EXTENSIONS`."""

from products.extensions import ProductExtension


class UsageExtension(ProductExtension):
    def lineage_section(self, request, product) -> dict | None:
        from usage.selectors import observed_lineage_section

        return observed_lineage_section(request, product)

    def observed_edges(self):
        from usage.selectors import observed_product_edges

        return observed_product_edges()
