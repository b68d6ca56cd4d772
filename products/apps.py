from django.apps import AppConfig


def _forget_popular(**kwargs) -> None:
    from meshportal import cache

    cache.forget_public(cache.POPULAR)


def _forget_list_facets(**kwargs) -> None:
    from meshportal import cache

    cache.forget_public(cache.LIST_FACETS)


class ProductsConfig(AppConfig):
    name = "products"
    verbose_name = "Data products"

    def ready(self) -> None:
        import functools

        from django.db.models.signals import post_delete, post_save

        from meshportal import cache
        from products.discovery import search
        from products.lineage import graph as lineage
        from products.lineage import views as lineage_views  # noqa: F401  (the Lineage tab)
        from products.models import AccessRequest, DataProduct, InputPort, Tag
        from products.signals import products_created

        # The inbox badge: requests come and go, a product moves to another team.
        cache.forget_users_on(cache.NAV_COUNTS, AccessRequest, DataProduct)
        products_created.connect(
            functools.partial(cache.forget_users, cache.NAV_COUNTS),
            weak=False,
            dispatch_uid="nav-products-created",
        )
        # A renamed tag: its products' search text and facet values.
        post_save.connect(search.tag_changed, sender=Tag, dispatch_uid="search-tag")
        # The cached mesh map is forgotten whenever a product or an edge changes.
        for model in (DataProduct, InputPort):
            for signal in (post_save, post_delete):
                signal.connect(
                    lineage.invalidate_mesh, sender=model, dispatch_uid=f"mesh-{model.__name__}"
                )
        products_created.connect(lineage.invalidate_mesh, dispatch_uid="mesh-products-created")
        # The product list's counts kept for everyone name domains and teams.
        from domains.models import Domain, Team

        for named in (Domain, Team):
            for signal in (post_save, post_delete):
                signal.connect(
                    _forget_list_facets, sender=named, dispatch_uid=f"facets-{named.__name__}"
                )
        # "Popular products" (no search results) rank by approved consumers.
        for signal in (post_save, post_delete):
            signal.connect(_forget_popular, sender=AccessRequest, dispatch_uid="popular")
