"""Reads behind the search and browse pages: facets with counts, sorts, popular products.

Hooks for other apps:
- `FACETS.append(Facet(...))` adds a facet (quality state, once quality exists); its `key` must
  be a filter of `DataProductFilter` and `path` a value path on DataProduct to group by.
- `SORTS["trust"] = fn` adds the trust sort (`fn(queryset) -> queryset`); until then "trust"
  falls back to name.
- `HOME_SECTIONS` / `domain_tile_extra` are the home page's hooks (see domains.views.home).
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from django.db.models import CharField, Count, F, Q, QuerySet, Value

from meshportal.permissions import visible
from products import selectors
from products.discovery.search import search_products
from products.filters import DataProductFilter
from products.models import AccessRequest, DataProduct, OutputPort


@dataclass(frozen=True)
class Facet:
    key: str  # the DataProductFilter filter it narrows with
    label: str
    path: str  # value path to group by
    label_path: str | None = None  # value path of a readable label, if not `labels`
    labels: dict = field(default_factory=dict)


FACETS: list[Facet] = [
    Facet("domain", "Domain", "domain__slug", "domain__name"),
    Facet("owner_team", "Owner team", "owner_team__slug", "owner_team__name"),
    Facet("status", "Status", "status", labels=dict(DataProduct.Status.choices)),
    Facet(
        "classification",
        "Classification",
        "classification",
        labels=dict(DataProduct.Classification.choices),
    ),
    Facet("tag", "Tag", "tags__slug", "tags__name"),
    Facet("port_kind", "Port kind", "ports__kind", labels=dict(OutputPort.Kind.choices)),
]


def _newest(qs: QuerySet) -> QuerySet:
    return qs.order_by(F("published_at").desc(nulls_last=True), "-created_at", "name")


SORTS: dict[str, Callable[[QuerySet], QuerySet]] = {
    "relevance": lambda qs: qs,  # search_products already ranks; without q: by name
    "newest": _newest,
    "name": lambda qs: qs.order_by("name", "domain__name"),
}
SORT_LABELS = {
    "relevance": "Relevance",
    "trust": "Most trusted",
    "newest": "Newest",
    "name": "Name",
}


def sort_choices() -> dict[str, str]:
    """The sorts on offer: "trust" only once the quality app has registered it."""
    return {k: label for k, label in SORT_LABELS.items() if k in SORTS}


def sort_products(qs: QuerySet, key: str, *, searching: bool) -> QuerySet:
    if key == "relevance" and not searching:
        key = "name"
    return SORTS.get(key, SORTS["name"])(qs)


@dataclass
class SearchResult:
    filterset: DataProductFilter
    queryset: QuerySet  # visible, searched, filtered and sorted
    facets: list[dict]
    q: str
    sort: str


def search(*, user, data) -> SearchResult:
    """Everything the search page shows, in a fixed number of queries whatever the data size."""
    base = visible(user, DataProduct.objects.all())
    fs = DataProductFilter(data, queryset=base)
    fs.is_valid()  # invalid values are left out of cleaned_data, i.e. ignored
    cleaned = fs.form.cleaned_data
    q = (data.get("q") or "").strip()
    searched = search_products(base, q) if q else base
    sort = data.get("sort") or "relevance"  # without q, relevance means name
    qs = searched
    for name, value in cleaned.items():
        if name != "q":
            qs = fs.filters[name].filter(qs, value)
    qs = sort_products(selectors.for_lists(qs).prefetch_related("tags"), sort, searching=bool(q))
    return SearchResult(
        fs,
        qs,
        facet_counts(base=base, searched=searched if q else None, fs=fs, cleaned=cleaned),
        q,
        sort,
    )


def facet_counts(*, base: QuerySet, searched: QuerySet | None, fs, cleaned: dict) -> list[dict]:
    """Per facet, the count of each value among products matching every OTHER active filter:
    the counts narrow each other. One UNION query for all facets."""
    pool = base.filter(pk__in=searched.values("pk")) if searched is not None else base
    parts = []
    for facet in FACETS:
        qs = pool
        for name, value in cleaned.items():
            if name not in ("q", facet.key):
                qs = fs.filters[name].filter(qs, value)
        parts.append(
            qs.order_by()
            .filter(**{f"{facet.path}__isnull": False})
            .values(
                facet_key=Value(facet.key, output_field=CharField()),
                value=F(facet.path),
                label=F(facet.label_path or facet.path),
            )
            .annotate(n=Count("pk", distinct=True))
        )
    rows = list(parts[0].union(*parts[1:], all=True).order_by()) if parts else []
    out = []
    for facet in FACETS:
        chosen = cleaned.get(facet.key) or []
        if isinstance(chosen, str):
            chosen = [chosen]
        chosen = {getattr(c, "slug", c) for c in chosen}
        values = [
            {
                "value": r["value"],
                "label": facet.labels.get(r["value"], r["label"]),
                "count": r["n"],
                "checked": r["value"] in chosen,
            }
            for r in rows
            if r["facet_key"] == facet.key
        ]
        values.sort(key=lambda v: (-v["count"], str(v["label"]).lower()))
        out.append(
            {"key": facet.key, "label": facet.label, "values": values, "active": bool(chosen)}
        )
    return out


def popular(*, user, limit: int = 5) -> QuerySet:
    """Published products with the most approved consumers: shown when a search finds nothing."""
    return (
        visible(user, DataProduct.objects.filter(status=DataProduct.Status.PUBLISHED))
        .annotate(
            consumers=Count(
                "access_requests", filter=Q(access_requests__status=AccessRequest.Status.APPROVED)
            )
        )
        .select_related("domain", "owner_team", *selectors.LIST_RELATED)
        .prefetch_related("tags")
        .order_by("-consumers", "-published_at", "name")[:limit]
    )


# -- home page ---------------------------------------------------------------------------------

# Callables (user, domains) -> {domain_id: text} adding a line to each domain tile, e.g. the
# quality app's "80 % passing checks".
DOMAIN_TILE_STATS: list[Callable] = []


def most_trusted(*, user, limit: int = 5) -> QuerySet:
    """The most trusted published products; until a trust sort exists, the recently updated."""
    qs = visible(user, DataProduct.objects.filter(status=DataProduct.Status.PUBLISHED))
    qs = selectors.for_lists(qs)
    if "trust" in SORTS:
        return SORTS["trust"](qs)[:limit]
    return qs.order_by("-updated_at", "name")[:limit]


def home(*, user) -> dict:
    """What the home page shows, in a fixed number of queries."""
    from django.db.models import prefetch_related_objects

    from domains.models import Domain
    from meshportal.permissions import team_roles

    counts = selectors.domain_product_counts(user=user)
    domains = list(Domain.objects.filter(parent__isnull=True).select_related("owner_team"))
    # Attributes for the template; the model's stubs cannot know them.
    for d in domains:
        d.product_count = counts.get(d.pk, 0)  # type: ignore[attr-defined]
        d.stats = []  # type: ignore[attr-defined]
    for stat in DOMAIN_TILE_STATS:
        extra = stat(user, domains)
        for d in domains:
            if d.pk in extra:
                d.stats.append(extra[d.pk])  # type: ignore[attr-defined]
    products = visible(user, selectors.for_lists(DataProduct.objects.all()))
    recent = list(
        products.filter(status=DataProduct.Status.PUBLISHED).order_by(
            F("published_at").desc(nulls_last=True), "name"
        )[:6]
    )
    trusted = list(most_trusted(user=user))
    teams = list(team_roles(user))
    mine = (
        list(products.filter(owner_team_id__in=teams).order_by("-updated_at")[:8]) if teams else []
    )
    prefetch_related_objects(recent + trusted + mine, "tags")
    pending = list(selectors.my_requests(user=user).filter(status=AccessRequest.Status.PENDING)[:5])
    my_domains = [d for d in domains if d.owner_team_id in teams]
    return {
        "domains": domains,
        "recent": recent,
        "trusted": trusted,
        "mine": mine,
        "pending": pending,
        "my_domains": my_domains,
    }
