"""What other apps add to products: one declared interface instead of lists to append to.

`products` sits below `governance` and `usage` in the layers (docs/architecture.md) and may
not import them. Where a product feature needs their answer (publishing asks the policies, a
contract carries quality rules, search ranks by trust), products calls one of the functions
below, and it asks every extension named in the `PRODUCT_EXTENSIONS` setting, in order:

    PRODUCT_EXTENSIONS = [
        "governance.extension.GovernanceExtension",  # policies, quality checks, trust, glossary
        "usage.extension.UsageExtension",  # observed lineage from the query logs
    ]

Each method of `ProductExtension` says where products calls it; its default answer is what
products does on its own. An extension subclasses it and overrides what it adds. The product
page's tabs, policy rule types and permission rules stay registries of their own
(`products/tabs.py`, `governance/policies/rules.py`, `meshportal/permissions.py`).
"""

from collections.abc import Iterable
from functools import cache
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string


class ProductExtension:
    """Override what the app adds; the defaults add nothing."""

    # One-to-one relations joined into every product list (`products.selectors.for_lists`), so
    # that a badge read from them costs no query per row (e.g. "quality_state").
    list_related: tuple[str, ...] = ()

    # -- publishing (`products.services.product_publish`, `product_publish_preview`) ---------

    def check_publish(self, product) -> None:
        """Raise ValidationError to refuse the publication (e.g. a blocking policy fails)."""

    def publish_preview(self, product) -> list:
        """What `check_publish` would say, shown before Publish is pressed: items with title,
        url, reasons, fix and waived."""
        return []

    # -- contracts (`products.contracts.services`) ------------------------------------------
    # The contract keeps every ODCS `quality` section and `slaProperties` entry as it came;
    # these turn them into what runs, and what runs back into the document.

    def export_quality(self, product, port, sections) -> dict | None:
        """{field name or None for the object: rules} replacing the port's kept sections on
        export; None keeps them as they came."""
        return None

    def import_quality(self, product, port, sections, previous) -> None:
        """Apply a port's quality sections ([(field name or None, rules)]); `previous` are the
        last version's, so that removed rules can be removed."""

    def export_slas(self, product, entries: list) -> list:
        """The `slaProperties` entries to write."""
        return entries

    def import_slas(self, product, entries: list, previous: list) -> None:
        """Apply the document's `slaProperties` (and see what the last version had)."""

    # -- discovery (`products.discovery`) ------------------------------------------------------

    def document_parts(self, product) -> Iterable[tuple[str, str]]:
        """(weight, text) pairs added to the product's search document and embedding text."""
        return ()

    def facets(self) -> list:
        """`products.discovery.facets.Facet`s after the core ones."""
        return []

    def sorts(self) -> dict[str, Any]:
        """{key: fn(queryset) -> queryset}: sorts offered beside relevance, newest and name
        ("trust" also orders the home page's "most trusted")."""
        return {}

    def domain_tile_stats(self, user, domains) -> dict[int, str]:
        """{domain id: a line of text} on the home page's domain tiles."""
        return {}

    def searched(self, request, query: str, found: bool) -> None:
        """The search page showed the first page of results for `query` (found: any product)."""

    def product_viewed(self, request, product) -> None:
        """The product's page was loaded (not an htmx fragment of it)."""

    # -- lineage (`products.lineage`) ---------------------------------------------------------

    def node_badges(self, products) -> dict[int, dict]:
        """{product id: badge} on lineage graph nodes, e.g. {"label": "72", "level": "success"}."""
        return {}

    def lineage_section(self, request, product) -> dict | None:
        """A section below the Lineage tab: {"template": ..., **context}, or None."""
        return None

    def observed_edges(self) -> Iterable[tuple[int, int, int]]:
        """Edges seen rather than declared (usage: a query read the source port's table and
        wrote the product's), as (source product id, source port id, product id). The mesh
        map and impact analysis add them when asked (`?observed=1`); products filters them
        by visibility like declared edges."""
        return ()


@cache
def installed() -> tuple[ProductExtension, ...]:
    return tuple(import_string(path)() for path in getattr(settings, "PRODUCT_EXTENSIONS", ()))


def _forget(*, setting, **kwargs):
    if setting == "PRODUCT_EXTENSIONS":
        installed.cache_clear()  # the statements built on them: meshportal.statements


setting_changed.connect(_forget, dispatch_uid="product-extensions")


def _adding(method: str) -> list[ProductExtension]:
    """The installed extensions that override `method` (the others add nothing)."""
    base = getattr(ProductExtension, method)
    return [ext for ext in installed() if getattr(type(ext), method) is not base]


def list_related() -> tuple[str, ...]:
    return tuple(name for ext in installed() for name in ext.list_related)


def check_publish(product) -> None:
    for ext in _adding("check_publish"):
        ext.check_publish(product)


def publish_preview(product) -> list:
    return [item for ext in _adding("publish_preview") for item in ext.publish_preview(product)]


def imports_contract_rules() -> bool:
    return bool(_adding("import_quality") or _adding("import_slas"))


def export_quality(product, port, sections) -> dict | None:
    quality = None
    for ext in _adding("export_quality"):
        quality = ext.export_quality(product, port, sections)
    return quality


def import_quality(product, port, sections, previous) -> None:
    for ext in _adding("import_quality"):
        ext.import_quality(product, port, sections, previous)


def export_slas(product, entries: list) -> list:
    for ext in _adding("export_slas"):
        entries = ext.export_slas(product, entries)
    return entries


def import_slas(product, entries: list, previous: list) -> None:
    for ext in _adding("import_slas"):
        ext.import_slas(product, entries, previous)


def document_parts(product) -> Iterable[tuple[str, str]]:
    for ext in _adding("document_parts"):
        yield from ext.document_parts(product)


def facets() -> list:
    return [facet for ext in _adding("facets") for facet in ext.facets()]


def sorts() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for ext in _adding("sorts"):
        out.update(ext.sorts())
    return out


def domain_tile_stats(user, domains) -> list[dict[int, str]]:
    return [ext.domain_tile_stats(user, domains) for ext in _adding("domain_tile_stats")]


def searched(request, query: str, found: bool) -> None:
    for ext in _adding("searched"):
        ext.searched(request, query, found)


def product_viewed(request, product) -> None:
    for ext in _adding("product_viewed"):
        ext.product_viewed(request, product)


def node_badges(products) -> dict[int, dict]:
    badges: dict[int, dict] = {}
    for ext in _adding("node_badges"):
        badges.update(ext.node_badges(products))
    return badges


def observed_edges() -> set[tuple[int, int, int]]:
    """(source product id, source port id, product id) edges every extension observed, without
    an edge from a product to itself."""
    return {
        (s, port, d)
        for ext in _adding("observed_edges")
        for s, port, d in ext.observed_edges()
        if s != d
    }


def lineage_sections(request, product) -> list[dict]:
    sections = (ext.lineage_section(request, product) for ext in _adding("lineage_section"))
    return [s for s in sections if s]
