"""A paginator that pages over ids first: `IdsFirstPaginator`.

A page of a large list used to sort every matching row with all its joined columns (domain,
team, quality state, replacement, ...) to keep 50: at 10,000 products the API's product list
spent 130 ms in that one query. Here the page's ids come from a narrow query (the same filter
and order, only the id selected), then the page's rows, with their joins, prefetches and
per-row annotations (a search headline), are read for those ids alone: the cost of the wide
part grows with the page, not with the matches. Used by the pages and the API alike.

A query may carry `page_ids(qs, bottom, top, count)` (an attribute of `qs.query`, which clones
copy): a cheaper way to the same ids in the same order, used when the total is known already
(a full-text search's page: products.discovery.search). It may also carry `page_rows(qs, ids)`:
the page's rows read another way than as model instances (the API's product list reads plain
values, the list pages `ListRow`s: products.selectors.product_rows and list_page_rows). And
`ids_and_count(qs, bottom, limit)`: a cheaper way to a page's ids and the total together, when
the total is not known yet; it answers (ids, total), or None to leave it to the ORDER BY (the
API's product list in its default order: products.selectors.ids_by_domain).

The narrow query also brings the total (`COUNT(*) OVER ()`): it reads every match to sort them
anyway, so the page's count costs no second scan (the API list: 3 queries for the page, not 4).
"""

from typing import TypeGuard

from django.core.paginator import Paginator
from django.db.models import Count, QuerySet, Window
from django.db.models.query import ModelIterable


def _narrow(qs) -> TypeGuard[QuerySet]:
    """Whether the page's ids can be read apart from its rows."""
    return (
        isinstance(qs, QuerySet)
        and qs._iterable_class is ModelIterable  # not .values(): already narrow
        and not qs.query.distinct  # ORDER BY terms must then be selected
        and not qs.query.combinator  # a UNION cannot be re-filtered
    )


class IdsFirstPaginator(Paginator):
    def page(self, number):
        ids = None
        qs = self.object_list
        if "count" not in self.__dict__ and _narrow(qs):
            ids = self._ids_and_count(qs, number)
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        return self._get_page(self._rows(bottom, top, ids), number, self)

    def _ids_and_count(self, qs: QuerySet, number) -> list | None:
        """The ids from this page's first row on, with the total; None when the page is out of
        range (then the count query and validate_number say how, as Django's paginator does)."""
        try:
            n = int(number)
        except (TypeError, ValueError):
            return None
        if n < 1:
            return None
        bottom = (n - 1) * self.per_page
        ids_and_count = getattr(qs.query, "ids_and_count", None)
        found = ids_and_count(qs, bottom, self.per_page + self.orphans) if ids_and_count else None
        if found is not None:
            self.__dict__["count"] = found[1]
            return found[0]
        rows = list(
            qs.annotate(_total=Window(Count("pk"))).values_list("pk", "_total")[
                bottom : bottom + self.per_page + self.orphans
            ]
        )
        if rows:
            self.__dict__["count"] = rows[0][1]  # Paginator.count is a cached_property
        elif n == 1:
            self.__dict__["count"] = 0
        else:
            return None
        return [pk for pk, _ in rows]

    def _rows(self, bottom: int, top: int, ids: list | None = None):
        qs = self.object_list
        if not _narrow(qs):
            return qs[bottom:top]
        return self._page_rows(qs, bottom, top, ids)

    def _page_rows(self, qs: QuerySet, bottom: int, top: int, ids: list | None):
        if ids is None:
            # A query may know a cheaper way to its page's ids than its ORDER BY (a full-text
            # search reads a page's worth of each of its two tiers: products.discovery.search).
            page_ids = getattr(qs.query, "page_ids", None)
            ids = page_ids(qs, bottom, top, self.count) if page_ids else None
        if ids is None:
            ids = list(qs.values_list("pk", flat=True)[bottom:top])
        else:
            ids = ids[: top - bottom]
        if not ids:
            return []
        page_rows = getattr(qs.query, "page_rows", None)
        if page_rows is not None:
            return page_rows(qs, ids)
        rows = {obj.pk: obj for obj in qs.order_by().filter(pk__in=ids)}
        return [rows[pk] for pk in ids if pk in rows]
