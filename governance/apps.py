from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance and quality"

    def ready(self):
        from governance.policies import permissions as policy_permissions
        from governance.policies import selectors as policy_selectors
        from governance.policies import services as policy_services
        from governance.policies import signals as policy_signals
        from governance.quality import permissions as quality_permissions
        from governance.quality import signals as quality_signals
        from governance.quality import views as quality_views  # noqa: F401  (registers the Quality tab)
        from products import services as product_services
        from products import tabs

        policy_permissions.register()
        policy_signals.connect()
        quality_signals.connect()
        if policy_services.publish_check not in product_services.PUBLISH_CHECKS:
            product_services.PUBLISH_CHECKS.append(policy_services.publish_check)
        if policy_services.publish_preview not in product_services.PUBLISH_PREVIEWS:
            product_services.PUBLISH_PREVIEWS.append(policy_services.publish_preview)
        tabs.register_tab(
            tabs.Tab(
                "governance",
                "Governance",
                "governance/policies/product_tab.html",
                policy_selectors.product_tab_context,
                order=60,
            )
        )
        quality_permissions.register()
        from django.apps import apps

        from governance.quality import engine as quality_engine

        # A data source that can read any of these is refused (docs/security.md).
        quality_engine.PORTAL_TABLES.update(m._meta.db_table for m in apps.get_models())
        from governance.quality import odcs as quality_odcs

        quality_odcs.register_contract_hooks()
        # Discovery: sort by trust, "most trusted" on home, and check shares on domain tiles.
        from governance.quality import selectors as quality_selectors
        from governance.quality import services as quality_services
        from products.discovery import facets as discovery

        discovery.SORTS["trust"] = lambda qs: quality_services.with_trust(qs).order_by(
            "-trust", "name"
        )
        if not any(f.key == "quality" for f in discovery.FACETS):
            from governance.models import ProductQuality

            discovery.FACETS.append(
                discovery.Facet(
                    "quality",
                    "Quality",
                    "quality_state__state",
                    labels=dict(ProductQuality.State.choices),
                )
            )
        # The freshness SLO badge on every product list and header reads quality_state.
        from products import selectors
        from products.discovery import search

        if "quality_state" not in selectors.LIST_RELATED:
            selectors.LIST_RELATED.append("quality_state")

        if policy_services.glossary_document_part not in search.DOCUMENT_PARTS:
            search.DOCUMENT_PARTS.append(policy_services.glossary_document_part)
        if quality_selectors.domain_check_shares not in discovery.DOMAIN_TILE_STATS:
            discovery.DOMAIN_TILE_STATS.append(quality_selectors.domain_check_shares)
        # Lineage graph nodes show trust.
        from products.lineage import graph as lineage

        if quality_selectors.trust_badges not in lineage.NODE_BADGES:
            lineage.NODE_BADGES.append(quality_selectors.trust_badges)
