"""What usage adds to products (`products.extensions.ProductExtension`): the Lineage tab's
"Observed" section, read from the warehouse's query logs. Named in `PRODUCT_EXTENSIONS`."""

from products.extensions import ProductExtension


class UsageExtension(ProductExtension):
    def lineage_section(self, request, product) -> dict | None:
        from usage.selectors import observed_lineage_section

        return observed_lineage_section(request, product)
