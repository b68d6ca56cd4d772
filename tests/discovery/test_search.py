"""Search relevance on a small fixed corpus, snippets, spelling and visibility."""

import pytest
from django.conf import settings

from domains import services as domain_services
from meshportal.audit import audit_context
from products import services
from products.discovery import search
from products.models import DataProduct
from tests import factories

CORPUS = [
    (
        "orders",
        "Orders",
        "Every order placed in the web shop",
        "",
        ["orders", "sales"],
        ["order_id", "customer_id", "total_amount"],
    ),
    (
        "order-items",
        "Order items",
        "Line items of each order",
        "",
        ["orders"],
        ["order_id", "sku", "quantity"],
    ),
    (
        "customers",
        "Customers",
        "Customer profiles and sign-up dates",
        "",
        ["pii"],
        ["customer_id", "email"],
    ),
    (
        "web-sessions",
        "Web sessions",
        "Clickstream sessions from the web shop",
        "",
        ["traffic"],
        ["session_id", "page_views"],
    ),
    (
        "payments",
        "Payments",
        "Card payments and their status",
        "",
        ["finance"],
        ["payment_id", "amount", "currency"],
    ),
    ("refunds", "Refunds", "Money returned to customers", "", ["finance"], ["refund_id", "reason"]),
    (
        "stock-levels",
        "Stock levels",
        "Units on hand per warehouse",
        "",
        ["inventory"],
        ["sku", "warehouse_id", "units"],
    ),
    (
        "campaign-performance",
        "Campaign performance",
        "Spend and conversions per campaign",
        "",
        ["marketing"],
        ["campaign_id", "spend"],
    ),
    (
        "shipments",
        "Shipments",
        "Parcels leaving us",
        "Parcels leaving our warehouses, with the carrier's tracking numbers.",
        ["logistics"],
        ["shipment_id", "carrier"],
    ),
]


@pytest.fixture
def corpus(db):
    with audit_context(door="command"):
        owner = factories.user("corpus-owner")
        team = domain_services.team_create(slug="corpus", name="Corpus Team", owners=[owner])
        domain = domain_services.domain_create(slug="corpus", name="Corpus", owner_team=team)
        for slug, name, summary, description, tags, fields in CORPUS:
            p = services.product_create(
                domain=domain,
                slug=slug,
                name=name,
                summary=summary,
                description=description,
                tags=tags,
                ports=[{"name": "Main", "kind": "table", "fields": [{"name": f} for f in fields]}],
            )
            services.product_publish(product=p)
    return DataProduct.objects.all()


def top(q: str) -> str:
    return search.search_products(DataProduct.objects.all(), q).first().slug


# (query, expected top result): exact names, a prefix as typed, typos, summary, tags,
# descriptions and field names.
QUERIES_BOTH = [
    ("orders", "orders"),
    ("ord", "orders"),  # prefix while typing
    ("ordr", "orders"),  # typo
    ("custmer", "customers"),  # typo
    ("payments", "payments"),
    ("warehouse", "stock-levels"),  # summary beats description
    ("web shop", "web-sessions"),  # name beats summary
    ("email", "customers"),  # a field name
    ("campaign", "campaign-performance"),
]
QUERIES_POSTGRES = QUERIES_BOTH + [
    ("refund", "refunds"),
    ("clickstream", "web-sessions"),
    ("tracking", "shipments"),  # only in the description
    ("stock lev", "stock-levels"),  # prefix of the second word
    ("paymnets", "payments"),  # transposed letters
]


@pytest.mark.postgres
@pytest.mark.parametrize(("q", "expected"), QUERIES_POSTGRES)
def test_postgres_full_text_ranking(corpus, q, expected):
    assert top(q) == expected


@pytest.mark.skipif(settings.IS_POSTGRES, reason="the SQLite fallback")
@pytest.mark.parametrize(("q", "expected"), QUERIES_BOTH)
def test_sqlite_fallback_ranking(corpus, q, expected):
    assert top(q) == expected


def test_no_match_finds_nothing_and_suggests_a_spelling(corpus):
    assert not search.search_products(DataProduct.objects.all(), "zzzqqq").exists()
    # nothing to search (what visible() gives someone not signed in): nothing, no error
    assert not search.search_products(DataProduct.objects.none(), "orders").exists()
    assert search.suggest(DataProduct.objects.all(), "shipmnts") == "shipments"
    assert search.suggest(DataProduct.objects.all(), "orders") is None


@pytest.mark.postgres
def test_did_you_mean_reads_field_names_through_the_trigram_index(corpus):
    """pg_trgm's word-similarity operators are priced as the trigram comparison they are
    (migration products.0020): priced as one comparison, the planner compared every field name
    with the word (47 ms on a mesh of 1,000 products) instead of asking the trigram index."""
    from django.db import connection

    from products.models import SchemaField
    from tests.plans import plan_of

    port = DataProduct.objects.get(slug="orders").ports.get()
    SchemaField.objects.bulk_create(
        SchemaField(port=port, name=f"metric_{i:05d}", ordinal=100 + i) for i in range(20_000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE products_schemafield")
    plan = plan_of(
        lambda: search.vocabulary(DataProduct.objects.all(), near=["zzzqqq"]),
        "products_schemafield",
    )
    assert "schemafield_name_trgm" in plan
    assert "Seq Scan on products_schemafield" not in plan


def test_index_follows_edits(corpus):
    p = DataProduct.objects.get(slug="refunds")
    services.product_update(product=p, name="Chargebacks")
    assert top("chargebacks") == "refunds"
    port = p.ports.get()
    services.field_create(port=port, name="dispute_code")
    assert top("dispute") == "refunds"


def test_snippet_marks_words_and_escapes_html(corpus):
    p = DataProduct.objects.get(slug="payments")
    services.product_update(product=p, summary="<script>alert(1)</script> card payments & fees")
    hit = search.search_products(DataProduct.objects.all(), "card").get(slug="payments")
    html = search.snippet(hit, "card")
    assert "<script>" not in html
    assert "&amp; fees" in html
    assert "<mark>card</mark>" in html.lower()


def test_search_only_finds_visible_products(mesh):
    from meshportal.permissions import visible

    consumer_view = visible(mesh.consumer, DataProduct.objects.all())
    assert not search.search_products(consumer_view, "orders draft").filter(status="draft").exists()
    owner_view = visible(mesh.owner, DataProduct.objects.all())
    found = search.search_products(owner_view, "orders draft")
    assert found.filter(status="draft", domain__slug="orders").exists()


@pytest.mark.postgres
def test_bulk_reindex_writes_the_same_vectors_as_the_per_product_index(corpus):
    """reindex builds the documents from rows (fields, their glossary terms, several ports)
    and writes vector and facet values in one statement: the same as index_product."""
    from governance.policies import services as ps
    from products.models import OutputPort, SchemaField

    term = ps.glossary_term_save(
        name="Lifetime value", slug="lifetime-value", definition="Worth.", synonyms="CLV, worth"
    )
    first = corpus.get(slug="orders")
    extra = OutputPort.objects.create(product=first, name="Ledger feed", kind="stream")
    SchemaField.objects.create(port=extra, name="zeta_total", ordinal=2)
    SchemaField.objects.create(port=extra, name="alpha_total", ordinal=1, glossary_term=term)
    products = DataProduct.objects.all()
    for p in products:
        search.index_product(p)
    one_by_one = dict(products.values_list("pk", "search_vector"))
    stored = {p.pk: {k: set(v) for k, v in p.facet_values.items()} for p in products.all()}
    products.update(search_vector=None, facet_values=None)
    assert search.reindex(products, batch_size=3) == len(one_by_one)
    assert dict(products.values_list("pk", "search_vector")) == one_by_one
    # the many-valued facets' values (tags, port kinds) are stored beside the vector alike
    assert {p.pk: {k: set(v) for k, v in p.facet_values.items()} for p in products.all()} == stored
    assert any(v["tag"] for v in stored.values()) and any(v["port_kind"] for v in stored.values())
    assert set(stored[first.pk]["port_kind"]) == {"table", "stream"}
    assert top("refund") == "refunds"
    assert top("clv") == top("alpha_total") == top("ledger feed") == "orders"


def _bucket(pk: int) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT hashint8(%s::bigint) & 63", [pk])
        return cursor.fetchone()[0]


@pytest.mark.postgres
@pytest.mark.parametrize("in_probe", [False, True], ids=["outside-the-probe", "inside-the-probe"])
def test_a_word_only_one_product_holds_is_found_by_full_text_wherever_its_bucket(corpus, in_probe):
    """Whether a search matches at all is first asked of the probe buckets (1/16 of the
    products); a product outside them must still be found by its words, not by the typo
    fallback's names. The count found in the probe travels to the facet counts."""
    domain = corpus.first().domain
    with audit_context(door="command"):
        for i in range(500):  # about one product in 16 falls in the probe
            p = services.product_create(domain=domain, slug=f"ledger-{i}", name=f"Ledger {i}")
            if (_bucket(p.pk) < search.PROBE) == in_probe:
                break
            services.product_delete(product=p)
        services.product_update(product=p, description="Reconciled against the zyxtrolith book.")
    sizes: dict = {}
    hits = search.search_products(DataProduct.objects.all(), "zyxtrolith", sizes=sizes)
    assert [h.slug for h in hits] == [p.slug]
    assert "<mark>zyxtrolith</mark>" in search.snippet(hits[0], "zyxtrolith").lower()
    assert sizes == {"probe": 1 if in_probe else 0}


@pytest.fixture
def tiered(corpus, monkeypatch):
    """The corpus and three products named alike whose only "customer" is a field's name, with
    the page's ids read tier by tier whatever the number of matches."""
    domain = corpus.first().domain
    with audit_context(door="command"):
        for i in range(3):
            p = services.product_create(
                domain=domain,
                slug=f"parcels-{i}",
                name="Parcels",
                ports=[{"name": "Main", "kind": "table", "fields": [{"name": "customer_ref"}]}],
            )
            services.product_publish(product=p)
    monkeypatch.setattr(search, "TIERS_PAST", 0)
    return corpus


def _pages(qs, size: int) -> list[str]:
    from meshportal.pagination import IdsFirstPaginator

    paginator = IdsFirstPaginator(qs, size)
    paginator.count = qs.count()  # the search page's total comes from its facet pass
    return [p.slug for n in paginator.page_range for p in paginator.page(n).object_list]


@pytest.mark.postgres
def test_a_large_search_pages_tier_by_tier_in_the_order_of_its_ranking(tiered):
    """Past TIERS_PAST matches a search page's ids come from the products with a word in
    their name, summary or tags (ranked) and then the others (by name): every page holds
    exactly the products the ranking puts there, ties (same name) included."""
    for q in ["customer", "order", "orders web", "sku", "ship", "cust id"]:
        qs = search.search_products(DataProduct.objects.all(), q)
        assert qs.query.page_ids is not None
        for size in (1, 2, 3, 25):
            assert _pages(qs, size) == [p.slug for p in qs], (q, size)


@pytest.mark.postgres
@pytest.mark.parametrize("tiers", [True, False])
def test_a_searchs_page_ids_compiled_once_are_the_pages_of_its_ranking(tiered, monkeypatch, tiers):
    """compiled_page_ids (the search page's, over a reader's products, from statements compiled
    once): every page of every search holds the products the ranking puts there, tier by tier
    past TIERS_PAST matches or ranked whole below it, for platform staff and for a member whose
    readable drafts are given as ids (one draft in the corpus, which only they find)."""
    from meshportal.permissions import ReadFirst
    from meshportal.statements import array_text

    monkeypatch.setattr(search, "TIERS_PAST", 0 if tiers else 10_000)
    draft = DataProduct.objects.get(slug="parcels-2")
    DataProduct.objects.filter(pk=draft.pk).update(status=DataProduct.Status.DRAFT)
    everything = DataProduct.objects.all()
    for scope in (ReadFirst(None), ReadFirst(array_text([draft.pk])), ReadFirst("{}")):
        base = scope.products(everything)
        for q in ["customer", "order", "orders web", "sku", "ship", "cust id"]:
            qs = search.search_products(base, q)
            ranked = [p.pk for p in qs]
            if q == "customer":  # the draft's field is customer_ref
                assert (draft.pk in ranked) == (scope.drafts != "{}")
            for size in (1, 2, 3, 25):
                for bottom in range(0, len(ranked) + size, size):
                    top = bottom + size
                    ids = search.compiled_page_ids(scope, q, qs, bottom, top, len(ranked))
                    assert ids == ranked[bottom:top], (scope.drafts, q, size, bottom)
    by_name = search.search_products(everything, "customer").order_by("name")
    assert search.compiled_page_ids(ReadFirst(None), "customer", by_name, 0, 2, 6) is None


@pytest.mark.postgres
@pytest.mark.parametrize("tiers", [True, False])
@pytest.mark.parametrize(
    "data",
    [
        {"status": ["published"]},
        {"status": ["published", "draft"], "domain": ["corpus"], "owner_team": ["corpus"]},
        {"classification": ["internal"], "port_kind": ["table"], "quality": ["unchecked"]},
        {"tag": "sales"},
        {"tag": "none-such"},
    ],
)
def test_a_filtered_searchs_page_ids_compiled_once_are_the_pages_of_its_ranking(
    tiered, monkeypatch, tiers, data
):
    """The same with filters chosen (compiled once per filter shape, the chosen values
    parameters): every page holds the filtered matches the ranking puts there; a filter that
    leaves nothing gives no rows."""
    from meshportal.permissions import ReadFirst
    from products.discovery import shapes
    from products.filters import DataProductFilter

    monkeypatch.setattr(search, "TIERS_PAST", 0 if tiers else 10_000)
    draft = DataProduct.objects.get(slug="parcels-2")
    DataProduct.objects.filter(pk=draft.pk).update(status=DataProduct.Status.DRAFT)
    for scope in (ReadFirst(None), ReadFirst("{}")):
        base = scope.products(DataProduct.objects.all())
        fs = DataProductFilter(data, queryset=base)
        assert fs.is_valid()
        shaped = shapes.shape_of(fs, fs.form.cleaned_data)
        assert shaped is not None and shaped[0]
        for q in ["customer", "order", "orders web", "ship"]:
            qs = search.search_products(base, q)
            for name, value in fs.form.cleaned_data.items():
                if name != "q" and shapes.chosen(value):
                    qs = fs.filters[name].filter(qs, value)
            ranked = [p.pk for p in qs]
            for size in (1, 3, 25):
                for bottom in range(0, len(ranked) + size, size):
                    top = min(bottom + size, len(ranked))
                    ids = search.compiled_page_ids(
                        scope, q, qs, bottom, top, len(ranked), filters=shaped
                    )
                    assert ids == ranked[bottom:top], (scope.drafts, q, data, size, bottom)


@pytest.mark.postgres
@pytest.mark.parametrize("sort", ["name", "newest", "trust"])
def test_a_filtered_lists_page_ids_compiled_once_are_its_pages(tiered, sort):
    """A filtered list (no words) reads its pages' ids from statements compiled once per filter
    shape, sort and page: every page holds what the list's own order puts there, a member's
    readable draft included, another team's not."""
    from meshportal.permissions import ReadFirst
    from meshportal.statements import array_text
    from products.discovery import facets, shapes
    from products.filters import DataProductFilter

    draft = DataProduct.objects.get(slug="parcels-2")
    DataProduct.objects.filter(pk=draft.pk).update(status=DataProduct.Status.DRAFT)
    for i, parcels in enumerate(DataProduct.objects.filter(slug__startswith="parcels-")):
        parcels.name = f"Parcels {i}"  # no ties: a page holds what the order puts there
        parcels.save(update_fields=["name"])
    for scope in (ReadFirst(None), ReadFirst(array_text([draft.pk])), ReadFirst("{}")):
        base = scope.products(DataProduct.objects.all())
        for data in (
            {"status": ["published", "draft"]},
            {"domain": ["corpus"], "port_kind": ["table"]},
            {"tag": "sales", "classification": ["internal"]},
        ):
            fs = DataProductFilter(data, queryset=base)
            assert fs.is_valid()
            listed = base
            for name, value in fs.form.cleaned_data.items():
                if name != "q" and shapes.chosen(value):
                    listed = fs.filters[name].filter(listed, value)
            listed = facets.sort_products(listed, sort, searching=False)
            ordered = list(listed.values_list("pk", flat=True))
            if "status" in data:
                assert (draft.pk in ordered) == (scope.drafts != "{}")
            shaped = shapes.shape_of(fs, fs.form.cleaned_data)
            key = facets.sort_key(sort, searching=False)
            for size in (1, 2, 25):
                for bottom in range(0, len(ordered) + size, size):
                    top = min(bottom + size, len(ordered))
                    ids = facets._listed_ids(scope, shaped, key, listed, bottom, top, len(ordered))
                    assert ids == ordered[bottom:top], (scope.drafts, data, size, bottom)
    by_other = facets.sort_products(DataProduct.objects.all(), "newest", searching=False)
    shaped = ((("status", 1),), {"status_0": "published"})
    assert facets._listed_ids(ReadFirst(None), shaped, "name", by_other, 0, 2, 6) is None


@pytest.mark.postgres
def test_words_in_the_head_rank_before_words_only_in_fields(tiered):
    """The word "customer" is in the name of Customers and the summary of Refunds; Orders and
    the three Parcels hold it only in a field's name: they follow, shortest name first, then
    by name and id."""
    qs = search.search_products(DataProduct.objects.all(), "customer")
    slugs = _pages(qs, 2)
    assert set(slugs[:2]) == {"customers", "refunds"}
    assert slugs[2:] == ["orders", "parcels-0", "parcels-1", "parcels-2"]


@pytest.mark.postgres
def test_a_large_search_page_reads_a_page_of_each_tier_not_every_match(tiered):
    """The page's ids are read with a LIMIT per tier (through their indexes on a large mesh),
    not by one statement that orders every match to skip the first page (LIMIT 2 OFFSET 2)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from meshportal.pagination import IdsFirstPaginator

    qs = search.search_products(DataProduct.objects.all(), "customer")
    paginator = IdsFirstPaginator(qs, 2)
    paginator.count = 6
    with CaptureQueriesContext(connection) as ctx:
        page = paginator.page(2)
    assert [p.slug for p in page.object_list] == ["orders", "parcels-0"]
    ids_reads = [q["sql"] for q in ctx.captured_queries if "ORDER BY" in q["sql"]]
    # The head holds 2 products: its first 4 asked for, then the rest from its first row.
    assert [sql.rsplit(" LIMIT ", 1)[-1] for sql in ids_reads] == ["4", "2"]


@pytest.mark.postgres
@pytest.mark.parametrize(("q", "whole_vector_tested"), [("customer", False), ("cust id", True)])
def test_the_head_tier_tests_the_whole_vector_only_when_the_head_does_not_imply_it(
    tiered, q, whole_vector_tested
):
    """One word found in a product's head (name, summary, tags) is in its whole vector: the
    head's tier reads the head's index alone. With two words the head test is "either word",
    the whole query "both": the tier keeps both tests, and no product matching one word only
    reaches the page."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from meshportal.pagination import IdsFirstPaginator

    qs = search.search_products(DataProduct.objects.all(), q)
    paginator = IdsFirstPaginator(qs, 2)
    paginator.count = qs.count()
    with CaptureQueriesContext(connection) as ctx:
        page = paginator.page(1)
    head_read = next(s["sql"] for s in ctx.captured_queries if "ts_filter" in s["sql"])
    where = head_read.split(" WHERE ", 1)[1].split(" ORDER BY ", 1)[0]
    assert ('"products_dataproduct"."search_vector" @@' in where) is whole_vector_tested
    assert [p.slug for p in page.object_list] == [p.slug for p in qs][:2]
