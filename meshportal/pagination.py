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

from collections.abc import Callable
from functools import cached_property, partial
from typing import TypeGuard

from django.core.exceptions import EmptyResultSet
from django.core.paginator import EmptyPage, Paginator
from django.db.models import Count, QuerySet, Window
from django.db.models.query import ModelIterable

from meshportal.beside import beside, enabled
from meshportal.statements import fetch, scalar


def _narrow(qs) -> TypeGuard[QuerySet]:
    """Whether the page's ids can be read apart from its rows."""
    return (
        isinstance(qs, QuerySet)
        and qs._iterable_class is ModelIterable  # not .values(): already narrow
        and not qs.query.distinct  # ORDER BY terms must then be selected
        and not qs.query.combinator  # a UNION cannot be re-filtered
    )


def in_full_order(object_list):
    """`object_list` with its primary key as the last key of its order (the order asked for,
    else the model's Meta.ordering), when the order does not hold it yet: rows alike in every
    key come back in any order, and a page read by one statement and the next by another
    could show a row twice and another never. Left as it is: a list, an unordered or sliced
    queryset, plain values, DISTINCT (the key would have to be selected) and a UNION."""
    if not isinstance(object_list, QuerySet):
        return object_list
    query = object_list.query
    if query.is_sliced or query.distinct or query.combinator:
        return object_list
    if object_list._iterable_class is not ModelIterable:
        return object_list
    order = tuple(query.order_by) or (
        tuple(query.get_meta().ordering) if query.default_ordering else ()
    )
    if not order:
        return object_list
    pk = query.get_meta().pk.attname
    keys = {o.lstrip("-") for o in order if isinstance(o, str)}
    if keys & {"pk", pk}:
        return object_list
    return object_list.order_by(*order, "pk")


class StablePaginator(Paginator):
    """Django's Paginator over `in_full_order(object_list)`: every list the portal pages (the
    pages, the API, the MCP tools) has one order from page to page."""

    def __init__(self, object_list, *args, **kwargs):
        super().__init__(in_full_order(object_list), *args, **kwargs)


class IdsFirstPaginator(StablePaginator):
    _later: Callable[[], int] | None = None
    _estimate: int | None = None
    _prepared = False

    def prepared(self) -> None:
        """The page's ids and total read as prepared statements (meshportal.statements.fetch):
        for a list whose plan does not depend on its values (a domain's or team's products by
        name; not a search's words). Their text is the same on every visit to the same page."""
        self._prepared = True

    def count_later(self, count: Callable[[], int], estimate: int | None = None) -> None:
        """The total comes from `count()`, which may wait for it (a search's facet pass running
        beside the request: meshportal.beside): a page's rows are read first, while it counts,
        choosing how by `estimate` (about the total, or None: wait for it)."""
        self._later, self._estimate = count, estimate

    def count_beside(self) -> None:
        """The total counted on a second connection while the page's ids and rows are read on
        the request's own (meshportal.beside: where that applies; else counted as usual)."""
        qs = self.object_list
        if not _narrow(qs) or not enabled(qs.db):
            return
        try:
            sql, params = qs.order_by().values("pk").query.sql_with_params()
        except EmptyResultSet:  # a queryset that can hold nothing: counted as usual (0)
            return
        # The ORM compiled the inner statement, its parameters bound: no user text in the SQL.
        counting = f"SELECT count(*) FROM ({sql}) s"  # noqa: S608  # nosec B608
        count = partial(scalar, counting, params, qs.db, prepared=self._prepared)
        self.count_later(beside(count, using=qs.db).result)

    def _known(self) -> int | None:
        """The total when it is known or counted here; None while it is counted elsewhere
        (count_later without an estimate): a page_ids hook then does without it, rather than
        wait for it (a filtered list's facet pass counts it beside)."""
        if "count" not in self.__dict__ and self._later is not None:
            return None
        return self.count

    @cached_property
    def count(self) -> int:
        if self._later is not None:
            return self._later()
        return super().count

    def get_page(self, number):
        # Django's validates the number first, which needs the total: the rows come first here.
        try:
            n = int(number)
        except (TypeError, ValueError):  # no number, or not one: the first page, as Django's
            n = 1
        try:
            early = self._before_count(self.object_list, n)
        except EmptyPage:  # past the end: the last page, as Django's get_page gives
            early = None
        return early if early is not None else super().get_page(number)

    def page(self, number):
        ids = None
        qs = self.object_list
        early = self._before_count(qs, number)
        if early is not None:
            return early
        if "count" not in self.__dict__ and self._later is None and _narrow(qs):
            ids = self._ids_and_count(qs, number)
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        return self._get_page(self._rows(bottom, top, ids), number, self)

    def _before_count(self, qs, number):
        """Page `number`, its rows read before the total (count_later), which then only says
        whether the page exists; None where that does not apply: the total known or not coming
        later, a number that is not one, orphans (the last page's size needs the total)."""
        if self._later is None or "count" in self.__dict__ or self.orphans or not _narrow(qs):
            return None
        bottom = self._bottom(number)
        if bottom is None:
            return None
        rows = self._page_rows(qs, bottom, bottom + self.per_page, None, total=self._estimate)
        if bottom == 0 and self.allow_empty_first_page:
            # The first page always exists: the total waits until something shows it.
            return self._get_page(rows, 1, self)
        number = self.validate_number(number)  # past the end: EmptyPage, as without early rows
        return self._get_page(rows[: max(0, self.count - bottom)], number, self)

    def _bottom(self, number) -> int | None:
        """The index of page `number`'s first row; None for a number that is not a page's."""
        try:
            n = int(number)
        except (TypeError, ValueError):
            return None
        return (n - 1) * self.per_page if n >= 1 else None

    def _ids_and_count(self, qs: QuerySet, number) -> list | None:
        """The ids from this page's first row on, with the total; None when the page is out of
        range (then the count query and validate_number say how, as Django's paginator does)."""
        bottom = self._bottom(number)
        if bottom is None:
            return None
        ids_and_count = getattr(qs.query, "ids_and_count", None)
        found = ids_and_count(qs, bottom, self.per_page + self.orphans) if ids_and_count else None
        if found is not None:
            self.__dict__["count"] = found[1]
            return found[0]
        rows = self._read(
            qs.annotate(_total=Window(Count("pk"))).values_list("pk", "_total")[
                bottom : bottom + self.per_page + self.orphans
            ]
        )
        if rows:
            self.__dict__["count"] = rows[0][1]  # Paginator.count is a cached_property
        elif bottom == 0:
            self.__dict__["count"] = 0
        else:
            return None
        return [pk for pk, _ in rows]

    def _read(self, values: QuerySet) -> list[tuple]:
        """The rows of a values_list() queryset: prepared where asked (prepared())."""
        if not self._prepared:
            return list(values)
        try:
            sql, params = values.query.sql_with_params()
        except EmptyResultSet:  # a queryset that can hold nothing
            return []
        return fetch(sql, params, values.db, prepared=True)

    def _rows(self, bottom: int, top: int, ids: list | None = None):
        qs = self.object_list
        if not _narrow(qs):
            return qs[bottom:top]
        return self._page_rows(qs, bottom, top, ids)

    def _page_rows(
        self, qs: QuerySet, bottom: int, top: int, ids: list | None, total: int | None = None
    ):
        if ids is None:
            # A query may know a cheaper way to its page's ids than its ORDER BY (a full-text
            # search reads a page's worth of each of its two tiers: products.discovery.search),
            # given the total or an estimate of it.
            page_ids = getattr(qs.query, "page_ids", None)
            if page_ids:
                ids = page_ids(qs, bottom, top, self._known() if total is None else total)
        if ids is None:
            ids = [pk for (pk,) in self._read(qs.values_list("pk")[bottom:top])]
        else:
            ids = ids[: top - bottom]
        if not ids:
            return []
        page_rows = getattr(qs.query, "page_rows", None)
        if page_rows is not None:
            return page_rows(qs, ids)
        rows = {obj.pk: obj for obj in qs.order_by().filter(pk__in=ids)}
        return [rows[pk] for pk in ids if pk in rows]
