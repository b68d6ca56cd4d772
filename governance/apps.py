from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance and quality"

    def ready(self):
        # What governance adds to products (publish gate, contract rules, trust in search and
        # lineage) is `governance/extension.py`, named in the PRODUCT_EXTENSIONS setting. Here:
        # the two registries it fills (permission rules, product tabs) and its signals.
        from governance.policies import permissions as policy_permissions
        from governance.policies import selectors as policy_selectors
        from governance.policies import signals as policy_signals
        from governance.quality import permissions as quality_permissions
        from governance.quality import signals as quality_signals
        from governance.quality import views as quality_views  # noqa: F401  (registers the Quality tab)
        from products import tabs

        policy_permissions.register()
        quality_permissions.register()
        policy_signals.connect()
        quality_signals.connect()
        tabs.register_tab(
            tabs.Tab(
                "governance",
                "Governance",
                "governance/policies/product_tab.html",
                policy_selectors.product_tab_context,
                order=60,
            )
        )
