from django.apps import AppConfig


class UsageConfig(AppConfig):
    """Who really uses what: query logs in, usage per product, unmanaged consumers, observed
    lineage. Everything usage adds to the product pages is declared here."""

    name = "usage"
    verbose_name = "Usage"

    def ready(self):
        from products import tabs
        from products.lineage import views as lineage_views
        from usage import permissions, selectors

        permissions.register()
        tabs.register_tab(
            tabs.Tab(
                "usage", "Usage", "usage/product_tab.html", selectors.usage_tab_context, order=75
            )
        )
        if selectors.observed_lineage_section not in lineage_views.TAB_SECTIONS:
            lineage_views.TAB_SECTIONS.append(selectors.observed_lineage_section)
