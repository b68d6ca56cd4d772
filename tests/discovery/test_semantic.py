"""Semantic search: the NumPy model, the stored vectors, hybrid ranking on the page and the
API with the same visibility, the keyword-only fallback, the task and `reindex`."""

import io

import pytest
from django.core.cache import cache
from django.core.management import call_command

from meshportal.audit import audit_context
from meshportal.celery import app as celery_app
from products import services
from products.discovery import embedding, search, semantic
from products.models import DataProduct, ProductEmbedding
from tests.discovery.semantic_mesh import QUERY, add_churn_products

pytestmark = pytest.mark.skipif(
    not embedding.available(), reason="the `semantic` extra is not installed"
)


def test_the_numpy_model_gives_sentence_transformers_vectors():
    # The reference similarities of all-MiniLM-L6-v2 in the sentence-transformers docs.
    v = embedding.encode(
        ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
    )
    sims = v @ v.T
    assert v.shape == (3, 384)
    assert sims[0, 0] == pytest.approx(1.0, abs=1e-5)
    assert sims[0, 1] == pytest.approx(0.6660, abs=2e-3)
    assert sims[0, 2] == pytest.approx(0.1046, abs=2e-3)
    assert sims[1, 2] == pytest.approx(0.1411, abs=2e-3)


def test_a_text_encoded_again_gets_the_same_vector_in_its_place():
    # Cached texts (a demo seeded again) and new ones, repeated, in any order: each row is that
    # text's own vector, as if all were encoded afresh.
    texts = ["Orders placed by customers.", "Page views by day.", "Orders placed by customers."]
    first = embedding.encode(texts[:1])
    again = embedding.encode(["Page views by day.", *texts])
    fresh = embedding.encoder().encode(["Page views by day.", *texts])
    assert again.shape == (4, 384)
    assert (again[1] == first[0]).all() and (again[1] == again[3]).all()
    assert again == pytest.approx(fresh, abs=1e-5)
    assert embedding.encode([]).shape == (0, 384)


def test_a_search_by_meaning_finds_a_product_without_its_words(mesh):
    published, draft = add_churn_products(mesh)
    everyone = DataProduct.objects.all()

    assert search.search_products(everyone, QUERY)[0] in (published, draft)


def test_keywords_alone_when_semantic_search_is_off(mesh, settings):
    add_churn_products(mesh)
    settings.MESH_SEMANTIC_SEARCH = False
    everyone = DataProduct.objects.all()

    assert list(search.search_products(everyone, QUERY)) == []
    # Keyword hits are unchanged either way.
    assert search.search_products(everyone, "churn")[0].name == "Churn predictions"


def test_keyword_hits_all_stay_and_the_exact_name_leads(mesh):
    add_churn_products(mesh)
    everyone = DataProduct.objects.all()
    settings_off = list(search.search_products(everyone, "orders"))

    hybrid = list(search.search_products(everyone, "orders"))

    assert set(settings_off) <= set(hybrid)
    assert hybrid[0].name.startswith("Orders")


def test_the_page_shows_a_draft_found_by_meaning_only_to_its_team(client, mesh):
    published, draft = add_churn_products(mesh)

    client.force_login(mesh.consumer)
    names = [p.name for p in client.get("/search/", {"q": QUERY}).context["page"]]
    assert names[0] == published.name
    assert draft.name not in names

    client.force_login(mesh.member)  # the draft's team
    names = [p.name for p in client.get("/search/", {"q": QUERY}).context["page"]]
    assert draft.name in names


def test_the_api_shows_a_draft_found_by_meaning_only_to_its_team(client, mesh):
    published, draft = add_churn_products(mesh)

    client.force_login(mesh.consumer)
    body = client.get("/api/v1/products/", {"q": QUERY}).json()
    names = [p["name"] for p in body["results"]]
    assert names[0] == published.name
    assert draft.name not in names and "attrition" not in str(body).lower()

    client.force_login(mesh.member)
    names = [p["name"] for p in client.get("/api/v1/products/", {"q": QUERY}).json()["results"]]
    assert draft.name in names


def test_query_count_with_vectors_does_not_grow(client, mesh, django_assert_max_num_queries):
    add_churn_products(mesh)
    client.force_login(mesh.consumer)
    client.get("/search/", {"q": "warm"})  # loads the vectors into memory
    # 15, the page's budget, with the one look at the vectors: which of the nearest products the
    # user may see, with the keyword ranks to fuse and the vectors' stamp (is the in-memory copy
    # current?).
    with django_assert_max_num_queries(15) as small:
        assert client.get("/search/", {"q": QUERY}).status_code == 200
    count = len(small.captured_queries)  # now: the next request resets the log
    with audit_context(door="command"):
        for i in range(20):
            p = services.product_create(
                domain=mesh.users, slug=f"loyalty-{i}", name=f"Loyalty {i}", summary="Retention"
            )
            services.product_publish(product=p)
    semantic.embed(DataProduct.objects.all())
    client.get("/search/", {"q": "warm again"})
    with django_assert_max_num_queries(count):
        assert client.get("/search/", {"q": QUERY}).status_code == 200


def test_a_burst_of_edits_recomputes_the_vector_in_one_task(
    mesh, django_capture_on_commit_callbacks
):
    published, _ = add_churn_products(mesh)
    before = ProductEmbedding.objects.get(product=published)
    cache.clear()
    task = celery_app.tasks[semantic.TASK]
    ran: list[list[int]] = []
    real_run = task.run
    celery_app.conf.task_always_eager = True  # the queued task runs in-line on commit
    task.run = lambda ids: ran.append(ids) or real_run(ids)  # counts the runs, runs the task
    try:
        with (
            django_capture_on_commit_callbacks(execute=True),
            audit_context(door="command"),
        ):
            services.product_update(product=published, summary="Subscribers about to quit.")
            services.product_update(product=published, description="Scored every Monday.")
    finally:
        celery_app.conf.task_always_eager = False
        task.run = real_run

    assert ran == [[published.pk]]
    after = ProductEmbedding.objects.get(product=published)
    published.refresh_from_db()
    assert after.vector != before.vector
    assert after.text_hash == semantic._hash(semantic.embedding_text(published))


def test_reindex_computes_only_what_changed(mesh):
    add_churn_products(mesh)
    ProductEmbedding.objects.filter(product__slug="churn-predictions").delete()

    def reindex(*args: str) -> str:
        out = io.StringIO()
        call_command("reindex", *args, stdout=out)
        return out.getvalue()

    assert "Meaning vectors: 1 products computed" in reindex()
    assert "Meaning vectors: 0 products computed" in reindex()
    assert f"Meaning vectors: {DataProduct.objects.count()} products" in reindex("--force")


def test_without_the_extra_search_is_keyword_only_and_nothing_is_embedded(mesh, monkeypatch):
    # As on an installation without numpy, tokenizers or the weights package.
    monkeypatch.setattr(embedding, "available", lambda: False)
    with audit_context(door="command"):
        services.product_create(
            domain=mesh.users, slug="churn", name="Churn", summary="Subscribers who cancel."
        )

    assert semantic.embed(DataProduct.objects.all()) == 0
    assert not ProductEmbedding.objects.exists()
    assert list(search.search_products(DataProduct.objects.all(), QUERY)) == []
    out = io.StringIO()
    call_command("reindex", stdout=out)
    assert "Semantic search is off" in out.getvalue()


def _page_names(client, q=QUERY) -> list[str]:
    return [p.name for p in client.get("/search/", {"q": q}).context["page"]]


def test_a_product_embedded_after_the_vectors_were_loaded_is_found_by_the_next_search(client, mesh):
    # This process keeps the vectors in memory; a product written since (here, a new one)
    # must not wait for a restart.
    add_churn_products(mesh)
    client.force_login(mesh.consumer)
    assert "Cancellation reasons" not in _page_names(client)  # the vectors are now loaded

    with audit_context(door="command"):
        p = services.product_create(
            domain=mesh.users,
            slug="cancellation-reasons",
            name="Cancellation reasons",
            summary="What made subscribers stop paying and close their accounts, by month.",
        )
        services.product_publish(product=p)
    semantic.embed(DataProduct.objects.filter(pk=p.pk))

    assert "Cancellation reasons" in _page_names(client)


def test_an_edited_product_is_found_by_its_new_meaning_in_the_next_search(client, mesh):
    add_churn_products(mesh)
    client.force_login(mesh.consumer)
    assert "Account closures" not in _page_names(client)
    product = DataProduct.objects.get(slug="published-product", domain=mesh.users)

    with audit_context(door="command"):
        services.product_update(
            product=product,
            name="Account closures",
            summary="Subscribers who stopped paying and closed their accounts, and what made them.",
            description="",
        )
    semantic.embed(DataProduct.objects.filter(pk=product.pk))

    assert "Account closures" in _page_names(client)


def test_a_draft_moved_to_another_team_leaves_the_next_search_of_its_old_team(client, mesh):
    # Visibility is the page's queryset, applied to the nearest ids at every search: nothing of
    # it is remembered with the vectors.
    _, draft = add_churn_products(mesh)
    client.force_login(mesh.member)  # of the orders team, the draft's
    assert draft.name in _page_names(client)

    with audit_context(door="command"):
        services.product_transfer(product=draft, team=mesh.users_team, by=mesh.owner)

    assert draft.name not in _page_names(client)
    client.force_login(mesh.other_owner)  # of the users team, its new owner
    assert draft.name in _page_names(client)


def test_a_deleted_product_leaves_the_search_before_the_vectors_are_reloaded(client, mesh):
    published, _ = add_churn_products(mesh)
    client.force_login(mesh.consumer)
    assert _page_names(client)[0] == published.name

    with audit_context(door="command"):
        services.product_delete(product=published)

    assert published.name not in _page_names(client)


def _count_encodings(monkeypatch) -> list[str]:
    """The queries the model encodes from now on (it still encodes them)."""
    seen: list[str] = []
    real = embedding.encode_query

    def counting(text):
        seen.append(text)
        return real(text)

    monkeypatch.setattr(embedding, "encode_query", counting)
    return seen


def test_a_query_is_encoded_once_for_every_process_and_every_spelling(mesh, monkeypatch):
    published, draft = add_churn_products(mesh)
    everyone = DataProduct.objects.all()
    semantic.forget_queries([QUERY])
    encoded = _count_encodings(monkeypatch)

    first = list(search.search_products(everyone, QUERY))
    semantic._query_vector.cache_clear()  # another worker: only the shared cache has it
    again = list(search.search_products(everyone, "  WHY customers   Leave "))

    assert encoded == [QUERY]
    assert again == first and first[0] in (published, draft)


def test_a_remembered_query_vector_is_not_reused_by_another_model(mesh, monkeypatch):
    add_churn_products(mesh)
    everyone = DataProduct.objects.all()
    list(search.search_products(everyone, QUERY))  # remembered under this model
    semantic._query_vector.cache_clear()
    encoded = _count_encodings(monkeypatch)
    monkeypatch.setattr(semantic, "MODEL", "another-model")

    list(search.search_products(everyone, QUERY))

    assert encoded == [QUERY]


def test_a_query_vector_another_user_cached_shows_the_draft_only_to_its_team(client, mesh):
    published, draft = add_churn_products(mesh)
    semantic.forget_queries([QUERY])
    client.force_login(mesh.member)  # the draft's team asks first: its vector is remembered
    assert draft.name in [p.name for p in client.get("/search/", {"q": QUERY}).context["page"]]

    for forget_in_process in (False, True):
        if forget_in_process:
            semantic._query_vector.cache_clear()
        client.force_login(mesh.consumer)
        names = [p.name for p in client.get("/search/", {"q": QUERY}).context["page"]]
        assert names[0] == published.name and draft.name not in names


def test_without_a_cache_server_a_query_is_still_encoded(mesh, monkeypatch):
    add_churn_products(mesh)
    semantic.forget_queries([QUERY])
    monkeypatch.setattr(semantic.cache, "get", lambda *a, **k: None)  # fail-open: a miss
    monkeypatch.setattr(semantic.cache, "set", lambda *a, **k: None)  # ... and a dropped write

    assert search.search_products(DataProduct.objects.all(), QUERY)[0].name in (
        "Churn predictions",
        "Attrition drivers",
    )


QUERIES = [QUERY, "money we made", "people who stopped buying", "orders", "a"]


@pytest.mark.skipif(not embedding.fast_queries(), reason="onnxruntime is not installed")
def test_int8_query_vectors_stay_close_to_the_float32_ones():
    model = embedding.encoder()
    for q in QUERIES:
        fast, exact = embedding.encode_query(q), model.encode([q])[0]
        assert fast.shape == (384,) and fast.dtype == exact.dtype
        assert float(fast @ fast) == pytest.approx(1.0, abs=1e-5)
        assert float(fast @ exact) >= 0.98


def test_without_onnxruntime_a_query_takes_the_numpy_pass(mesh, monkeypatch):
    published, draft = add_churn_products(mesh)
    monkeypatch.setattr(embedding, "fast_queries", lambda: False)
    semantic.forget_queries([QUERY])

    assert (embedding.encode_query(QUERY) == embedding.encoder().encode([QUERY])[0]).all()
    assert search.search_products(DataProduct.objects.all(), QUERY)[0] in (published, draft)


@pytest.mark.skipif(not embedding.fast_queries(), reason="onnxruntime is not installed")
def test_the_int8_query_model_is_built_once_and_kept_for_the_next_process(tmp_path, monkeypatch):
    import onnxruntime.quantization

    model = embedding.encoder()
    first = embedding.QueryEncoder(model, tmp_path)
    (saved,) = tmp_path.glob("*.onnx")

    def no_build(*args, **kwargs):
        raise AssertionError("built again")

    monkeypatch.setattr(onnxruntime.quantization, "quantize_dynamic", no_build)
    again = embedding.QueryEncoder(model, tmp_path)  # the next process: read, not built
    assert (again.encode(QUERY) == first.encode(QUERY)).all()

    saved.write_bytes(b"damaged")  # a damaged file is built again
    monkeypatch.undo()
    rebuilt = embedding.QueryEncoder(model, tmp_path)
    assert (rebuilt.encode(QUERY) == first.encode(QUERY)).all()
    assert saved.stat().st_size > 1_000_000


def test_meaning_is_ranked_among_what_the_user_may_see(mesh, monkeypatch):
    # The closest product is another team's draft. For a consumer, the published one is then
    # the closest it may see: first in meaning (1 / (60 + 1)), and the draft's similarity
    # neither ranks it second nor sets the floor (0.6 < 0.75 x 0.9 would have cut it).
    from meshportal.permissions import visible

    published, draft = add_churn_products(mesh)
    monkeypatch.setattr(semantic, "nearest", lambda q: [(draft.pk, 0.9), (published.pk, 0.6)])

    consumer_sees = list(search.search_products(visible(mesh.consumer, DataProduct.objects), QUERY))
    assert consumer_sees == [published]
    assert consumer_sees[0].search_rank == pytest.approx(1 / 61)

    team_sees = list(search.search_products(visible(mesh.member, DataProduct.objects), QUERY))
    assert team_sees == [draft]  # its team: the draft first, the other below the floor


def test_a_product_found_by_words_and_meaning_adds_both_ranks(mesh, monkeypatch):
    published, _ = add_churn_products(mesh)
    monkeypatch.setattr(semantic, "nearest", lambda q: [(published.pk, 0.8)])

    found = list(search.search_products(DataProduct.objects.all(), "churn"))

    assert found[0] == published
    assert found[0].search_rank == pytest.approx(2 / 61)  # first by keyword and by meaning


def test_when_every_vector_is_gone_the_next_search_no_longer_uses_them(mesh):
    # An empty table is a stamp too (None): the copy in memory is dropped, not kept.
    add_churn_products(mesh)
    everyone = DataProduct.objects.all()
    assert search.search_products(everyone, QUERY).exists()  # found by meaning: loaded

    ProductEmbedding.objects.all().delete()

    assert list(search.search_products(everyone, QUERY)) == []


@pytest.mark.postgres
def test_a_search_without_vectors_reads_their_stamp_in_its_probe(client, mesh):
    """With no vectors in this process, a search asks whether some appeared since (the vectors'
    stamp) in its probe, not in a statement of its own; vectors written after one search are
    fused by the next."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    if not semantic.in_memory():
        pytest.skip("with pgvector the nearest products come from the database: no stamp")
    published, _ = add_churn_products(mesh)
    ProductEmbedding.objects.all().delete()
    client.force_login(mesh.consumer)
    client.get("/search/", {"q": "warm"})  # this process drops the vectors it held
    with CaptureQueriesContext(connection) as ctx:
        assert client.get("/search/", {"q": QUERY}).status_code == 200
    stamps = [q["sql"] for q in ctx.captured_queries if "products_productembedding" in q["sql"]]
    assert len(stamps) == 1 and stamps[0].startswith("SELECT p.n, CASE"), stamps
    semantic.embed(DataProduct.objects.filter(pk=published.pk))
    names = [p.name for p in client.get("/search/", {"q": QUERY}).context["page"].object_list]
    assert published.name in names
