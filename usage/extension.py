"""What usage adds to products (`products.extensions.ProductExtension`): the Lineage tab's
"Observed" section and the observed edges of the mesh map and impact analysis, read from the
warehouses' query logs; and the portal analytics' record of product page views and searches. Named in `PRODUCT_EXTENSIONS`."""

import logging

from products.extensions import ProductExtension

logger = logging.getLogger(__name__)


class UsageExtension(ProductExtension):
    def lineage_section(self, request, product) -> dict | None:
        from usage.selectors import observed_lineage_section

        return observed_lineage_section(request, product)

    def observed_edges(self):
        from usage.selectors import observed_product_edges

        return observed_product_edges()

    def product_viewed(self, request, product) -> None:
        from usage.services import product_view_record

        product_view_record(product=product, user=request.user)

    def searched(self, request, query: str, found: bool) -> None:
        from django.core.cache import cache

        from usage.services import search_record

        # The last search counted in this sign-in session (services.search_record: search as
        # you type counts once). A cache that is down costs that rule, never the page.
        key = f"usage:last-search:{request.session.session_key or request.user.pk}"
        try:
            last = cache.get(key)
        except Exception:
            logger.warning("search analytics: cache unavailable", exc_info=True)
            last = None
        recorded = search_record(query=query, found=found, last=last)
        if recorded is not None:
            try:
                cache.set(key, recorded, 3600)
            except Exception:
                logger.warning("search analytics: cache unavailable", exc_info=True)
