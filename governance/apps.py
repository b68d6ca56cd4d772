from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance and quality"

    def ready(self):
        from products import services as product_services
        from products import tabs

        from . import (  # noqa: F401 - quality_views registers the Quality tab
            policy_permissions,
            policy_selectors,
            policy_services,
            policy_signals,
            quality_permissions,
            quality_signals,
            quality_views,
        )

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
        from . import quality_odcs

        quality_odcs.register_contract_hooks()
        # seed_scale: glossary, quality checks and runs, policies and evaluations, trust.
        from . import scale_stages

        scale_stages.register()
        # Policy compliance is one term of the trust score (weight 20, beside checks 50,
        # freshness 20 and documentation 30; the score is normalised by the weights present).
        from . import quality_services

        if not any(key == "compliance" for key, _, _ in quality_services.TRUST_COMPONENTS):
            quality_services.TRUST_COMPONENTS.append(
                ("compliance", 20, lambda product, state: policy_services.compliance_share(product))
            )
        # Discovery: sort by trust, "most trusted" on home, and check shares on domain tiles.
        from products import discovery

        from . import quality_selectors

        discovery.SORTS["trust"] = lambda qs: quality_services.with_trust(qs).order_by(
            "-trust", "name"
        )
        if not any(f.key == "quality" for f in discovery.FACETS):
            from .models import ProductQuality

            discovery.FACETS.append(
                discovery.Facet(
                    "quality",
                    "Quality",
                    "quality_state__state",
                    labels=dict(ProductQuality.State.choices),
                )
            )
        # The freshness SLO badge on every product list and header reads quality_state.
        from products import search, selectors

        if "quality_state" not in selectors.LIST_RELATED:
            selectors.LIST_RELATED.append("quality_state")

        if policy_services.glossary_document_part not in search.DOCUMENT_PARTS:
            search.DOCUMENT_PARTS.append(policy_services.glossary_document_part)
        if quality_selectors.domain_check_shares not in discovery.DOMAIN_TILE_STATS:
            discovery.DOMAIN_TILE_STATS.append(quality_selectors.domain_check_shares)
