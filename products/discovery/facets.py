"""Reads behind the search and browse pages: facets with counts, sorts, popular products.

Other apps add facets (the quality state), sorts ("trust") and lines on the home page's domain
tiles through `products.extensions`. A facet's `key` must be a filter of `DataProductFilter` and
its `path` a value path on DataProduct to group by; without a "trust" sort, "Most trusted" falls
back to name.
"""

import functools
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Count,
    F,
    Field,
    Func,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Coalesce

from meshportal import beside as reads_beside
from meshportal import cache as shared_cache
from meshportal.beside import Pending, beside
from meshportal.permissions import (
    PUBLIC_PRODUCTS,
    DraftsStatement,
    ReadFirst,
    drafts_readable_by,
    is_platform,
    read_first,
    signed_in,
    visible,
    visible_drafts,
)
from meshportal.statements import Statement, scalar
from products import extensions, selectors
from products.discovery import search as searching
from products.discovery import semantic, shapes
from products.discovery.search import BUCKETS, PROBE, in_buckets, search_products
from products.filters import DataProductFilter
from products.models import AccessRequest, DataProduct, OutputPort


@dataclass(frozen=True)
class Facet:
    key: str  # the DataProductFilter filter it narrows with
    label: str
    path: str  # value path to group by
    label_path: str | None = None  # value path of a readable label, if not `labels`
    labels: dict = field(default_factory=dict)
    # True when `path` can reach a product more than once per value (a product with two ports
    # of one kind): only then is the count DISTINCT, which costs a sort per facet.
    distinct: bool = False


CORE_FACETS: list[Facet] = [
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
    Facet(
        "port_kind",
        "Port kind",
        "ports__kind",
        labels=dict(OutputPort.Kind.choices),
        distinct=True,
    ),
]


def _newest(qs: QuerySet) -> QuerySet:
    """Published first, newest first: the order of the index dataproduct_newest (migration
    products.0024, PostgreSQL), from which a page's ids are read; change both together."""
    return qs.order_by(F("published_at").desc(nulls_last=True), "-created_at", "name", "pk")


# Every sort ends with the id: rows alike in every other key would otherwise come in any order,
# and a page read by one statement and the next by another could show one of them twice and
# another never.
CORE_SORTS: dict[str, Callable[[QuerySet], QuerySet]] = {
    "relevance": lambda qs: qs,  # search_products already ranks; without q: by name
    "newest": _newest,
    "name": lambda qs: qs.order_by("name", "domain__name", "pk"),
}
SORT_LABELS = {
    "relevance": "Relevance",
    "trust": "Most trusted",
    "newest": "Newest",
    "name": "Name",
}


def all_facets() -> list[Facet]:
    return [*CORE_FACETS, *extensions.facets()]


def all_sorts() -> dict[str, Callable[[QuerySet], QuerySet]]:
    return {**CORE_SORTS, **extensions.sorts()}


def sort_choices() -> dict[str, str]:
    """The sorts on offer: "trust" only when an extension (governance) offers it."""
    sorts = all_sorts()
    return {k: label for k, label in SORT_LABELS.items() if k in sorts}


def sort_key(key: str, *, searching: bool) -> str:
    """The sort a list is given for `key`: relevance only with a query, name for anything
    unknown."""
    if key == "relevance" and not searching:
        return "name"
    return key if key in all_sorts() else "name"


def sort_products(qs: QuerySet, key: str, *, searching: bool) -> QuerySet:
    return all_sorts()[sort_key(key, searching=searching)](qs)


@dataclass
class SearchResult:
    filterset: DataProductFilter
    queryset: QuerySet  # visible, searched, filtered and sorted
    # (facets, total, approximate), maybe still being counted beside the request (beside.py)
    counted: Pending
    q: str
    sort: str
    # spelling corrections made while searching, for search.suggest (see search_products)
    spelling: dict = field(default_factory=dict)
    # About how many products a full-text search matched, from its probe (before any filter):
    # enough for the page's ids to choose how they are read while the facet pass counts.
    estimate: int | None = None
    # The filters' valid values the search applied ({} when the request asked for none: its
    # filterset is then not validated unless asked, e.g. for its errors)
    cleaned: dict = field(default_factory=dict)

    @property
    def facets(self) -> list[dict]:
        return self.counted.result()[0]

    @property
    def total(self) -> int | None:
        """How many products `queryset` holds, when the facet pass counted them on the way
        (PostgreSQL): the paginator takes it instead of counting the match a second time."""
        return self.counted.result()[1]

    @property
    def approximate(self) -> bool:
        """True when the counts and the total are estimates from a sample (see BUCKETS)."""
        return self.counted.result()[2]

    @property
    def readable(self) -> QuerySet:
        """Every product the reader may see, as the search read them (visible(), or the same
        rule with the reader's drafts read first: permissions.ReadFirst), before any words or
        filter: what "Did you mean" looks for spellings in, without planning visible()'s
        subqueries in its statement again."""
        return self.filterset.queryset

    @property
    def by_name(self) -> bool:
        """Whether the list is sorted by name (an index the page's rows can be read from)."""
        return sort_key(self.sort, searching=bool(self.q)) == "name"


def search(*, user, data) -> SearchResult:
    """Everything the search page shows, in a fixed number of queries whatever the data size.
    A search's facet pass runs beside the request where it can (meshportal.beside): the page's
    ids and rows are read meanwhile, and `facets`, `total` and `approximate` wait for it."""
    q = (data.get("q") or "").strip()
    filtering = _filtering(data)
    # A search's or a filtered list's statements are planned on every request (their values
    # decide their plans): the drafts the user may read go into them as ids, read first. An
    # unfiltered list's page is a prepared statement, planned once, with visible() inside.
    scope = read_first(user) if q or filtering else None
    everything = DataProduct.objects.all()
    base = visible(user, everything) if scope is None else scope.products(everything)
    # While the filters are read and the facet pass is built: a search's probe, or a filtered
    # list's count in the probe buckets (its sample's size), beside the request.
    probe = _probe_beside(base, q, scope)
    sized = _size_beside(base, scope) if filtering and not q and reads_beside.enabled() else None
    fs = DataProductFilter(data, queryset=base)
    cleaned: dict = {}  # no filter asked for: no form to validate (each request built one)
    if filtering:
        fs.is_valid()  # invalid values are left out of cleaned_data, i.e. ignored
        cleaned = fs.form.cleaned_data
    early = None  # a search's facet pass, sized by its probe and run right after it
    if probe is not None:
        # Over the words' match: kept only if the search turns out to be that match (any
        # found, no fusion).
        compiled = _compiled_pass(scope, q, fs, cleaned)
        sql, params = compiled or _sized_sql(searching.keyword_matches(base, q), fs, cleaned)
        early = probe.then_beside(partial(_rows_if_found, sql, params))
    listed = None  # a filtered list's counts, queued behind its sizing as soon as validated
    if sized is not None and _active(cleaned):
        compiled = _compiled_pass(scope, "", fs, cleaned)
        listed = _search_counts(base, None, fs, cleaned, None, sized, compiled)
    spelling: dict = {}
    sizes: dict = {}  # the matches' count in the probe buckets, when the search had it
    searched = search_products(base, q, spelling=spelling, sizes=sizes, probed=probe) if q else base
    sort = data.get("sort") or "relevance"  # without q, relevance means name
    qs = searched
    for name, value in cleaned.items():
        if name != "q":
            qs = fs.filters[name].filter(qs, value)
    qs = sort_products(selectors.for_lists(qs).prefetch_related("tags"), sort, searching=bool(q))
    probed = sizes.get("probe")
    shaped = (
        shapes.shape_of(fs, cleaned)
        if scope is not None and (probed is not None or not q)
        else None
    )
    key = sort_key(sort, searching=bool(q))
    if scope is not None and shaped is not None and q and key == "relevance":
        # The words' full-text match over the reader's products, filtered or not: its page's
        # ids from statements compiled once per filter shape.
        qs.query.page_ids = partial(searching.compiled_page_ids, scope, q, filters=shaped)  # type: ignore[attr-defined]
    elif q and key != "relevance":
        # A search sorted otherwise: its ORDER BY over its matches. A sort's own way to a page
        # (by trust: above a floor of scores, governance.quality.selectors.trust_page_ids) pays
        # off over every product the reader sees, but over a few matches it reads more than
        # sorting them (measured: 5.5 against 3.6 ms for two rare words).
        qs.query.page_ids = None  # type: ignore[attr-defined]
    elif scope is not None and shaped is not None and shaped[0]:  # a filtered list: the same
        qs.query.page_ids = partial(_listed_ids, scope, shaped, key)  # type: ignore[attr-defined]
    if early is not None and probed is not None:  # the words' match: counted after the probe
        counted = early.then(lambda found: _finished(*_scaled(found), cleaned))
    elif listed is not None:
        counted = listed
    elif q or _active(cleaned):
        if early is not None and early.beside:  # not the words' match: done with the helper
            early.result()
        counted = _search_counts(base, searched if q else None, fs, cleaned, probed)
    elif connection.vendor == "postgresql" and shared_cache.shared() and signed_in(user):
        # An unfiltered list: its counts mostly from the shared cache, the user's drafts beside
        counted = _unfiltered(fs, cleaned, user, run=beside)
    else:
        counted = Pending.ready(
            _counts(base=base, searched=None, fs=fs, cleaned=cleaned, user=user)
        )
    estimate = None if probed is None else probed * BUCKETS // PROBE
    return SearchResult(fs, qs, counted, q, sort, spelling, estimate, cleaned)


def facet_counts(*, base: QuerySet, searched: QuerySet | None, fs, cleaned: dict) -> list[dict]:
    """Per facet, the count of each value among products matching every OTHER active filter:
    the counts narrow each other. One query for all facets (and one to size the matches on
    PostgreSQL: past MESH_EXACT_COUNTS products the counts are estimates, see BUCKETS)."""
    return _counts(base=base, searched=searched, fs=fs, cleaned=cleaned)[0]


_TOTAL = "__total__"  # the facet key of the row counting the products passing every filter

# -- exact counts up to a size, estimates beyond (PostgreSQL) -------------------------------------
#
# Every product falls in one of BUCKETS sample buckets by a hash of its id (the expression of
# the index dataproduct_sample_bucket, migration 0017). A search or list holding more than about
# settings.MESH_EXACT_COUNTS products counts its facets and total over the first few buckets
# only, a sample of about that size read through that index, and scales the counts up: the
# facet pass then costs the same for 5,000 matches as for 50,000 (issue 17), and the page says
# "about". The hash spreads products over the buckets whatever their age, domain or team, so
# the sample is not biased towards any of them; the same products are always in it, so the
# estimates do not jump between two loads of a page.

_BUCKETS_READ = "__buckets__"  # the facet key of the row saying how many buckets were read


def _counts(
    *,
    base: QuerySet,
    searched: QuerySet | None,
    fs,
    cleaned: dict,
    probed: int | None = None,
    user=None,
) -> tuple[list[dict], int | None, bool]:
    """The facets (as facet_counts), on PostgreSQL the number of products passing every
    filter, counted in the same query (None on SQLite), and whether both are estimates.
    `probed`: the search's own count of `searched` in the probe buckets, if it made one.
    `user`: whose list `base` is; given, with a shared cache, an unfiltered list counts the
    products every signed-in user sees once for everyone (`_public_counts`) and only the user's
    drafts per request."""
    if connection.vendor != "postgresql":
        pool = base.filter(pk__in=searched.values("pk")) if searched is not None else base
        return _shape(_per_facet(pool, fs, cleaned), cleaned), None, False
    active = _active(cleaned)
    # Without a shared cache the parts would be counted on every load: one pass, as a search.
    shared = shared_cache.shared() and user is not None and signed_in(user)
    if searched is None and not active and shared:
        return _unfiltered(fs, cleaned, user).result()
    # `searched` is already the visible products that match: no second visibility test.
    pool = searched if searched is not None else base
    rows, approximate = _counted(pool, fs, cleaned, active, probed)
    return _finished(rows, approximate, cleaned)


def _unfiltered(
    fs, cleaned: dict, user, run: Callable[[Callable], Pending] = Pending.now
) -> Pending:
    """An unfiltered list's counts for a signed-in user (PostgreSQL, a shared cache): those of
    the products everyone sees from the cache, the user's drafts' counted on top by `run`
    (here and now, or `beside`: meanwhile the page's rows are read)."""
    public, public_approximate = _public_counts(fs, cleaned)
    if is_platform(user):  # every draft, sampled as any large pool is
        drafts = visible_drafts(user, DataProduct.objects.all())
        own = Pending.ready(_counted(drafts, fs, cleaned))
    else:  # a team's own drafts are few: counted exactly, the statement compiled once
        sql, params = _team_drafts_pass.sql(user=user.pk)
        own = run(partial(_facet_rows, sql, params)).then(lambda rows: (_scaled(rows)[0], False))
    return own.then(
        lambda counted: _finished(
            _added(public, counted[0]), public_approximate or counted[1], cleaned
        )
    )


def _finished(
    rows: list[dict], approximate: bool, cleaned: dict
) -> tuple[list[dict], int | None, bool]:
    """The facets, the total and whether both are estimates, from the counted rows."""
    for row in rows:
        row["n"] = _about(row["n"]) if approximate else round(row["n"])
    total = next((r["n"] for r in rows if r["facet_key"] == _TOTAL), 0)
    facets = _shape([r for r in rows if r["facet_key"] != _TOTAL], cleaned)
    return facets, total, approximate


def _search_counts(
    base: QuerySet,
    searched: QuerySet | None,
    fs,
    cleaned: dict,
    probed: int | None,
    sized: Pending | None = None,
    compiled: tuple[str, list] | None = None,
) -> Pending:
    """A search's or a filtered list's facets, total and whether they are estimates (as
    `_counts`), the facet statement run beside the request where it can (meshportal.beside).
    It is built here: in the helper thread, its Python would wait for this thread's to let go
    of the interpreter (the facet pass of "orders" began 5 ms after it was handed over).
    Without the probe's count (a filtered list, a typo's matches), sizing the sample is a small
    statement of its own, beside too (`sized`, when already sent), the facet pass right after
    it (`compiled`: that pass from its compiled statement, `_compiled_pass`)."""
    if connection.vendor != "postgresql":
        return Pending.ready(_counts(base=base, searched=searched, fs=fs, cleaned=cleaned))
    pool = searched if searched is not None else base
    if probed is not None:
        sql, params = _counted_sql(pool, fs, cleaned, _active(cleaned), probed)
        rows = beside(partial(_facet_rows, sql, params))
    else:
        sized = sized or _size_beside(pool)
        sql, params = compiled or _sized_sql(pool, fs, cleaned)
        rows = sized.then_beside(partial(_rows_sized, sql, params))
    return rows.then(lambda found: _finished(*_scaled(found), cleaned))


# A search over a member's products (their readable drafts' ids a parameter) or every product
# (platform staff), its words a parameter too: its probe and, without filters, its facet pass
# compiled once. Built per request they were 1.8 and 2.0 ms of a search's CPU on the bench
# machine.
def _scoped_probe(drafts: str | None, raw: str) -> tuple[str, list]:
    statement = searching.probe_sql(searching.in_scope(drafts), raw)
    if statement is None:  # only none() has no probe, and a scope's products never are
        raise EmptyResultSet
    return statement


_probe_of = {
    "member": Statement(_scoped_probe),
    "every": Statement(lambda raw: _scoped_probe(None, raw)),
}


def _compiled(statements: dict, scope: ReadFirst | None, q: str) -> tuple[str, list] | None:
    """The SQL and parameters of one of these statements for the scope and q's words; None
    without a scope (visible() itself: the ORM builds it)."""
    if scope is None:
        return None
    return statements[scope.kind].sql(raw=searching.prefix_query(q), **scope.parameters())


# A search's or a filtered list's facet pass (`_sized_sql`) over a scope's products, compiled
# once per shape: the scope's kind, whether words are searched, and each chosen filter with
# its number of values. The words, the readable drafts and the chosen values are parameters.
# Built per request, a filtered one was 1.0-1.7 ms of the request's CPU on the bench machine
# (facets only, q + status, q + tag).


@functools.lru_cache(maxsize=256)  # a statement per shape in use: a few dozen at most
def _shaped_pass(kind: str, words: bool, shape: tuple[tuple[str, int], ...]) -> Statement:
    def build(drafts: str | None = None, raw: str = "", **chosen) -> tuple[str, list]:
        pool = searching.in_scope(drafts)
        if words:
            pool = searching.matching(pool, raw)
        fs = DataProductFilter(queryset=pool)
        return _sized_sql(pool, fs, shapes.cleaned(fs, shape, chosen))

    return Statement(build)


def _compiled_pass(scope: ReadFirst | None, q: str, fs, cleaned: dict) -> tuple[str, list] | None:
    """`_sized_sql` of the scope's products matching q's words (if any) and filtered as
    `cleaned` says, from its compiled statement; None without a scope (visible() itself: the
    ORM builds it) or for filters that cannot be compiled."""
    if scope is None:
        return None
    shaped = shapes.shape_of(fs, cleaned)
    if shaped is None:
        return None
    shape, values = shaped
    words = bool(searching.terms(q))
    if words:
        values["raw"] = searching.prefix_query(q)
    return _shaped_pass(scope.kind, words, shape).sql(**values, **scope.parameters())


def _probe_beside(base: QuerySet, q: str, scope: ReadFirst | None = None) -> Pending | None:
    """The search's probe (products.discovery.search) of q's words, on the helper's connection
    (meshportal.beside), when the facet pass can start from its answer: the search is then the
    words' match alone (no semantic fusion). None where that does not apply: no words, reads
    beside off, off PostgreSQL."""
    if not q or not reads_beside.enabled() or semantic.may_fuse():
        return None
    statement = (
        _compiled(_probe_of, scope, q)
        if scope is not None and searching.terms(q)
        else searching.probe_statement(base, q)
    )
    if statement is None:
        return None
    return beside(partial(searching.run_probe, statement))


def _filtering(data) -> bool:
    """Whether the request asks for any filter (the search words aside)."""
    return any(data.get(name) for name in DataProductFilter.base_filters if name != "q")


def _size_beside(pool: QuerySet, scope: ReadFirst | None = None) -> Pending:
    """The pool's count in the PROBE buckets (its facet pass's sample size), on the helper's
    connection where reads beside apply (else here); 0 for a pool that can hold nothing.
    `scope`: the pool is that scope's products, whose sizing is compiled once."""
    try:
        if scope is not None:
            sql, params = _sizing[scope.kind].sql(**scope.parameters())
        else:
            sql, found = _in_probe_buckets(pool).query.sql_with_params()
            params = list(found)
    except EmptyResultSet:
        return Pending.ready(0)
    counting = f"SELECT count(*) FROM ({sql}) s"  # noqa: S608  # nosec B608
    return beside(partial(scalar, counting, params))


def _in_probe_buckets(pool: QuerySet) -> QuerySet:
    return in_buckets(pool, PROBE).order_by().values("pk")


# A filtered list's sizing, over a scope's products (the filters come after), compiled once.
_sizing = {
    "member": Statement(lambda drafts: _in_probe_buckets(searching.in_scope(drafts))),
    "every": Statement(lambda: _in_probe_buckets(searching.in_scope(None))),
}


def _listed_ids(
    scope: ReadFirst,
    shaped: tuple,
    sort: str,
    qs: QuerySet,
    bottom: int,
    top: int,
    total: int | None = None,
) -> list[int] | None:
    """IdsFirstPaginator's page_ids for a filtered list (no words) over a scope's products:
    rows bottom..top in the sort's order, from a statement compiled once per scope kind, filter
    shape, sort and page bounds, prepared (as the list's own statement is); None when `qs` was
    sorted otherwise since."""
    if tuple(qs.query.order_by) != _sort_order(sort):
        return None
    if top <= bottom:
        return []
    shape, values = shaped
    return _list_ids(scope.kind, shape, sort, bottom, top)(**values, **scope.parameters())


def _sort_order(sort: str) -> tuple:
    return tuple(sort_products(DataProduct.objects.all(), sort, searching=False).query.order_by)


@functools.lru_cache(maxsize=256)  # a statement per shape, sort and page bounds in use
def _list_ids(kind: str, shape: tuple, sort: str, bottom: int, top: int) -> Statement:
    def build(drafts: str | None = None, **chosen: str) -> QuerySet:
        pool = searching.in_scope(drafts)
        listed = shapes.filtered(pool, DataProductFilter(queryset=pool), shape, chosen)
        return sort_products(listed, sort, searching=False).values_list("pk", flat=True)[bottom:top]

    return Statement(build)


# A marker for the number of sample buckets a facet pass reads, in its parameters: the statement
# is built before that number is known (the probe runs meanwhile), which then takes its place.
# In the 32-bit range: Django turns an integer lookup outside its field's range into no SQL.
_READ_MARK = -2_000_000_063


def _sized_sql(pool: QuerySet, fs, cleaned: dict) -> tuple[str, list]:
    """The pool's facet pass with the total (as _counted_sql), its sample's size left to fill in
    (`_rows_sized`)."""
    return _over_matches_sql(pool, fs, cleaned, _active(cleaned), True, read=_READ_MARK)


def _rows_sized(sql: str, params: list, probed: int) -> list[dict]:
    """The facet rows of `_sized_sql`'s statement, sized by the pool's count in the PROBE
    buckets."""
    read = _buckets_for(probed, settings.MESH_EXACT_COUNTS)
    return _facet_rows(sql, [read if p == _READ_MARK else p for p in params])


def _rows_if_found(sql: str, params: list, answer: tuple[int, bool, object]) -> list[dict] | None:
    """`_rows_sized` after a search's probe (its count, whether anything matched, the vectors'
    stamp); None when nothing did: the search then looks for typos, another match to count."""
    probed, found, _ = answer
    return _rows_sized(sql, params, probed) if found else None


def _counted_sql(
    pool: QuerySet, fs, cleaned: dict, active: Sequence[str] = (), probed: int | None = None
) -> tuple[str, list]:
    read = _buckets_to_read(pool, settings.MESH_EXACT_COUNTS, probed)
    return _over_matches_sql(
        pool, fs, cleaned, list(active), True, read=None if read == BUCKETS else read
    )


def _counted(
    pool: QuerySet, fs, cleaned: dict, active: Sequence[str] = (), probed: int | None = None
) -> tuple[list[dict], bool]:
    """The pool's facet rows with the total, each count scaled up from its sample (a float),
    and whether they are estimates."""
    return _scaled(_facet_rows(*_counted_sql(pool, fs, cleaned, active, probed)))


# The unfiltered list's pass over a (non-platform) user's readable drafts: the same text for
# every such user, their id a parameter, counted exactly (no probe of the pool's size first).
_team_drafts_pass = Statement(
    lambda user: _over_matches_sql(
        drafts_readable_by(user, DataProduct.objects.all()), None, {}, [], True
    )
)


def _scaled(rows: list[dict]) -> tuple[list[dict], bool]:
    read = next((r["n"] for r in rows if r["facet_key"] == _BUCKETS_READ), BUCKETS)
    rows = [r for r in rows if r["facet_key"] != _BUCKETS_READ]
    for row in rows:
        row["n"] = row["n"] * BUCKETS / read
    return rows, read < BUCKETS


def _public_counts(fs, cleaned: dict) -> tuple[list[dict], bool]:
    """The unfiltered list's counts over the products every signed-in user sees (no drafts),
    the same for everyone: computed once and kept in the shared cache (meshportal.cache) until
    a product or a quality state changes; the biggest statement of the all-products page
    (the facet pass over its ~1,000-product sample, 7-15 ms at 10,000 products)."""
    limit = settings.MESH_EXACT_COUNTS

    def compute():
        return limit, _counted(DataProduct.objects.filter(PUBLIC_PRODUCTS), fs, cleaned)

    kept_limit, counted = shared_cache.public_get(shared_cache.LIST_FACETS, compute)
    if kept_limit != limit:  # counted under another threshold (a changed setting)
        counted = compute()[1]
    rows, approximate = counted
    return [dict(r) for r in rows], approximate  # copies: the caller rounds them


def _added(*parts: list[dict]) -> list[dict]:
    """The rows of several disjoint sets of products as one: counts of equal values added."""
    added: dict[tuple, dict] = {}
    for rows in parts:
        for row in rows:
            key = (row["facet_key"], row["value"], row["label"])
            if key in added:
                added[key]["n"] += row["n"]
            else:
                added[key] = dict(row)
    return list(added.values())


def _about(n: float) -> int:
    """An estimate to two significant digits (4,814 -> 4,800): no false precision."""
    return int(round(n, 2 - len(str(round(n))))) if n >= 100 else round(n)


def _buckets_to_read(pool: QuerySet, limit: int, probed: int | None = None) -> int:
    """How many sample buckets the facet pass reads: all of them (exact counts) when PROBE
    buckets suggest at most `limit` products in the pool; else enough for a sample of about
    `limit`. `probed`: the pool's count in the PROBE buckets when the search counted it
    already, else one small statement through the bucket index."""
    if probed is None:
        probed = in_buckets(pool, PROBE).order_by().count()
    return _buckets_for(probed, limit)


def _buckets_for(probed: int, limit: int) -> int:
    """The buckets to read for a pool that holds `probed` products in the PROBE buckets."""
    if probed * BUCKETS / PROBE <= limit:
        return BUCKETS
    return max(1, math.ceil(limit * PROBE / probed))


def _active(cleaned: dict) -> list[str]:
    """The filters that narrow anything (the search words aside)."""
    return [name for name, value in cleaned.items() if name != "q" and shapes.chosen(value)]


def _facet_part(qs: QuerySet, facet: Facet) -> QuerySet:
    return (
        qs.order_by()
        .filter(**{f"{facet.path}__isnull": False})
        .values(
            facet_key=Value(facet.key, output_field=CharField()),
            value=F(facet.path),
            label=F(facet.label_path or facet.path),
        )
        .annotate(n=Count("pk", distinct=facet.distinct))
    )


def _per_facet(pool: QuerySet, fs, cleaned: dict) -> list[dict]:
    """A UNION of one grouped count per facet, each repeating the match (SQLite: no
    MATERIALIZED CTEs, and its meshes are small)."""
    parts = []
    for facet in all_facets():
        qs = pool
        for name, value in cleaned.items():
            if name not in ("q", facet.key):
                qs = fs.filters[name].filter(qs, value)
        parts.append(_facet_part(qs, facet))
    return list(parts[0].union(*parts[1:], all=True).order_by()) if parts else []


def _many_valued(path: str) -> bool:
    """Whether a value path can give a product several values (it crosses a to-many relation)."""
    model: Any = DataProduct
    for part in path.split("__"):
        f = model._meta.get_field(part)
        if f.many_to_many or f.one_to_many:
            return True
        if not f.is_relation:
            return False
        model = f.related_model
    return False


def _relation(facet: Facet) -> tuple[Any, str, str, str]:
    """A many-valued facet's related model, the name by which it reaches back to the product,
    and the value and label paths on it (`tags__slug`, `tags__name`: Tag, ..., slug, name)."""
    first, _, rest = facet.path.partition("__")
    label_first, _, label_rest = (facet.label_path or facet.path).partition("__")
    rel: Any = DataProduct._meta.get_field(first)
    back = rel.field.name if rel.auto_created and not rel.concrete else rel.related_query_name()
    return rel.related_model, back, rest, label_rest if label_first == first else ""


def _many_part(facet: Facet, ids: RawSQL) -> QuerySet:
    """A many-valued facet's counts read from its own table (tags through their link table,
    port kinds from the ports), for the products in `ids`: no join back to the products."""
    model, back, rest, label_rest = _relation(facet)
    if not rest or not label_rest:
        # A path ending at the relation, or a label from elsewhere: from the products' side.
        inside = DataProduct.objects.filter(pk__in=ids)
        return _facet_part(inside, facet)
    return (
        model.objects.order_by()
        .filter(**{f"{back}__in": ids, f"{rest}__isnull": False})
        .values(
            facet_key=Value(facet.key, output_field=CharField()),
            value=F(rest),
            label=F(label_rest),
        )
        .annotate(n=Count(back, distinct=facet.distinct))
    )


# -- many-valued facets stored in the product's row (PostgreSQL) ---------------------------------
#
# DataProduct.facet_values holds {facet key: [distinct values]} for every many-valued facet whose
# value is a column of the related model (tags' slugs, ports' kinds). search.index_product and
# search.reindex write it with the search vector; a product never indexed (NULL), or indexed
# before a facet existed, is read from the related tables instead, so a count is never missing.


def _stored(facet: Facet) -> bool:
    """Whether the facet's values are kept in facet_values: one text column of the related
    model (the arrays come back as text, so a number-valued facet keeps its own query)."""
    from django.db.models import CharField, TextField

    if not _many_valued(facet.path):
        return False
    model, _, rest, _ = _relation(facet)
    if not rest or "__" in rest:
        return False
    return isinstance(model._meta.get_field(rest), CharField | TextField)


def _values_of(facet: Facet):
    """SQL for one product's distinct values of a stored facet, as a JSON array (OuterRef)."""
    from django.contrib.postgres.expressions import ArraySubquery
    from django.db.models import JSONField, OuterRef

    model, back, rest, _ = _relation(facet)
    values = (
        model.objects.order_by()
        .filter(**{back: OuterRef("pk"), f"{rest}__isnull": False})
        .values_list(rest, flat=True)
        .distinct()
    )
    return Func(ArraySubquery(values), function="to_jsonb", output_field=JSONField())


def stored_values():
    """The expression search.index_product writes to facet_values (PostgreSQL)."""
    from django.db.models.functions import JSONObject

    parts = {f.key: _values_of(f) for f in all_facets() if _stored(f)}
    return JSONObject(**parts) if parts else Value({}, output_field=DataProduct.facet_values.field)


def _stored_part(facet: Facet, column: str, keep: str) -> str:
    """SQL counting a stored facet's values over the matches: each product's array unnested
    (distinct per product when written, so COUNT(*) counts products), labels looked up for the
    values found only. The arrays are unnested in the select list: a lateral join ran the
    function once per row as a scan of its own, 1.6 against 0.9 ms for 1,000 products' tags."""
    model, _, rest, label_rest = _relation(facet)
    counted = (
        f"SELECT v.value, COUNT(*) AS n FROM (SELECT jsonb_array_elements_text(m.{column})"  # noqa: S608  # nosec B608
        f" AS value FROM _over_matches m WHERE {keep}) v GROUP BY v.value"
    )
    if not label_rest or label_rest == rest:
        return f"SELECT %s AS facet_key, c.value, c.value AS label, c.n FROM ({counted}) c"  # noqa: S608  # nosec B608
    table = connection.ops.quote_name(model._meta.db_table)
    value_col = connection.ops.quote_name(model._meta.get_field(rest).column)
    label_col = connection.ops.quote_name(model._meta.get_field(label_rest).column)
    label = f"(SELECT t.{label_col} FROM {table} t WHERE t.{value_col}::text = c.value LIMIT 1)"  # noqa: S608  # nosec B608
    # A value whose row is gone (a deleted tag not yet re-indexed away) is not offered.
    return (
        f"SELECT %s AS facet_key, c.value, {label} AS label, c.n FROM ({counted}) c"  # noqa: S608  # nosec B608
        f" WHERE EXISTS (SELECT 1 FROM {table} t WHERE t.{value_col}::text = c.value)"
    )


def _over_matches_sql(
    pool: QuerySet,
    fs,
    cleaned: dict,
    active: list[str],
    total: bool = False,
    *,
    read: int | None = None,
) -> tuple[str, list]:
    """PostgreSQL: the matching set (full-text match and visibility test) computed once, in a
    MATERIALIZED CTE `_over_matches` holding each product's id, the value and label of every
    single-valued facet (domain, team, status, ...) and, per active filter, whether the product
    passes it, and the stored values of the many-valued facets (tags, port kinds: see
    `_stored`). Every facet groups over the CTE alone (a many-valued one unnests its arrays);
    one whose values are not stored joins its table to the CTE's ids. Each keeps the rows that
    pass every active filter but its own. Before: the match and the visibility test ran once
    per facet (56-63 % of a broad search at 10,000 products). With `total`, one more row (facet key _TOTAL) counts the
    products passing every active filter: the page's count, without matching again.

    With `read`: the CTE keeps only the first `read` sample buckets (a sample of the pool, read
    through the bucket index; the caller chose how many from the pool's size, `_buckets_to_read`)
    and a row (facet key _BUCKETS_READ) says how many: the caller scales the counts up."""
    facets = all_facets()
    flags = {}
    for name in active:
        passing = fs.filters[name].filter(DataProduct.objects.all(), cleaned[name])
        flags[f"ok_{name}"] = Case(
            When(_passes(passing), then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        )
    single = {f.key: i for i, f in enumerate(facets) if not _many_valued(f.path)}
    stored = {f.key: i for i, f in enumerate(facets) if _stored(f)}
    keyed = {f.key: k for f in facets if f.key in single and (k := _forward_key(f))}
    fixed = pool.query.base_table in (None, DataProduct._meta.db_table)
    values: dict[str, Any] = {}
    for facet in facets:
        if facet.key in keyed:  # the key; its value and label read once per group found
            values[f"v{single[facet.key]}"] = F(keyed[facet.key].column)
        elif facet.key in single:
            i = single[facet.key]
            values[f"v{i}"] = _row_expression(
                facet, "value", partial(_single_value, facet.path), fixed
            )
            if facet.label_path and facet.label_path != facet.path:
                values[f"l{i}"] = _row_expression(
                    facet, "label", partial(_single_value, facet.label_path), fixed
                )
        elif facet.key in stored:
            values[f"s{stored[facet.key]}"] = _row_expression(
                facet,
                "stored",
                partial(_row_values, facet),
                fixed,
            )
    if read is not None:  # a literal in the SQL: the planner knows how few rows come
        pool = in_buckets(pool, read)
    matches = pool.order_by().annotate(**flags, **values).values("pk", *flags, *values)
    cte_sql, cte_params = matches.query.sql_with_params()
    columns = ", ".join(["id", *flags, *values])  # in the order values() selects them
    # Every identifier below is ours (facet positions and filter names), never user input.
    parts: list[str] = []
    params: list = [*cte_params]
    for facet in facets:
        keep = " AND ".join(f"m.ok_{name}" for name in active if name != facet.key) or "TRUE"
        if facet.key in keyed:
            k = keyed[facet.key]
            parts.append(
                f"SELECT %s AS facet_key, t.{k.value} AS value, t.{k.label} AS label, c.n"  # noqa: S608  # nosec B608
                f" FROM (SELECT m.v{single[facet.key]} AS k, COUNT(*) AS n FROM _over_matches m"
                f" WHERE {keep} GROUP BY m.v{single[facet.key]}) c"
                f" JOIN {k.table} t ON t.{k.target} = c.k WHERE t.{k.value} IS NOT NULL"
            )
            params.append(facet.key)
            continue
        if facet.key in single:
            i = single[facet.key]
            label = f"l{i}" if f"l{i}" in values else f"v{i}"  # no label path: the value
            parts.append(
                f"SELECT %s AS facet_key, m.v{i} AS value, m.{label} AS label, COUNT(*) AS n"  # noqa: S608  # nosec B608
                f" FROM _over_matches m WHERE {keep} AND m.v{i} IS NOT NULL"
                f" GROUP BY m.v{i}, m.{label}"
            )
            params.append(facet.key)
            continue
        if facet.key in stored:
            parts.append(_stored_part(facet, f"s{stored[facet.key]}", keep))
            params.append(facet.key)
            continue
        ids = RawSQL(f"SELECT m.id FROM _over_matches m WHERE {keep}", ())  # noqa: S608, S611  # nosec
        sql, part_params = _many_part(facet, ids).query.sql_with_params()
        parts.append(f"SELECT * FROM ({sql}) AS f{len(parts)}")  # noqa: S608  # nosec B608
        params.extend(part_params)
    if total:
        every = " AND ".join(f"m.ok_{name}" for name in active) or "TRUE"
        parts.append(f"SELECT %s, NULL, NULL, COUNT(*) FROM _over_matches m WHERE {every}")  # noqa: S608  # nosec B608
        params.append(_TOTAL)
    if read is not None:
        parts.append("SELECT %s, NULL, NULL, %s")
        params.extend([_BUCKETS_READ, read])
    union = " UNION ALL ".join(parts)
    return f"WITH _over_matches ({columns}) AS MATERIALIZED ({cte_sql}) {union}", params  # noqa: S608  # nosec B608


@dataclass(frozen=True)
class _Key:
    """A single-valued facet through a forward foreign key (domain__slug, labelled by
    domain__name): the key's column on the product and the related table's (quoted) name, the
    key's target column and the value and label columns."""

    column: str
    table: str
    target: str
    value: str
    label: str


def _forward_key(facet: Facet) -> _Key | None:
    """The facet's _Key when its value and label are columns of a row a foreign key of the
    product points at; else None. The facet pass then counts the products per key and reads the
    value and label of the groups it found (20 domains), not of a joined row per product."""
    first, _, rest = facet.path.partition("__")
    label_first, _, label_rest = (facet.label_path or facet.path).partition("__")
    if not rest or "__" in rest or label_first != first or not label_rest or "__" in label_rest:
        return None
    key: Any = DataProduct._meta.get_field(first)
    if not (key.many_to_one and key.concrete):
        return None
    model, quote = key.related_model, connection.ops.quote_name
    return _Key(
        key.column,
        quote(model._meta.db_table),
        quote(key.target_field.column),
        quote(model._meta.get_field(rest).column),
        quote(model._meta.get_field(label_rest).column),
    )


# (facet key, path, part) -> the SQL text and parameters of an expression over the product's row
# (None when it needs a join: built on every use)
_ROW_SQL: dict[tuple, tuple[str, tuple] | None] = {}


def _row_expression(facet: Facet, part: str, build: Callable[[], Any], fixed: bool = True):
    """`build()`, an expression over a product's own row (correlated subqueries on its id, its
    stored facet values), as SQL text compiled once per process: the facet pass is built for
    every search, and resolving and compiling these subqueries was most of its cost. The text
    names the products' table: `fixed` says it is the statement's base table, unaliased (else
    `build()` itself)."""
    if not fixed:
        return build()
    key = (facet.key, facet.path, facet.label_path, part)
    if key not in _ROW_SQL:
        query = DataProduct.objects.all().query
        expression = build().resolve_expression(query, allow_joins=True)
        if len(query.alias_map) > 1:  # it joins another table: not the row's own
            _ROW_SQL[key] = None
        else:
            sql, params = query.get_compiler(connection=connection).compile(expression)
            _ROW_SQL[key] = (sql, tuple(params))
    found = _ROW_SQL[key]
    if found is None:
        return build()
    return RawSQL(found[0], found[1], output_field=Field())  # noqa: S611  # nosec B611


def _row_values(facet: Facet):
    """A stored facet's values of the row; read from the related table when never stored."""
    return Coalesce(KeyTransform(facet.key, "facet_values"), _values_of(facet))


def _facet_rows(sql: str, params: list) -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = ["facet_key", "value", "label", "n"]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _single_value(path: str):
    """A single-valued facet's value for the CTE. Through a reverse one-to-one (the quality
    state: a row per product in a table as large as the products') as a subquery by the
    product's id: a join let the planner hash the whole table (5 ms at 10,000 products, for a
    sample of 1,000 matches). A forward foreign key to a value and label of the row it points
    at (domain, team) is counted by the key instead (`_forward_key`)."""
    from django.db.models import OuterRef, Subquery

    first, _, rest = path.partition("__")
    rel: Any = DataProduct._meta.get_field(first)
    if not (rel.one_to_one and not rel.concrete and rest):
        return F(path)
    rows = rel.related_model.objects.filter(**{rel.field.name: OuterRef("pk")})
    return Subquery(rows.values(rest)[:1])


def _passes(passing: QuerySet):
    """The condition a product passes a filter by, tested on its own row: the filter's own
    conditions (subqueries included, e.g. port kinds) where it reads no other table through a
    join (status, classification, port kind); else membership in the filtered ids (domain, team
    and tag filters join). The first spares the facet pass a scan of every product per active
    filter ("facets only" at 10,000 products: two of 6 ms)."""
    query = passing.query
    if len(query.alias_map) == 1 and query.where:
        return query.where
    return Q(pk__in=passing.order_by().values("pk"))


def _shape(rows: list[dict], cleaned: dict) -> list[dict]:
    """Each facet's values, the chosen ones first (a page shows the first few: a choice must stay
    in sight to be undone), then by count. A chosen value that no counted product has (none
    left, or none in an estimate's sample) is still listed, with 0."""
    out = []
    for facet in all_facets():
        chosen = cleaned.get(facet.key) or []
        if isinstance(chosen, str):
            chosen = [chosen]
        # slug -> what the filter chose (a model instance names itself)
        picked = {getattr(c, "slug", c): c for c in chosen}
        values = [
            {
                "value": r["value"],
                "label": facet.labels.get(r["value"], r["label"]),
                "count": r["n"],
                "checked": r["value"] in picked,
            }
            for r in rows
            if r["facet_key"] == facet.key
        ]
        counted = {v["value"] for v in values}
        values += [
            {"value": slug, "label": facet.labels.get(slug, str(c)), "count": 0, "checked": True}
            for slug, c in picked.items()
            if slug not in counted
        ]
        values.sort(key=lambda v: (not v["checked"], -v["count"], str(v["label"]).lower()))
        out.append(
            {"key": facet.key, "label": facet.label, "values": values, "active": bool(picked)}
        )
    return out


POPULAR_KEPT = 10  # how many popular products the shared cache keeps
_CONSUMERS = Count(
    "access_requests", filter=Q(access_requests__status=AccessRequest.Status.APPROVED)
)
_BY_CONSUMERS = ("-consumers", "-published_at", "name")


def _popular_rows(rows: QuerySet) -> list:
    """The POPULAR_KEPT published products with the most approved consumers, best first, as
    rows of `rows`: the ranking groups by the product's id alone (grouping every column of the
    joined rows took 120 ms at 10,000 products), then its few rows are read and grouped again."""
    top = (
        DataProduct.objects.filter(status=DataProduct.Status.PUBLISHED)
        .annotate(consumers=_CONSUMERS)
        .order_by(*_BY_CONSUMERS)
        .values("pk")[:POPULAR_KEPT]
    )
    return list(rows.filter(pk__in=top).annotate(consumers=_CONSUMERS).order_by(*_BY_CONSUMERS))


def popular(*, user, readable: QuerySet | None = None, limit: int = 5) -> list:
    """Published products with the most approved consumers: shown when a search finds nothing.
    Published products are public, so the ranking is the same for every signed-in user and is
    cached for everyone (meshportal.cache.POPULAR, forgotten when a product or an access request
    changes); the rows are read through the visibility rule: `readable`, the products the
    search read (SearchResult.readable), or visible(). Two queries, hit or miss."""
    if not signed_in(user):
        return []
    if readable is None:
        readable = visible(user, DataProduct.objects.all())
    rows = (
        readable.filter(status=DataProduct.Status.PUBLISHED)
        .select_related("domain", "owner_team", *extensions.list_related())
        .prefetch_related("tags")
    )
    computed: list = []

    def ranking() -> list[int]:
        computed.extend(_popular_rows(rows))
        return [p.pk for p in computed]

    ids = shared_cache.public_get(shared_cache.POPULAR, ranking)[:limit]
    if computed:
        return computed[:limit]
    found = {r.pk: r for r in selectors.list_rows(rows.filter(pk__in=ids))}
    return [found[pk] for pk in ids if pk in found]


# -- home page ---------------------------------------------------------------------------------


def most_trusted(*, user, limit: int = 5) -> QuerySet:
    """The most trusted published products; until a trust sort exists, the recently updated."""
    qs = visible(user, DataProduct.objects.filter(status=DataProduct.Status.PUBLISHED))
    qs = selectors.for_lists(qs)
    sorts = all_sorts()
    if "trust" in sorts:
        return sorts["trust"](qs)[:limit]
    return qs.order_by("-updated_at", "name")[:limit]


def _public_home() -> dict:
    """The home page's part that every signed-in user sees alike (published products only):
    products per domain among the non-drafts, the recently published and the most trusted ids.
    Cached for everyone (meshportal.cache), forgotten when a product or a trust score changes."""
    published = DataProduct.objects.filter(status=DataProduct.Status.PUBLISHED)
    counts = dict(
        DataProduct.objects.filter(PUBLIC_PRODUCTS)
        .order_by()
        .values("domain_id")
        .annotate(n=Count("pk"))
        .values_list("domain_id", "n")
    )
    recent = published.order_by(F("published_at").desc(nulls_last=True), "name")
    sorts = all_sorts()
    trusted = sorts["trust"](published) if "trust" in sorts else published.order_by("-updated_at")
    return {
        "counts": counts,
        "recent": list(recent.values_list("pk", flat=True)[:6]),
        "trusted": list(trusted.values_list("pk", flat=True)[:5]),
    }


_draft_domains = DraftsStatement(
    lambda drafts: drafts.order_by().values_list("domain_id", flat=True)
)


def home(*, user) -> dict:
    """What the home page shows, in a fixed number of queries: the public part from the shared
    cache, the user's own drafts, products and requests on top."""
    from domains.selectors import top_domains
    from meshportal.permissions import team_roles

    public = (
        shared_cache.public_get(shared_cache.HOME, _public_home)
        if signed_in(user)
        else {"counts": {}, "recent": [], "trusted": []}
    )
    domains = top_domains()
    # Three reads that need nothing from the rest of the page, one after the other on the
    # helper's connection (meshportal.beside) while this thread reads the user's products:
    # the drafts this user may see per domain (their teams'; every draft for the platform),
    # the tiles' lines (e.g. "80 % passing checks"), the user's pending requests.
    drafts = beside(partial(_draft_domains, user))
    tile_stats = drafts.then_beside(lambda _: extensions.domain_tile_stats(user, domains))
    pending = tile_stats.then_beside(lambda _: selectors.my_pending(user=user))
    teams = list(team_roles(user))
    # The user's teams' newest: their ids first, so that the sort reads the products alone
    # (joined first, it read all 10,000 quality states to keep 8).
    mine_ids = selectors.teams_newest(user=user, teams=teams)
    # Published products: every signed-in user sees them (the rule's PUBLIC_PRODUCTS); the
    # cached ids are read again through it, in case one has left since.
    rows = selectors.home_rows(public=public["recent"] + public["trusted"], mine=mine_ids)
    recent = [rows[pk] for pk in public["recent"] if pk in rows]
    trusted = [rows[pk] for pk in public["trusted"] if pk in rows]
    mine = [rows[pk] for pk in mine_ids if pk in rows]
    counts = Counter(public["counts"])
    counts.update(drafts.result())
    # Attributes for the template; the model's stubs cannot know them.
    for d in domains:
        d.product_count = counts.get(d.pk, 0)  # type: ignore[attr-defined]
        d.stats = []  # type: ignore[attr-defined]
    for extra in tile_stats.result():
        for d in domains:
            if d.pk in extra:
                d.stats.append(extra[d.pk])  # type: ignore[attr-defined]
    my_domains = [d for d in domains if d.owner_team_id in teams]
    return {
        "domains": domains,
        "recent": recent,
        "trusted": trusted,
        "mine": mine,
        "pending": pending.result(),
        "my_domains": my_domains,
    }
