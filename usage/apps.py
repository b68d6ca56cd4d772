from django.apps import AppConfig


class UsageConfig(AppConfig):
    """Who really uses what: query logs in, usage per product, unmanaged consumers, observed
    lineage. Its tab and permission rules are registered here; the Lineage tab's "Observed"
    section is `usage/extension.py`."""

    name = "usage"
    verbose_name = "Usage"

    def ready(self):
        from products import tabs
        from usage import permissions, selectors

        permissions.register()
        tabs.register_tab(
            tabs.Tab(
                "usage", "Usage", "usage/product_tab.html", selectors.usage_tab_context, order=75
            )
        )
