"""Reads that pages and the API share: visibility, filters, prefetching."""

from collections import defaultdict
from collections.abc import Iterable
from functools import cache
from types import SimpleNamespace
from typing import Any, NamedTuple, cast

from django.core.paginator import Page
from django.db import connection, connections
from django.db.models import (
    BooleanField,
    Count,
    Field,
    Model,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    prefetch_related_objects,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Left

from meshportal.links import cached_reverse
from meshportal.permissions import (
    PUBLIC_PRODUCTS,
    VIEW,
    can,
    is_platform,
    team_roles,
    visible,
    visible_to_member,
)
from meshportal.statements import Statement, array_text, fetch
from products import extensions, urns
from products.discovery import search
from products.filters import DataProductFilter
from products.models import AccessRequest, DataProduct, OutputPort, SchemaField, Tag

PAGE_SIZE = 25  # products a page of a list shows: search, domain, team and tag pages


def for_lists(qs: QuerySet) -> QuerySet:
    # Other apps' one-to-one rows that badges read (governance's "quality_state" for trust and
    # the freshness SLO), joined so that a badge costs no query per row.
    return qs.select_related("domain", "owner_team", *extensions.list_related())


def product_queryset() -> QuerySet:
    return for_lists(DataProduct.objects.all()).prefetch_related("tags")


def product_list(*, user, data=None) -> QuerySet:
    """Products the user may see, narrowed by the shared filterset, ready for a list page."""
    qs = visible(user, product_queryset())
    if data:
        qs = DataProductFilter(data, queryset=qs).qs
    return qs


class _Ref(NamedTuple):
    """A domain, team or tag as a list row links to it: slug, name and its page's URL name."""

    slug: str
    name: str
    view: str
    kwarg: str

    def get_absolute_url(self) -> str:
        return cached_reverse(self.view, **{self.kwarg: self.slug})


class ListRow(SimpleNamespace):
    """A product as a list page shows it (products.templatetags.product_rows: the rows and
    their badges), read as plain values by `list_rows`: its own columns, the domain's and
    team's slug and name, its tags and the other apps' one-to-one rows the badges read (the
    quality state). Not a model instance: 25 products with their domain, team, quality state
    and tags built ~130 instances, most of a list page's CPU."""

    def get_absolute_url(self) -> str:
        return cached_reverse("products:product", domain=self.domain.slug, product=self.slug)


_LIST_COLUMNS = (
    "pk",
    "slug",
    "name",
    "summary",
    "status",
    "classification",
    "freshness_slo_hours",
    "owner_team_id",
    "domain__slug",
    "domain__name",
    "owner_team__slug",
    "owner_team__name",
)


def _related_columns() -> dict[str, list[str]]:
    """Each extension's one-to-one row the badges read (`list_related`): its columns."""
    out = {}
    for name in extensions.list_related():
        model = cast(type[Model], DataProduct._meta.get_field(name).related_model)
        out[name] = [f.attname for f in model._meta.concrete_fields]
    return out


def _tags_of(ids: list[int]) -> dict[int, list[tuple[str, str]]]:
    """Each product's tags as (slug, name), in the tags' own order (by slug), in one query:
    for the rows read as plain values (list pages, the API list) where `_tag_arrays` cannot."""
    tags: dict[int, list[tuple[str, str]]] = defaultdict(list)
    through = DataProduct.tags.through.objects.filter(dataproduct_id__in=ids)
    for pk, slug, name in through.order_by("tag__slug").values_list(
        "dataproduct_id", "tag__slug", "tag__name"
    ):
        tags[pk].append((slug, name))
    return tags


def _tag_arrays(using: str = "default") -> dict[str, Any]:
    """On PostgreSQL, each product's tags as an array of [slug, name] pairs (by slug), a column
    of its own row read in the rows' statement: a page of rows then needs no second query for
    its tags (`_tags_of`: a round trip and a statement built and compiled). Fixed SQL text:
    an ORM subquery (ArraySubquery over Tag) cost more to build and compile than the query it
    saved. Elsewhere {}: the caller reads them with `_tags_of`."""
    if connections[using].vendor != "postgresql":
        return {}
    return {"_tag_pairs": _TAG_PAIRS}


# The products' table is a list statement's base table, never aliased: its id is the outer row's.
_TAG, _LINK, _PRODUCT = (
    Tag._meta.db_table,
    DataProduct.tags.through._meta.db_table,
    DataProduct._meta.db_table,
)


def _tags_array(*columns: str) -> RawSQL:
    """Each product's tags as an array of arrays of `columns` (text) of `t`, the tag, in Tag's
    order (by slug). Fixed text, the table names from the models: no value of a request
    reaches it."""
    return RawSQL(  # noqa: S611  # nosec B611
        f"ARRAY(SELECT ARRAY[{', '.join(columns)}] FROM {_TAG} t JOIN {_LINK} l"  # noqa: S608  # nosec B608
        f" ON l.tag_id = t.id WHERE l.dataproduct_id = {_PRODUCT}.id ORDER BY t.slug)",
        (),
        output_field=Field(),
    )


_TAG_PAIRS = _tags_array("t.slug", "t.name")  # a list row's
# The product page's, in its product's own statement (PostgreSQL; elsewhere a statement of
# their own): the ids too, as text.
_TAG_TRIPLES = _tags_array("t.id::text", "t.slug", "t.name")


def _row_tags(values: list[dict], arrays: dict) -> dict[int, list[tuple[str, str]]]:
    """Each row's tags as (slug, name): from its array columns, or else in one query."""
    if arrays:
        return {v["pk"]: [(slug, name) for slug, name in v.pop("_tag_pairs")] for v in values}
    return _tags_of([v["pk"] for v in values]) if values else {}


def list_rows(qs: QuerySet) -> list[ListRow]:
    """The products of `qs` (already visible to the reader, in its order, sliced or not) as
    `ListRow`s, in one query on PostgreSQL (the tags a column of each row), two elsewhere. A
    search's headline, where `qs` has one, comes along; the description only as far as a
    snippet shows it (200 characters)."""
    arrays = _tag_arrays(qs.db)
    headline = ["search_headline"] if "search_headline" in qs.query.annotations else []
    return _as_rows(list(_list_values(qs, headline, arrays)), arrays)


def _list_values(qs: QuerySet, extra: list[str], arrays: dict) -> QuerySet:
    """`qs` as the values a ListRow is made of (and `extra`, annotations of `qs`)."""
    related = _related_columns()
    names = [f"{name}__{col}" for name, cols in related.items() for col in cols]
    return qs.prefetch_related(None).values(
        *_LIST_COLUMNS,
        *names,
        *extra,
        _description=Left("description", 200),  # search.snippet's
        **arrays,
    )


def _as_rows(values: list[dict], arrays: dict) -> list[ListRow]:
    related = _related_columns()
    tags = _row_tags(values, arrays)
    rows = []
    for v in values:
        row = ListRow(
            pk=v["pk"],
            id=v["pk"],
            slug=v["slug"],
            name=v["name"],
            summary=v["summary"],
            description=v["_description"],
            status=v["status"],
            classification=v["classification"],
            freshness_slo_hours=v["freshness_slo_hours"],
            owner_team_id=v["owner_team_id"],
            domain=_Ref(v["domain__slug"], v["domain__name"], "domains:domain", "domain"),
            owner_team=_Ref(v["owner_team__slug"], v["owner_team__name"], "domains:team", "team"),
            tags=[_Ref(slug, name, "products:tag", "tag") for slug, name in tags.get(v["pk"], ())],
            search_headline=v.get("search_headline"),
        )
        for name, cols in related.items():
            fields = {col: v[f"{name}__{col}"] for col in cols}
            # a LEFT JOIN with no row: every column empty, its primary key first of all
            setattr(row, name, SimpleNamespace(**fields) if fields[cols[0]] is not None else None)
        rows.append(row)
    return rows


def as_list_rows(page: Page) -> Page:
    """A paginator's page of products with its rows read as `ListRow`s (unless read already:
    IdsFirstPaginator's `page_rows` below)."""
    if isinstance(page.object_list, QuerySet):
        page.object_list = list_rows(page.object_list)
    return page


def _by_ids(ids: str) -> QuerySet:
    """The products whose ids are in `ids`, an array's text (`{1,2,3}`): one SQL text for
    every page, whatever its number of rows."""
    return DataProduct.objects.order_by().filter(_in_array("id", ids))


def _in_array(column: str, ids: str) -> RawSQL:
    """The product's `column` is one of `ids`, an array's text (`{1,2,3}`, `array_text`)."""
    return RawSQL(f"{_PRODUCT}.{column} = ANY(%s::bigint[])", (ids,), output_field=BooleanField())  # noqa: S611  # nosec B611


# A page of a list by its ids as ListRow values, with or without a search's headline (PostgreSQL):
# compiled once per process. Built and compiled per page, this statement was most of the CPU of
# reading a page's rows (2.4 → 0.7 ms for a search's 25).
_page_values = Statement(lambda ids: _list_values(_by_ids(ids), [], _tag_arrays()))
_page_values_marked = Statement(
    lambda ids, query: _list_values(
        _by_ids(ids).annotate(search_headline=search.headline(query)),
        ["search_headline"],
        _tag_arrays(),
    )
)


def list_page_rows(qs: QuerySet, ids: list[int]) -> list[ListRow]:
    """IdsFirstPaginator's `page_rows` for list pages: the page `ids` of `qs` as `ListRow`s.
    The ids were read from `qs` a moment ago, its visibility test and filters included: on
    PostgreSQL the rows are read by id alone, in a statement compiled once."""
    marked = "search_headline" in qs.query.annotations
    query = getattr(qs.query, "headline_query", None)
    if connections[qs.db].vendor == "postgresql" and (query is not None or not marked):
        array = array_text(ids)
        values = (
            _page_values_marked(ids=array, query=query, using=qs.db)
            if marked
            else _page_values(ids=array, using=qs.db)
        )
        found = {r.pk: r for r in _as_rows(values, {"_tag_pairs": _TAG_PAIRS})}
    else:
        found = {r.pk: r for r in list_rows(qs.order_by().filter(pk__in=ids))}
    return [found[pk] for pk in ids if pk in found]


# The home page's statements, compiled once per process (PostgreSQL, a reader who is not
# platform staff): the newest products of the reader's teams, and the rows of the cached public
# ids (each read again through the rule, in case it has left since) and of the reader's own.
_teams_newest = Statement(
    lambda user, teams: (
        visible_to_member(user, DataProduct.objects.filter(_in_array("owner_team_id", teams)))
        .order_by("-updated_at")
        .values_list("pk", flat=True)[:HOME_NEWEST]
    )
)
_home_values = Statement(
    lambda public, mine: _list_values(
        DataProduct.objects.order_by().filter(
            Q(PUBLIC_PRODUCTS, _in_array("id", public)) | Q(_in_array("id", mine))
        ),
        [],
        _tag_arrays(),
    )
)
HOME_NEWEST = 8


def teams_newest(*, user, teams: list[int]) -> list[int]:
    """The ids of the newest products of `teams` the user may see (the home page's "yours")."""
    if not teams:
        return []
    if connection.vendor == "postgresql" and not is_platform(user):
        return _teams_newest(user=user.pk, teams=array_text(teams))
    return list(
        visible(user, DataProduct.objects.filter(owner_team_id__in=teams))
        .order_by("-updated_at")
        .values_list("pk", flat=True)[:HOME_NEWEST]
    )


def home_rows(*, public: list[int], mine: list[int]) -> dict[int, ListRow]:
    """The home page's rows by id: of `public` (cached ids) those every signed-in user still
    sees, and `mine` (read through the reader's visibility a moment ago)."""
    if connection.vendor == "postgresql":
        values = _home_values(public=array_text(public), mine=array_text(mine))
        rows = _as_rows(values, {"_tag_pairs": _TAG_PAIRS})
    else:
        rows = list_rows(
            DataProduct.objects.filter(Q(PUBLIC_PRODUCTS, pk__in=public) | Q(pk__in=mine))
        )
    return {r.pk: r for r in rows}


# The API list's default order; the id last, so that equal names keep one order on every page.
BY_DOMAIN = ("domain__name", "name", "pk")


def ids_by_domain(qs: QuerySet, bottom: int, limit: int) -> tuple[list[int], int] | None:
    """IdsFirstPaginator's `ids_and_count` for a list in BY_DOMAIN order (PostgreSQL): the ids
    of rows bottom..bottom+limit and the total, in one statement that reads at most
    bottom+limit rows of each domain, in name order, through the index on (domain, name)
    (dataproduct_list_cover), then sorts those few by domain name: the page's rows come from
    them whatever the domains' names. The ORDER BY sorted every visible product by the joined
    domain's name to keep 50 (6.5 of 9 ms of the API list's SQL at 10,000 products).
    None (the paginator then reads the ORDER BY): another order, another database, a page past
    the end, a filter that matches nothing."""
    from django.core.exceptions import EmptyResultSet
    from django.db import connection
    from django.db.models.expressions import RawSQL

    from domains.models import Domain

    if connection.vendor != "postgresql" or tuple(qs.query.order_by) != BY_DOMAIN:
        return None
    top = bottom + limit
    each = (
        qs.order_by("name", "pk")
        .filter(domain_id=RawSQL('"_d"."id"', ()))  # noqa: S611  # the lateral's own alias
        .values_list("pk", "name")[:top]
    )
    try:
        each_sql, each_params = each.query.sql_with_params()
        all_sql, all_params = qs.order_by().values("pk").query.sql_with_params()
    except EmptyResultSet:  # a filter that can match nothing: the ORM answers without a query
        return None
    domains = connection.ops.quote_name(Domain._meta.db_table)
    # Both parts compiled by the ORM above, their parameters bound; the rest is ours. The same
    # text for every visit to the same page (the reader's id a parameter): run prepared.
    rows = fetch(
        f"SELECT l.id, (SELECT count(*) FROM ({all_sql}) a)"  # noqa: S608  # nosec B608
        f" FROM {domains} _d CROSS JOIN LATERAL ({each_sql}) l (id, name)"
        " ORDER BY _d.name, l.name, l.id LIMIT %s OFFSET %s",
        [*all_params, *each_params, limit, bottom],
        prepared=True,
    )
    if not rows:
        return None if bottom else ([], 0)
    return [pk for pk, _ in rows], rows[0][1]


def product_rows(ids: list[int], *, columns: Iterable[str]) -> list[dict]:
    """The products `ids` (already checked visible) in that order, as plain values: their own
    `columns` with the domain's and team's slugs, the URN, the replacement's URN and the tag
    names. A page of the API's list without model instances (50 products built ~315 of them,
    with the quality state no field of the list shows: about half of the request's CPU)."""
    arrays = _tag_arrays()
    if arrays:  # PostgreSQL: a statement compiled once per set of columns, the ids one array
        values = _api_values(tuple(columns))(ids=array_text(ids))
    else:
        values = list(_api_rows(DataProduct.objects.filter(pk__in=ids), columns, arrays))
    tags = _row_tags(values, arrays)
    rows = {r["pk"]: r for r in values}
    out = []
    for pk in ids:
        row = rows.get(pk)
        if row is None:  # deleted since its id was read
            continue
        row["domain"] = row.pop("domain__slug")
        row["owner_team"] = row.pop("owner_team__slug")
        row["urn"] = urns.format_urn(row["domain"], row["slug"])
        replacement = row.pop("replacement__domain__slug"), row.pop("replacement__slug")
        row["replacement"] = urns.format_urn(*replacement) if replacement[1] else None
        row["tags"] = [name for _, name in tags.get(pk, ())]
        out.append(row)
    return out


def _api_rows(qs: QuerySet, columns: Iterable[str], arrays: dict) -> QuerySet:
    joined = ("domain__slug", "owner_team__slug", "replacement__domain__slug", "replacement__slug")
    return qs.values("pk", *columns, *joined, **arrays)


@cache
def _api_values(columns: tuple[str, ...]) -> Statement:
    return Statement(lambda ids: _api_rows(_by_ids(ids), columns, _tag_arrays()))


# The product page's statements, compiled once per process (meshportal.statements): the
# product with its domain, team and badges' rows (and on PostgreSQL its tags); its ports with
# their data sources; elsewhere its tags.
_product_by_slugs = Statement(
    lambda domain, product: for_lists(
        DataProduct.objects.filter(domain__slug=domain, slug=product).annotate(
            **(
                {"_tag_triples": _TAG_TRIPLES, "_owner_rows": _owners_array()}
                if _tag_arrays()
                else {}
            )
        )
    ).order_by()[:1]
)


def _owners_array():
    """The product's team's owners (name and address, the overview names them) as a column
    of its own statement: domains' one definition of a team's owners, read for the product's
    team. PostgreSQL (an array of JSON objects); elsewhere `product_owners` reads them."""
    from django.contrib.postgres.expressions import ArraySubquery
    from django.db.models.functions import JSONObject

    from domains.selectors import owners_of

    person = JSONObject(
        username="user__username",
        first_name="user__first_name",
        last_name="user__last_name",
        email="user__email",
    )
    return ArraySubquery(owners_of(OuterRef("owner_team_id")).values(person=person))


def product_owners(product: DataProduct) -> list:
    """The owners of the product's team, by user name, as memberships with their users (their
    names and addresses): from the product's own statement where it read them, else a
    statement of their own."""
    from django.contrib.auth import get_user_model

    from domains.models import Membership
    from domains.selectors import team_owners

    rows = product.__dict__.get("_owner_rows")
    if rows is None:
        return team_owners(team=product.owner_team)
    user = get_user_model()
    return [
        Membership(team_id=product.owner_team_id, role="owner", user=user(**row)) for row in rows
    ]


_ports_of = Statement(
    lambda product: OutputPort.objects.select_related("data_source").filter(product_id=product)
)
_tags_of_one = Statement(lambda product: Tag.objects.filter(products=product))


def product_get(*, user, domain: str, product: str, fields: bool = True) -> DataProduct | None:
    """The product with its ports; with `fields`, each port's schema fields too (the schema and
    contract tabs need them, the other tabs do not: up to hundreds of rows per product)."""
    # One product: read it, then ask can(VIEW) (the rule visible() applies in SQL, answered
    # without a query for a published product, and from the permissions the page loads anyway
    # for a draft), and only then its ports and tags. Building visible()'s subqueries was a
    # third of this function's time.
    found = _product_by_slugs(domain=domain, product=product)
    obj = found[0] if found else None
    if obj is None or not can(user, VIEW, obj):
        return None
    if fields:
        fields_qs = SchemaField.objects.select_related("glossary_term").order_by("ordinal", "name")
        port_qs = OutputPort.objects.select_related("data_source").prefetch_related(
            Prefetch("fields", queryset=fields_qs)
        )
        prefetch_related_objects([obj], Prefetch("ports", queryset=port_qs))
        _as_prefetched(obj, "tags", _tags_read(obj))
        return obj
    ports = _ports_of(product=obj.pk)
    for port in ports:
        OutputPort.product.field.set_cached_value(port, obj)
    _as_prefetched(obj, "ports", ports)
    _as_prefetched(obj, "tags", _tags_read(obj))
    return obj


def _tags_read(obj: DataProduct) -> list[Tag]:
    """The product's tags: from its own statement's column where it has one (_TAG_TRIPLES),
    else a statement of their own."""
    triples = obj.__dict__.pop("_tag_triples", None)
    if triples is None:
        return _tags_of_one(product=obj.pk)
    columns = ["id", "slug", "name"]
    return [
        Tag.from_db(obj._state.db, columns, (int(pk), slug, name)) for pk, slug, name in triples
    ]


def _as_prefetched(obj: Model, name: str, rows: list) -> None:
    """`obj.<name>.all()` answers `rows` without a query, as after prefetch_related(name)."""
    qs = getattr(obj, name).get_queryset()
    qs._result_cache, qs._prefetch_done = rows, True
    obj.__dict__.setdefault("_prefetched_objects_cache", {})[name] = qs


_latest_request = Statement(
    lambda product, user: AccessRequest.objects.filter(
        product_id=product, requester_id=user
    ).order_by("-created_at")[:1]
)


def latest_request(*, user, product: DataProduct) -> AccessRequest | None:
    """The user's latest request for the product (the overview says where it stands)."""
    found = _latest_request(product=product.pk, user=user.pk)
    return found[0] if found else None


def product_by_urn(*, user, urn: str) -> DataProduct | None:
    parts = urns.parse(urn, path_form=False)
    if parts is None:
        return None
    return visible(user, product_queryset()).filter(domain__slug=parts[0], slug=parts[1]).first()


def visible_by_ref(*, user, ref: str) -> int | None:
    """The id of the product `ref` names (`urn:mesh:<domain>:<product>` or `<domain>/<product>`)
    if the user may see it, else None — the same None for a product that does not exist and
    for one the user may not see (another team's draft), so that every filter by product
    answers both alike. Every list filter by product reference goes through here."""
    parts = urns.parse(ref)
    if parts is None:
        return None
    return (
        visible(user, DataProduct.objects.all())
        .filter(domain__slug=parts[0], slug=parts[1])
        .values_list("pk", flat=True)
        .first()
    )


def domain_product_counts(*, user) -> dict[int, int]:
    rows = visible(user, DataProduct.objects.all()).values("domain_id").annotate(n=Count("id"))
    return {r["domain_id"]: r["n"] for r in rows}


def inbox(*, user) -> QuerySet:
    """Pending requests the user may decide (owner of the product's team), oldest first."""
    qs = AccessRequest.objects.filter(status=AccessRequest.Status.PENDING).exclude(requester=user)
    if not is_platform(user):
        owned = [t for t, r in team_roles(user).items() if r == "owner"]
        qs = qs.filter(product__owner_team_id__in=owned)
    return qs.select_related("product__domain", "requester", "team").order_by("created_at")


def may_decide(user) -> bool:
    """Whether the user can have anything in the inbox (platform, or owner of a team)."""
    return is_platform(user) or "owner" in team_roles(user).values()


def _requests_of(user: int) -> QuerySet:
    return AccessRequest.objects.filter(requester_id=user).select_related(
        "product__domain", "team", "decided_by"
    )


def my_requests(*, user) -> QuerySet:
    return _requests_of(user.pk)


_pending_of = Statement(
    lambda user: _requests_of(user).filter(status=AccessRequest.Status.PENDING)[:5]
)


def my_pending(*, user) -> list[AccessRequest]:
    """The user's five newest pending requests (the home page's)."""
    return _pending_of(user=user.pk) if user.is_authenticated else []


def consumers(*, product: DataProduct) -> QuerySet:
    return AccessRequest.objects.filter(
        product=product, status=AccessRequest.Status.APPROVED
    ).select_related("requester", "team")


PORT_SUGGESTIONS = 20


def port_suggest(*, user, query: str = "", limit: int = PORT_SUGGESTIONS) -> QuerySet:
    """Output ports the user may see and may declare as an input (not of drafts or retired
    products), matching every word typed (`orders/ord` or `orders line`) in the domain, product
    or port's slug or name: the lineage form's port picker."""
    qs = visible(user, OutputPort.objects.exclude(product__status__in=["draft", "retired"]))
    qs = _matching(qs, query, "product__", port=True)
    return qs.select_related("product__domain").order_by(
        "product__domain__slug", "product__slug", "slug"
    )[:limit]


def data_sources_for(team_id: int | None) -> QuerySet:
    """The data sources a team's ports may read (DataSource.open_to's query, one rule)."""
    model = OutputPort._meta.get_field("data_source").related_model
    manager: Any = model._default_manager  # a DataSourceQuerySet's (governance: a layer up)
    return manager.usable_by(team_id)


def data_source_suggest(*, team_id: int | None, query: str = "", limit: int = PORT_SUGGESTIONS):
    """The sources open to the team (data_sources_for) matching every word typed in their name
    or slug: the product form's data-source picker. Names and kinds only are shown."""
    qs = data_sources_for(team_id)
    for word in query.split()[:5]:
        qs = qs.filter(Q(name__icontains=word) | Q(slug__icontains=word))
    return qs.only("slug", "name", "kind").order_by("name", "slug")[:limit]


def pickable_products(user) -> QuerySet:
    """What a product picker may offer and accept: published products the user sees (what
    a replacement must be, services.product_deprecate), never a draft."""
    return visible(user, DataProduct.objects.filter(status=DataProduct.Status.PUBLISHED))


def product_suggest(*, user, query: str = "", limit: int = PORT_SUGGESTIONS) -> QuerySet:
    """Published products the user may see (pickable_products), matching every word typed
    (`orders/ret` or `returns`) in the domain's or product's slug or name: the product picker
    (a deprecated product's replacement). Drafts are never suggested, not even one's own."""
    return (
        _matching(pickable_products(user), query, "")
        .select_related("domain")
        .order_by("domain__slug", "slug")[:limit]
    )


def _matching(qs: QuerySet, query: str, product: str, *, port: bool = False) -> QuerySet:
    """Rows matching every word (at most 5) of `query` in the names and slugs of the domain,
    the product (`product`: the path to it) and, with `port`, the port itself."""
    for word in query.replace("/", " ").split()[:5]:
        match = (
            Q(**{f"{product}domain__slug__icontains": word})
            | Q(**{f"{product}slug__icontains": word})
            | Q(**{f"{product}name__icontains": word})
        )
        if port:
            match |= Q(slug__icontains=word) | Q(name__icontains=word)
        qs = qs.filter(match)
    return qs
