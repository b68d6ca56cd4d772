"""What governance adds to products (`products.extensions.ProductExtension`): the publish gate,
quality rules and SLAs in contracts, trust in discovery and lineage, glossary terms in search.

Named in the `PRODUCT_EXTENSIONS` setting; products calls these where a reader of products
looks (publishing, contract import and export, search, the home page, the lineage graph)."""

from products.extensions import ProductExtension


class GovernanceExtension(ProductExtension):
    # The freshness SLO badge on every product list and header reads quality_state.
    list_related = ("quality_state",)

    def check_publish(self, product) -> None:
        """Every blocking policy passes or is waived."""
        from governance.policies.services import publish_check

        publish_check(product)

    def publish_preview(self, product) -> list:
        from governance.policies.services import publish_gate

        return publish_gate(product=product)

    def export_quality(self, product, port, sections) -> dict | None:
        from governance.quality.odcs import export_rules

        return export_rules(port, sections)

    def import_quality(self, product, port, sections, previous) -> None:
        from governance.quality.odcs import contract_importer

        contract_importer(product, port, sections, previous)

    def export_slas(self, product, entries: list) -> list:
        from governance.quality.odcs import export_slas

        return export_slas(product, entries)

    def import_slas(self, product, entries: list, previous: list) -> None:
        from governance.quality.odcs import sla_importer

        sla_importer(product, entries, previous)

    def document_parts(self, product):
        """The glossary terms (and synonyms) its fields are linked to."""
        from governance.policies.services import glossary_document_part

        return glossary_document_part(product)

    def facets(self) -> list:
        from governance.models import ProductQuality
        from products.discovery.facets import Facet

        labels = dict(ProductQuality.State.choices)
        return [Facet("quality", "Quality", "quality_state__state", labels=labels)]

    def sorts(self) -> dict:
        from governance.quality.selectors import by_trust

        return {"trust": by_trust}

    def domain_tile_stats(self, user, domains) -> dict[int, str]:
        """The share of checked products that pass all their checks."""
        from governance.quality.selectors import domain_check_shares

        return domain_check_shares(user, domains)

    def node_badges(self, products) -> dict[int, dict]:
        """The trust score."""
        from governance.quality.selectors import trust_badges

        return trust_badges(products)
