"""Product search, one entry point for pages and API: `search_products(queryset, q)`.

PostgreSQL: a stored, weighted tsvector (`DataProduct.search_vector`, GIN-indexed) matched with
prefix queries (`word:*`, so results appear while the user types); when nothing matches, a
typo-tolerant pass ranks names by pg_trgm word similarity. SQLite: substring matching over the
same fields, with difflib correcting words that match nothing.

The document is built in one place, `document()`. Other apps add text through
`products.extensions` (`document_parts(product)` yields `(weight, text)` pairs, e.g. glossary
terms at weight "C") and call `index_product(product)` when their text changes.
"""

import contextlib
import difflib
import functools
import re
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from typing import cast

from django.contrib.postgres.search import (
    SearchHeadline,
    SearchQuery,
    SearchRank,
    SearchVector,
    SearchVectorExact,
    SearchVectorField,
    TrigramSimilarity,
    TrigramWordSimilarity,
)
from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.db.models import (
    BooleanField,
    Case,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    IntegerField,
    Prefetch,
    Q,
    QuerySet,
    Sum,
    TextField,
    Value,
    When,
    Window,
)
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import Concat, Least, Length, RowNumber
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from meshportal import cache as shared_cache
from meshportal.beside import Pending
from meshportal.permissions import ReadFirst
from meshportal.statements import Statement, fetch
from products import extensions
from products.discovery import semantic, shapes

CONFIG = "english"
# Sample buckets (PostgreSQL): every product falls in one of BUCKETS by a hash of its id, the
# expression of the index dataproduct_sample_bucket (migration products.0017). PROBE of them
# (1/16 of the products) tell whether a search matches anything and about how much; the facet
# counts read a few of them past a size (products.discovery.facets).
BUCKETS = 64
PROBE = 4
# Past this many matches a page's ids are read tier by tier (_page_ids), not by ranking them
# all: 4.6 against 23.6 ms for "orders" (4,636 matches at 10,000 products), about even at 250.
TIERS_PAST = 500
FUSE_DEPTH = 100  # keyword results ranked in the fusion with the semantic ones
TYPO_THRESHOLD = 0.3  # also pg_trgm.word_similarity_threshold in settings.DATABASES
WORD_THRESHOLD = 0.45  # "Did you mean": word similarity of a misspelt word to known names
# Private-use characters mark highlights inside ts_headline's output; the text is escaped
# first and only then are they turned into <mark>, so product text can never inject HTML.
_START, _STOP = "\ue000", "\ue001"
# A probe that read no vectors' stamp (run_probe): whoever needs it reads it.
UNREAD = object()


class SampleBucket(Func):
    """A product's sample bucket, 0-63, written exactly as the index has it, so the planner
    finds the index (a BitmapAnd with the full-text index in a search)."""

    template = "(hashint8(%(expressions)s) & 63)"
    output_field = IntegerField()


def in_buckets(pool: QuerySet, buckets: int) -> QuerySet:
    return pool.alias(_sample_bucket=SampleBucket("pk")).filter(_sample_bucket__lt=buckets)


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


def terms(q: str) -> list[str]:
    return re.findall(r"\w+", (q or "").lower())[:10]


# -- the document ----------------------------------------------------------------------------


def _core_parts(product) -> Iterable[tuple[str, str]]:
    yield "A", product.name
    yield "B", product.summary
    yield "B", " ".join(t.name for t in product.tags.all())
    yield "C", product.description
    for port in product.ports.all():
        yield "C", port.name
        yield "C", " ".join(f.name.replace("_", " ") + " " + f.name for f in port.fields.all())


def document(product) -> dict[str, str]:
    """{weight: text} of everything a search should find the product by."""
    out: dict[str, list[str]] = {"A": [], "B": [], "C": [], "D": []}
    for part in (_core_parts, extensions.document_parts):
        for weight, text in part(product):
            if text:
                out[weight].append(text)
    return {w: " ".join(texts) for w, texts in out.items() if texts}


def _for_document(products: QuerySet) -> list:
    """The products with what document() reads: the columns it uses and no more (a restore
    indexes 10,000 products with 509,224 fields; every field's description and types made the
    field rows several times wider). An extension's document_parts reading another column
    still gets it, one query per object.

    The fields are read as rows and made into instances here, each port's list handed to it as
    a prefetch would: Django's prefetch of 50,000 fields with their glossary terms (a related
    instance per field, each field's port set, a queryset per port) was most of a reindex's
    CPU: 2.3-2.5 → 1.6-1.7 s for 1,000 products of the 10,000-product mesh."""
    from products.models import OutputPort, SchemaField, Tag

    found = list(
        products.only("name", "summary", "description").prefetch_related(
            Prefetch("tags", queryset=Tag.objects.only("name")),
            Prefetch("ports", queryset=OutputPort.objects.only("product_id", "name")),
        )
    )
    ports = {port.pk: port for product in found for port in product.ports.all()}
    if not ports:
        return found
    db = products.db
    # Within a port, the fields' own order (Meta.ordering: port, ordinal, name).
    rows = (
        SchemaField.objects.using(db)
        .filter(port_id__in=list(ports))
        .order_by("port_id", "ordinal", "name")
        .values_list("pk", "port_id", "name", "glossary_term_id")
    )
    term_model = SchemaField._meta.get_field("glossary_term").related_model
    columns = ["id", "port_id", "name", "glossary_term_id"]
    fields: dict[int, list] = {pk: [] for pk in ports}
    term_ids = set()
    for row in rows:
        fields[row[1]].append(SchemaField.from_db(db, columns, row))
        if row[3] is not None:
            term_ids.add(row[3])
    terms = (
        term_model._default_manager.using(db).only("name", "synonyms").in_bulk(term_ids)
        if term_ids
        else {}
    )
    base = SchemaField.objects.using(db).all()
    for pk, port in ports.items():
        for f in fields[pk]:
            if f.glossary_term_id is not None:
                f.glossary_term = terms.get(f.glossary_term_id)
        # What prefetch_related("ports__fields") leaves: port.fields.all() answers from it.
        listed = base.all()
        listed._result_cache = fields[pk]
        listed._prefetch_done = True  # type: ignore[attr-defined]
        if not hasattr(port, "_prefetched_objects_cache"):
            port._prefetched_objects_cache = {}
        port._prefetched_objects_cache["fields"] = listed
    return found


# Inside deferred_indexing(): the ids of the products whose documents changed, indexed once
# when the outermost block ends.
_deferred: ContextVar[set[int] | None] = ContextVar("search_deferred", default=None)


@contextlib.contextmanager
def deferred_indexing() -> Iterator[None]:
    """Bulk work (a backup restore, an import, seeding): every product whose document changes
    inside the block is re-indexed once, in batches, when the block ends without an error,
    instead of after each write (a product with 50 fields was indexed 50 times). Nested blocks
    join the outermost one."""
    if _deferred.get() is not None:
        yield
        return
    pending: set[int] = set()
    token = _deferred.set(pending)
    try:
        yield
    finally:
        _deferred.reset(token)
    if pending:
        from products.models import DataProduct

        semantic.schedule_many(pending)  # one embedding task per batch, not one per product
        if _is_postgres():
            reindex(DataProduct.objects.filter(pk__in=pending))


def index_product(product) -> None:
    """Rebuild the product's stored search vector (a no-op on SQLite, which searches live), and
    schedule its meaning vector (products.discovery.semantic, debounced, in a task)."""
    if product is None or product.pk is None:
        return
    pending = _deferred.get()
    if pending is not None:
        pending.add(product.pk)
        return
    semantic.schedule(product.pk)
    if not _is_postgres():
        return
    from products.discovery.facets import stored_values  # facets imports this module
    from products.models import DataProduct

    # Read afresh: the caller's instance may carry prefetched ports or tags from before the write.
    found = _for_document(DataProduct.objects.filter(pk=product.pk))
    if not found:  # deleted meanwhile: nothing to index
        return
    product = found[0]
    doc = document(product)
    vector: SearchVector | CombinedExpression | None = None
    for weight, text in doc.items():
        part = SearchVector(Value(text), weight=weight, config=CONFIG)
        vector = part if vector is None else vector + part
    DataProduct.objects.filter(pk=product.pk).update(
        search_vector=vector, facet_values=stored_values()
    )
    # Its tags or port kinds may have changed: the product list's counts kept for everyone.
    shared_cache.forget_public(shared_cache.LIST_FACETS)


def tag_changed(sender, instance, created: bool = False, **kwargs) -> None:
    """A tag renamed (the admin): the products carrying it are indexed again, their search text
    holding its name and their stored facet values its slug. A signal receiver (apps.py)."""
    if created or not _is_postgres():
        return
    from products.models import DataProduct

    pending = _deferred.get()
    tagged = DataProduct.objects.filter(tags=instance)
    if pending is not None:
        pending.update(tagged.values_list("pk", flat=True))
        return
    reindex(tagged)


# One product's vector from its document's weighted parts, as index_product builds it, and its
# stored facet values (facets.stored_values) in the same write: one new version of each row,
# where a second UPDATE of the batch wrote every row twice.
_WEIGHTED = " || ".join(f"setweight(to_tsvector(%s::regconfig, %s), '{w}')" for w in "ABCD")


def _facet_values_of(pk: int) -> QuerySet:
    from products.discovery.facets import stored_values  # facets imports this module
    from products.models import DataProduct

    return DataProduct.objects.filter(pk=pk).order_by().values(fv=stored_values())


_facet_values = Statement(_facet_values_of)


def _update_statement(documents: list[dict]) -> tuple[str, list[list]]:
    """reindex's UPDATE and each product's parameters ({"id": …, weight: text} each)."""
    values_sql, rows = "", []
    for doc in documents:
        values_sql, values_params = _facet_values.sql(pk=doc["id"])  # the same text for all
        weighted = [x for w in "ABCD" for x in (CONFIG, doc.get(w, ""))]
        rows.append([*weighted, *values_params, doc["id"]])
    sql = (
        f"UPDATE products_dataproduct SET search_vector = {_WEIGHTED},"  # noqa: S608  # nosec B608
        f" facet_values = ({values_sql}) WHERE id = %s"
    )
    return sql, rows


def reindex(products: QuerySet, *, batch_size: int = 500) -> int:
    """Rebuild the stored vectors and facet values of many products: documents built in
    batches (a few queries each), written with one pipelined statement per product."""
    if not _is_postgres():
        return 0
    from products.models import DataProduct

    ids = list(products.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(ids), batch_size):
        batch = DataProduct.objects.filter(pk__in=ids[start : start + batch_size])
        sql, rows = _update_statement([{"id": p.pk, **document(p)} for p in _for_document(batch)])
        if rows:
            with connection.cursor() as cursor:
                cursor.executemany(sql, rows)
    if ids:
        shared_cache.forget_public(shared_cache.LIST_FACETS)
    return len(ids)


# -- searching -------------------------------------------------------------------------------


def search_products(
    queryset: QuerySet,
    q: str,
    *,
    spelling: dict | None = None,
    sizes: dict | None = None,
    probed: Pending | None = None,
) -> QuerySet:
    """The products of `queryset` matching `q`, annotated with `search_rank` (higher is better)
    and, on PostgreSQL, `search_headline`; ordered best first. `spelling`: a dict that keeps a
    spelling correction made on the way, so that "Did you mean …?" (suggest) reuses it.
    `sizes`: a dict that gets, under "probe", how many of the returned products fall in the
    first PROBE sample buckets, when that was counted on the way (a full-text search on
    PostgreSQL, without the semantic fusion): the facet counts' size estimate (facets.py).
    `probed`: the answer of `probe_statement(queryset, q)` run by the caller (beside the
    request: meshportal.beside), instead of running it here.

    With semantic search on (products.discovery.semantic), the keyword ranking and the products
    closest in meaning are fused by reciprocal rank fusion; `queryset` still decides what may
    be shown, so a product the user may not see never surfaces."""
    words = terms(q)
    if not words:
        return queryset
    probe: dict = {}
    if _is_postgres():
        match = _match_postgres(queryset, words, probe, probed)
    else:
        match = _match_sqlite(queryset, words, {} if spelling is None else spelling)
    keyword = match.ranked(queryset.filter(match.where))
    meaning, by_meaning_only = (
        _meaning(queryset, match, " ".join(words), probe.pop("stamp", UNREAD))
        if semantic.enabled()
        else ([], set())
    )
    if not meaning:
        if sizes is not None:  # the probe counted exactly these products
            sizes.update(probe)
        return keyword
    return _fused(queryset, match, meaning, by_meaning_only)


def _meaning(
    queryset: QuerySet, match: "_Match", phrase: str, stamp: object = UNREAD
) -> tuple[list[int], set[int]]:
    """The products of `queryset` closest in meaning to `phrase`, best first, within
    semantic.RELATIVE of the best of them, and which of them the words do not find. One small
    query (which of the nearest ids the queryset holds, by primary key, and whether each
    matches the words) that also brings the vectors' stamp; when they changed since this
    process loaded them, again. With nothing near, the stamp the search's probe read
    (`stamp`), or in a query of its own. With pgvector the nearest ids come from the
    database, current, so no stamp."""
    near = semantic.nearest(phrase)
    if not semantic.in_memory():  # pgvector: the database's answer is current
        rows = _visible_rows(queryset, match, near, stamp=False)
    else:
        rows = _visible_rows(queryset, match, near)
        if rows:
            stamp = rows[0][1]
        elif stamp is UNREAD:
            stamp = semantic.current_stamp()
        if semantic.refresh(stamp):
            near = semantic.nearest(phrase)
            rows = _visible_rows(queryset, match, near)
    seen = {row[0] for row in rows}
    meaning = semantic.closest([(pk, score) for pk, score in near if pk in seen])
    return meaning, {row[0] for row in rows if not row[-1] and row[0] in meaning}


def _visible_rows(
    queryset: QuerySet, match: "_Match", near: list[tuple[int, float]], *, stamp: bool = True
) -> list:
    """(pk, [the vectors' stamp,] matched by the words) of the `near` ids the queryset holds."""
    if not near:
        return []
    columns = ["pk", semantic.stamp_column()] if stamp else ["pk"]
    return list(
        queryset.filter(pk__in=[pk for pk, _ in near])
        .order_by()
        .annotate(fusion_hit=ExpressionWrapper(match.where, output_field=BooleanField()))
        .values_list(*columns, "fusion_hit")
    )


def _fused(
    queryset: QuerySet, match: "_Match", meaning: list[int], by_meaning_only: set[int]
) -> QuerySet:
    """The keyword hits and `meaning` (visible products, best first), ranked by reciprocal
    rank fusion in the page's own query: a window function numbers the keyword hits by their
    rank; the first FUSE_DEPTH of them and the products of `meaning` score 1/(k + rank) in
    each ranking. Every other keyword hit stays, after them, by name length and name.

    Before, a first query ranked every keyword hit to fuse them in Python and the page's query
    came second: two passes over every match (most of issue 18's added cost)."""
    k = semantic.RRF_K
    by_meaning = _ByPk(
        {pk: 1.0 / (k + rank) for rank, pk in enumerate(meaning, start=1)}, FloatField(), 0.0
    )
    # Every row the words did not find is one of `meaning`, which the look at them told: a
    # keyword hit is known by its primary key alone. One numbering, the keyword hits first:
    # their rank is their row number while it is at most the number of hits. Nothing above the
    # sort then reads the search vector, so the rows sorted for the window stay narrow (a
    # `search_vector @@ …` there carried every vector through the sort: 4.7 MB spilled to disk
    # for "orders" at 10,000 products).
    hit = _ByPk(dict.fromkeys(by_meaning_only, 0), IntegerField(), 1)
    fused = queryset.filter(match.where | Q(pk__in=meaning)).annotate(
        fusion_keyword=Window(
            RowNumber(),
            order_by=[hit.desc(), match.rank.desc(), Length("name").asc(), F("name").asc()],
        ),
        fusion_hits=Window(Sum(hit)),
    )
    fused = fused.annotate(
        search_rank=Case(
            When(
                fusion_keyword__lte=Least(Value(FUSE_DEPTH), F("fusion_hits")),
                then=Value(1.0) / (Value(float(k)) + F("fusion_keyword")),
            ),
            default=Value(0.0),
            output_field=FloatField(),
        )
        + by_meaning
    )
    if match.headline is not None:
        fused = fused.annotate(search_headline=match.headline)
    return fused.order_by("-search_rank", Length("name"), "name")


class _ByPk(Func):
    """`CASE pk WHEN 1 THEN 0.5 WHEN 2 THEN … ELSE default END`: a value per primary key, in
    one expression. The same as a Case of one When(pk=…) per key, which Django resolves and
    compiles a condition at a time: 3 ms of the hybrid search's CPU for 20 keys used thrice."""

    def __init__(self, values: dict[int, object], output_field, default=None) -> None:
        super().__init__(F("pk"), output_field=output_field)
        self.values, self.default = values, default

    def as_sql(self, compiler, connection, **extra):
        pk_sql, pk_params = compiler.compile(self.source_expressions[0])
        kind = self.output_field.cast_db_type(connection)
        if not self.values:  # a CASE needs a WHEN
            return f"CAST(%s AS {kind})", [self.default]
        whens = " ".join(f"WHEN %s THEN CAST(%s AS {kind})" for _ in self.values)
        params = [*pk_params, *(x for pair in self.values.items() for x in pair), self.default]
        return f"CASE {pk_sql} {whens} ELSE CAST(%s AS {kind}) END", params


class _Match:
    """A keyword search: which products match (`where`), how well (`rank`), on PostgreSQL the
    query the headline marks (`headline_query`, as to_tsquery reads it: `word:* & …`) and its
    expression, and for a full-text search `head`: the matches ranked first (the others have
    rank 0 and follow by name length and name)."""

    def __init__(
        self,
        where: Q,
        rank,
        headline_query: str | None = None,
        head: Q | None = None,
        head_implies_match: bool = False,
    ) -> None:
        self.where, self.rank, self.head = where, rank, head
        self.headline_query = headline_query
        self.headline = None if headline_query is None else headline(headline_query)
        # Whether a product the head finds matches the whole query (one word: its head is
        # part of its vector): the head's tier then needs no test of the whole vector.
        self.head_implies_match = head_implies_match

    def ranked(self, hits: QuerySet) -> QuerySet:
        hits = hits.annotate(search_rank=self.rank)
        if self.headline is not None:
            hits = hits.annotate(search_headline=self.headline)
            # The query's text: a page's rows are read by id (selectors.list_page_rows).
            hits.query.headline_query = self.headline_query  # type: ignore[attr-defined]
        hits = hits.order_by(*_RANKED)
        if self.head is not None:
            # Kept on the query, which every clone copies (a facet filtered after the search
            # keeps it): IdsFirstPaginator asks it for a page's ids (page_ids below).
            hits.query.page_ids = functools.partial(  # type: ignore[attr-defined]
                _page_ids, self.head, implied=self.head_implies_match
            )
        return hits


# The id last: equal ranks and names (generated meshes have many) keep one order, whichever
# plan reads them, so that the tiers and the ORDER BY give the same pages.
_RANKED = ("-search_rank", Length("name"), "name", "pk")


class _HeadVector(Func):
    """The head of a product's search vector: its name, summary and tags (weights A and B),
    as the GIN index dataproduct_search_head (migration products.0018) has it."""

    template = "ts_filter(%(expressions)s, '{a,b}')"
    output_field = SearchVectorField()


def _texts(words: list[str]) -> dict:
    """The words as the values a full-text search's statements take (`_full_match`): each a
    parameter, so that the statements' text is the same for any words of the same shape."""
    return {
        "raw": _full_text(words)[0],  # all the words, as prefixes
        "head": " | ".join(f"{w}:*" for w in words),  # any of them
        "named": " | ".join(f"{w}:*A" for w in words),  # any of them in the name
        "phrase": " ".join(words),
    }


def _full_match(raw: str, head: str, named: str, phrase: str, *, implied: bool) -> _Match:
    """A full-text search's match and ranking, from its values (`_texts`). `implied`: one word,
    whose presence in the head implies the whole match."""
    query = _raw_query(raw)
    # Closeness of the whole query to the name breaks ties between documents whose name holds
    # one of the words (weight A in the vector: a cheap test). Trigram similarity for every
    # match cost more than the rest of the ranking: 30 of 47 ms for "orders" at 10,000
    # products (5,443 matches, 296 with the word in their name).
    closeness = Case(
        When(Q(search_vector=_raw_query(named)), then=0.3 * TrigramSimilarity("name", phrase)),
        default=Value(0.0),
        output_field=FloatField(),
    )
    # Two tiers: the matches with a word in their head (name, summary, tags) ranked, then the
    # others (description, ports, fields) by name length and name. The head has an index of
    # its own and the tail's order is an index, so a page reads a page's worth of each
    # (page_ids) instead of every match: "orders" matches 5,443 of 10,000 products, 296 of
    # them in the head. Whether any of the words is in the head: `ts_filter(...) @@`.
    in_head = Q(SearchVectorExact(_HeadVector(F("search_vector")), _raw_query(head)))
    rank = Case(
        When(in_head, then=SearchRank(F("search_vector"), query) + closeness),
        default=Value(0.0),
        output_field=FloatField(),
    )
    return _Match(
        Q(_FullMatch(F("search_vector"), query)),
        rank,
        raw,
        head=in_head,
        head_implies_match=implied,
    )


class _FullMatch(SearchVectorExact):
    """`search_vector @@ query`: the match of the whole vector, a class of its own so that the
    head's tier can find it in a query's conditions (`_without_full_match`)."""


def _without_full_match(qs: QuerySet) -> QuerySet:
    """`qs` without its test of the whole vector, where that test is one of the conditions its
    rows must all pass (else `qs` as it is). For the head's tier of a one-word search, whose
    head test implies it: with both, the planner read the whole vector's index as well as the
    head's and intersected them, 5,443 entries to keep 296 ("orders" at 10,000 products,
    2.4 of 4.2 ms)."""
    where = qs.query.where
    if where.connector != "AND" or where.negated:
        return qs
    kept = [child for child in where.children if not isinstance(child, _FullMatch)]
    if len(kept) == len(where.children):
        return qs
    qs = qs.all()
    qs.query.where.children = kept
    return qs


def _page_ids(
    head: Q, hits: QuerySet, bottom: int, top: int, total: int | None, *, implied: bool = False
) -> list[int] | None:
    """The ids of rows bottom..top of `hits` (a full-text search ranked by _Match.ranked, then
    maybe filtered further) in the order its ORDER BY gives, reading a page's worth of rows
    per tier: the head's matches ranked (through their own index), then, if the page goes
    past them, the others by (length(name), name, id) through the index of that order
    (dataproduct_name_length). None when the order was changed since (a sort by name): the
    paginator then reads the ids from the query's own order; None too for TIERS_PAST matches
    or fewer (`total`, exact or estimated; None: not known yet), which one statement ranks
    faster than two."""
    if (total is not None and total <= TIERS_PAST) or tuple(hits.query.order_by) != _RANKED:
        return None
    in_head, rest = _tiers(hits, head, implied)
    return _tiered(lambda n: list(in_head[:n]), lambda lo, hi: list(rest[lo:hi]), bottom, top)


def _tiers(hits: QuerySet, head: Q, implied: bool) -> tuple[QuerySet, QuerySet]:
    """The ids of the head's matches ranked, and of the others in their order."""
    ids = hits.order_by()  # the tiers give their own order
    in_head = (_without_full_match(ids) if implied else ids).filter(head)
    return (
        in_head.order_by(*_RANKED).values_list("pk", flat=True),
        ids.filter(~head).order_by(*_RANKED[1:]).values_list("pk", flat=True),
    )


def _tiered(read_head: Callable, read_rest: Callable, bottom: int, top: int) -> list[int]:
    """Rows bottom..top of the head's tier then the rest: `read_head(n)` gives the head's
    first n, `read_rest(lo, hi)` the rest's rows lo..hi."""
    first = read_head(top)
    if len(first) >= top:
        return first[bottom:top]
    return first[bottom:] + read_rest(max(0, bottom - len(first)), top - len(first))


def compiled_page_ids(
    scope: ReadFirst,
    q: str,
    hits: QuerySet,
    bottom: int,
    top: int,
    total: int | None,
    *,
    filters: tuple[tuple[tuple[str, int], ...], dict] = ((), {}),
) -> list[int] | None:
    """_page_ids (and the ids the paginator would read at TIERS_PAST matches or fewer) of a
    full-text search of q over a ReadFirst scope's products, narrowed by `filters` (a shape and
    its values: shapes.shape_of) and not sorted since: from statements compiled once per scope
    kind, page, one word or more and filter shape, the words, the readable drafts and the
    chosen values their parameters. Built per request, they were 2.8-3.5 ms of a search's CPU
    on the bench machine. None when `hits` was sorted otherwise."""
    if tuple(hits.query.order_by) != _RANKED:
        return None
    if top <= bottom:  # no rows (a total of none: the filters leave nothing)
        return []
    words = terms(q)
    chosen, picked = filters
    values = {**_texts(words), **picked, **scope.parameters()}
    shape = (scope.kind, len(words) == 1, chosen)
    if total is not None and total <= TIERS_PAST:
        return _ids(_ranked_ids(shape, bottom, top), values)
    return _tiered(
        lambda n: _ids(_tier_ids(shape, "head", 0, n), values),
        # the rest's order is not the ranking: only the words' match and the head's are in it
        lambda lo, hi: _ids(
            _tier_ids(shape, "rest", lo, hi),
            {k: v for k, v in values.items() if k not in ("named", "phrase")},
        ),
        bottom,
        top,
    )


def _ids(statement: Statement, values: dict) -> list[int]:
    # Run as text, never prepared: how many products the words match decides the plan.
    return [pk for (pk,) in fetch(*statement.sql(**values))]


def _scoped_hits(
    drafts: str | None,
    implied: bool,
    filters: tuple[tuple[str, int], ...],
    raw: str,
    head: str,
    named: str = "",
    phrase: str = "",
    **chosen: str,
) -> tuple[QuerySet, "_Match"]:
    """A full-text search's matches over a scope's products, ranked (as search_products), then
    narrowed by the filters of that shape, their values `chosen` (as facets.search does)."""
    from products.filters import DataProductFilter

    match = _full_match(raw, head, named, phrase, implied=implied)
    hits = match.ranked(in_scope(drafts).filter(match.where))
    if filters:
        hits = shapes.filtered(hits, DataProductFilter(queryset=hits), filters, chosen)
    return hits, match


def in_scope(drafts: str | None) -> QuerySet:
    """The products of a ReadFirst scope (its drafts' ids, None for every product), for a
    statement compiled once over them."""
    from products.models import DataProduct

    return ReadFirst(drafts).products(DataProduct.objects.all())


_Shape = tuple[str, bool, tuple[tuple[str, int], ...]]  # scope kind, one word, filters


def _scoped(shape: _Shape, build: Callable[[QuerySet, "_Match"], QuerySet]):
    """A statement of `build(hits, match)` for searches of this shape."""
    kind, implied, filters = shape
    if kind == "every":
        return Statement(lambda **texts: build(*_scoped_hits(None, implied, filters, **texts)))
    return Statement(
        lambda drafts, **texts: build(*_scoped_hits(drafts, implied, filters, **texts))
    )


@functools.lru_cache(maxsize=256)  # a statement per page bounds (their LIMIT is in the text)
def _ranked_ids(shape: _Shape, bottom: int, top: int) -> Statement:
    return _scoped(shape, lambda hits, _: hits.values_list("pk", flat=True)[bottom:top])


@functools.lru_cache(maxsize=512)
def _tier_ids(shape: _Shape, tier: str, bottom: int, top: int) -> Statement:
    index = 0 if tier == "head" else 1
    return _scoped(
        # a full-text match always has its head (_full_match)
        shape,
        lambda hits, m: _tiers(hits, cast(Q, m.head), m.head_implies_match)[index][bottom:top],
    )


def headline(query: str) -> SearchHeadline:
    """The snippet of a product's summary and description with the words of `query` (a raw
    tsquery, `word:* & …`) marked, as a search's rows show it."""
    return SearchHeadline(
        Concat("summary", Value(" — "), "description", output_field=TextField()),
        SearchQuery(query, search_type="raw", config=CONFIG),
        config=CONFIG,
        start_sel=_START,
        stop_sel=_STOP,
        max_words=30,
        min_words=12,
        highlight_all=False,
    )


def _full_text(words: list[str]) -> tuple[str, SearchQuery]:
    """The words as a prefix query (`word:* & …`, as to_tsquery reads it) and as a SearchQuery."""
    raw = " & ".join(f"{w}:*" for w in words)
    return raw, _raw_query(raw)


def _raw_query(raw: str) -> SearchQuery:
    return SearchQuery(raw, search_type="raw", config=CONFIG)


def prefix_query(q: str) -> str:
    """q's words as the prefix query a full-text search matches (`word:* & …`): the one value a
    statement of keyword_matches() or probe_sql() takes for them."""
    return _full_text(terms(q))[0]


def keyword_matches(queryset: QuerySet, q: str) -> QuerySet:
    """The products of `queryset` whose vector matches all of q's words (PostgreSQL): the set
    search_products ranks when the probe finds any, for a caller that starts counting it
    before knowing (facets.search, beside the request)."""
    return matching(queryset, prefix_query(q))


def matching(queryset: QuerySet, raw: str) -> QuerySet:
    """keyword_matches() of a prefix query (prefix_query)."""
    return queryset.filter(Q(_FullMatch(F("search_vector"), _raw_query(raw))))


def probe_statement(queryset: QuerySet, q: str) -> tuple[str, list] | None:
    """The probe of q's words over `queryset` (see _any_match) as SQL and parameters, for a
    caller that runs it itself (`run_probe`, beside the request) and hands the answer to
    search_products; None without words, off PostgreSQL, or for a queryset that can hold
    nothing (none(): not signed in)."""
    if not terms(q) or not _is_postgres():
        return None
    return probe_sql(queryset, prefix_query(q))


def probe_sql(queryset: QuerySet, raw: str) -> tuple[str, list] | None:
    """probe_statement() of a prefix query (prefix_query)."""
    return _probe_sql(queryset.filter(search_vector=_raw_query(raw)))


def _probe_sql(hits: QuerySet) -> tuple[str, list] | None:
    try:
        sample_sql, sample_params = (
            in_buckets(hits, PROBE).order_by().values("pk").query.sql_with_params()
        )
        all_sql, all_params = hits.order_by().values("pk").query.sql_with_params()
    except EmptyResultSet:  # a queryset that can hold nothing (none(): not signed in)
        return None
    # The vectors' stamp comes along: a search with no vectors to fuse asks for it next
    # (_meaning), a round trip of its own.
    stamp_sql, stamp_params = semantic.stamp_statement()
    # Each part compiled by the ORM, its parameters bound: no user text in the SQL.
    return (
        "SELECT p.n, CASE WHEN p.n > 0 THEN true"  # noqa: S608  # nosec B608
        f" ELSE (SELECT count(*) > 0 FROM ({all_sql}) a) END, ({stamp_sql})"
        f" FROM (SELECT count(*) AS n FROM ({sample_sql}) s) p",
        [*all_params, *stamp_params, *sample_params],
    )


def run_probe(statement: tuple[str, list] | None) -> tuple[int, bool, object]:
    """A probe's answer: the matches' count in the PROBE buckets, whether there are any, and
    the semantic vectors' stamp (UNREAD without a statement)."""
    if statement is None:
        return 0, False, UNREAD
    with connection.cursor() as cursor:
        cursor.execute(*statement)
        n, found, stamp = cursor.fetchone()
    return n, found, stamp


def _any_match(
    queryset: QuerySet, query: SearchQuery, probe: dict, probed: Pending | None = None
) -> bool:
    """Whether `hits` holds any product, read through the indexes whatever the number of
    matches, in one statement: their count in the PROBE sample buckets (a BitmapAnd of the
    full-text and bucket indexes; kept in `probe` for the facet counts' size estimate) and,
    only when the sample holds none, the count of all of them (then few or none: a bitmap of
    the full-text index; the planner runs a subquery in an untaken CASE branch never). Not
    exists(): its LIMIT 1 made the planner scan the table expecting an early hit, which a word
    found nowhere never gives (10 ms at 10,000 products, 96 at 50,000). `probed`: the same
    statement's answer, run by the caller: the matches (`hits`) are then not even built. The
    vectors' stamp, which the probe brings, goes to probe["stamp"]."""
    answer = (
        probed.result()
        if probed is not None
        else run_probe(_probe_sql(queryset.filter(search_vector=query)))
    )
    probe["probe"], found, probe["stamp"] = answer
    return found


def _match_postgres(
    queryset: QuerySet, words: list[str], probe: dict, probed: Pending | None = None
) -> _Match:
    raw, query = _full_text(words)
    if _any_match(queryset, query, probe, probed):
        return _full_match(**_texts(words), implied=len(words) == 1)
    # Nothing matched as typed: tolerate typos by trigram similarity to the product's name. The
    # operator (its threshold, TYPO_THRESHOLD, set per connection in settings) lets the trigram
    # index find them.
    del probe["probe"]  # counted the full-text matches, not these
    phrase = " ".join(words)
    # `slug > ''` holds for every product (a slug is never empty) and is there for the planner:
    # the slug is not in the covering list index (dataproduct_list_cover), so the trigram test
    # cannot be answered from that index alone. With the name in it, the planner (which prices
    # word similarity like a comparison) read all 10,000 names through it computing similarity
    # for each, 44 ms, instead of the ~300 rows the trigram index finds, 3 ms.
    return _Match(
        Q(name__trigram_word_similar=phrase) & Q(slug__gt=""), TrigramWordSimilarity(phrase, "name")
    )


def _sqlite_match(words: list[str]) -> Q:
    from products.models import DataProduct, SchemaField

    cond = Q()
    for w in words:
        tagged = DataProduct.tags.through.objects.filter(tag__name__icontains=w)
        # A field matches by its name or by the glossary term (or synonym) it is linked to.
        fields = SchemaField.objects.filter(
            Q(name__icontains=w)
            | Q(glossary_term__name__icontains=w)
            | Q(glossary_term__synonyms__icontains=w)
        )
        cond &= (
            Q(name__icontains=w)
            | Q(summary__icontains=w)
            | Q(description__icontains=w)
            | Q(pk__in=tagged.values("dataproduct_id"))
            | Q(pk__in=fields.values("port__product_id"))
        )
    return cond


def _match_sqlite(queryset: QuerySet, words: list[str], spelling: dict) -> _Match:
    if not queryset.filter(_sqlite_match(words)).exists():
        corrected = spelling[tuple(words)] = correct(queryset, words)
        if corrected != words:
            words = corrected
    first = words[0]
    return _Match(
        _sqlite_match(words),
        Case(
            When(name__iexact=" ".join(words), then=Value(4.0)),
            When(name__icontains=first, then=Value(3.0)),
            When(summary__icontains=first, then=Value(2.0)),
            default=Value(1.0),
            output_field=FloatField(),
        ),  # then a shorter name: a closer match
    )


# -- spelling --------------------------------------------------------------------------------


def vocabulary(queryset: QuerySet, near: list[str] | None = None) -> set[str]:
    """Words the products of `queryset` are known by: names, tags and field names.

    With `near` on PostgreSQL, only names trigram-close to one of those words, found through
    the trigram indexes: reading every field name of a large mesh took seconds."""
    from products.models import SchemaField, Tag

    close = Q()
    if near and _is_postgres():
        for w in near:
            close |= Q(name__trigram_word_similar=w)
    words: set[str] = set()
    ids = queryset.order_by().values("pk")
    # A transaction only for SET LOCAL (PostgreSQL): elsewhere its savepoints are wasted queries.
    with transaction.atomic() if close else contextlib.nullcontext():
        if close:
            # The operator's default threshold (0.6) misses one-letter typos in short words.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL pg_trgm.word_similarity_threshold = %s", [WORD_THRESHOLD])
        # Names, tags and field names in one query (a UNION: distinct names only).
        names = queryset.filter(close).order_by().values_list("name", flat=True)
        tags = Tag.objects.filter(close, products__in=ids).order_by().values_list("name")
        fields = SchemaField.objects.filter(close, port__product__in=ids).order_by()
        for name in names.union(tags, fields.values_list("name")).order_by():
            words.update(terms(name.replace("_", " ")))
    return {w for w in words if len(w) > 2}


def correct(queryset: QuerySet, words: list[str]) -> list[str]:
    """Each word that no product is known by replaced by the closest one that is."""
    vocab = vocabulary(queryset, near=words)
    out = []
    for w in words:
        if w in vocab or any(v.startswith(w) for v in vocab):
            out.append(w)
            continue
        close = difflib.get_close_matches(w, vocab, n=1, cutoff=0.6)
        out.append(close[0] if close else w)
    return out


def suggest(queryset: QuerySet, q: str, *, spelling: dict | None = None) -> str | None:
    """A close spelling of `q` for "Did you mean …?", or None when q is spelt as products are.
    `spelling`: what search_products already corrected for this queryset (no second look)."""
    words = terms(q)
    if not words:
        return None
    known = (spelling or {}).get(tuple(words))
    fixed = known if known is not None else correct(queryset, words)
    return " ".join(fixed) if fixed != words else None


# -- showing ---------------------------------------------------------------------------------


def snippet(product, q: str = "") -> SafeString:
    """A short, escaped text for a result with the matched words in <mark>."""
    headline = getattr(product, "search_headline", None)
    if headline:
        marked = escape(headline.strip(" —"))
        # escaped above; only our own <mark> markers become markup
        html = marked.replace(_START, "<mark>").replace(_STOP, "</mark>")
        return mark_safe(html)  # noqa: S308  # nosec B703, B308
    text = product.summary or (product.description or "")[:200]
    words = terms(q)
    if not words:
        return escape(text)
    # Split the raw text on matches and escape every piece, so only our <mark> is markup.
    pattern = re.compile(r"(?i)\b((?:" + "|".join(re.escape(w) for w in words) + r")\w*)")
    out = []
    for i, piece in enumerate(pattern.split(text)):
        out.append(f"<mark>{escape(piece)}</mark>" if i % 2 else escape(piece))
    html = "".join(out)  # every piece escaped above
    return mark_safe(html)  # noqa: S308  # nosec B703, B308
