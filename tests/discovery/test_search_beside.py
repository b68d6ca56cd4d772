"""A search's facet pass runs beside the request, on a second connection (meshportal.beside):
the page is the one it is when the pass runs in turn, shows nothing the reader may not see, and
the bench's Server-Timing counts the pass. Where a second connection could see other data (a
transaction's), the pass runs in turn; a broken helper connection costs the request nothing."""

import threading
from functools import partial

import pytest
from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from meshportal import beside
from tests import factories

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not settings.IS_POSTGRES, reason="a second connection: PostgreSQL's"),
]


def _where() -> tuple[str, int]:
    """The thread a read ran on and its connection's backend process."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return threading.current_thread().name, cursor.fetchone()[0]


@pytest.fixture
def committed(transactional_db, settings):
    """The test mesh committed for real (a second connection sees it), reads beside on."""
    settings.MESH_READS_BESIDE = True
    return factories.build_mesh()


def test_a_read_beside_runs_on_the_helpers_own_connection(transactional_db, settings):
    settings.MESH_READS_BESIDE = True
    here = _where()
    pending = beside.beside(_where)
    assert pending.beside
    thread, pid = pending.result()
    assert thread.startswith("mesh-beside") and thread != here[0]
    assert pid != here[1]


def test_inside_a_transaction_the_read_runs_in_turn(transactional_db, settings):
    """Its writes are not committed: a second connection would not see them."""
    settings.MESH_READS_BESIDE = True
    with transaction.atomic():
        pending = beside.beside(_where)
        assert not pending.beside
        assert pending.result() == _where()


def test_switched_off_the_read_runs_in_turn(transactional_db, settings):
    settings.MESH_READS_BESIDE = False
    assert not beside.beside(_where).beside


def test_without_persistent_connections_the_read_runs_in_turn(
    transactional_db, settings, monkeypatch
):
    """CONN_MAX_AGE 0: the helper would open a connection for every read."""
    settings.MESH_READS_BESIDE = True
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 0)
    assert not beside.beside(_where).beside


def test_while_the_helper_is_busy_a_read_runs_in_turn(transactional_db, settings):
    """Another request thread's read is on the helper (gunicorn threads, the MCP server's
    tool calls): this one would wait in its queue, so it runs at once on its own connection."""
    settings.MESH_READS_BESIDE = True

    def slow():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(0.3)")
        return _where()

    first = beside.beside(slow)
    second = beside.beside(_where)
    assert first.beside and not second.beside
    assert second.result() == _where()
    assert first.result()[0].startswith("mesh-beside")
    assert beside.beside(_where).beside  # free again


def _fails_on_the_helper() -> tuple[str, int]:
    """_where(), but on the helper its connection has dropped (a database restart)."""
    if threading.current_thread().name.startswith("mesh-beside"):
        raise OperationalError("server closed the connection unexpectedly")
    return _where()


def test_a_failure_of_the_helpers_connection_is_read_again_here(transactional_db, settings):
    """The helper's connection dropped (a database restart): the request's own answers."""
    settings.MESH_READS_BESIDE = True
    pending = beside.beside(_fails_on_the_helper)
    assert pending.result() == _where()


def test_a_read_after_another_follows_it_on_the_helper_with_its_answer(transactional_db, settings):
    """then_beside: the second read runs on the helper's connection as soon as the first is
    back, given its answer, while the caller goes on; the helper stays taken for both."""
    settings.MESH_READS_BESIDE = True
    gate = threading.Event()

    def first():
        assert gate.wait(5)
        return _where()

    earlier = beside.beside(first)
    later = earlier.then_beside(lambda answer: (answer, _where()))
    assert later.beside
    # between the two, another thread's read would queue behind them: it runs in turn
    assert not beside.beside(_where).beside
    gate.set()
    answer, where = later.result()
    assert answer == where == earlier.result()
    assert where[0].startswith("mesh-beside") and where != _where()
    assert beside.beside(_where).beside  # free again once both are done


def test_in_turn_a_read_after_another_runs_only_when_asked(transactional_db, settings):
    """Not beside (switched off, a transaction, ...): the second read waits to be asked, so a
    caller that finds no use for it (a search that found nothing) never pays for it."""
    settings.MESH_READS_BESIDE = False
    ran = []
    later = beside.beside(lambda: 1).then_beside(lambda answer: ran.append(answer) or answer + 1)
    assert not later.beside and ran == []
    assert later.result() == 2 and ran == [1]


def test_a_failure_of_the_helpers_connection_reads_both_again_here(transactional_db, settings):
    settings.MESH_READS_BESIDE = True
    later = beside.beside(_fails_on_the_helper).then_beside(lambda answer: (answer, _where()))
    assert later.result() == (_where(), _where())


def _in_turn_and_beside(settings, reader, read) -> tuple:
    """`read(client)` signed in as `reader`, first with reads in turn, then beside; the answers
    must be the same. The answer, and the SQL the request ran on its own connection beside."""
    client = Client()
    client.force_login(reader)
    settings.MESH_READS_BESIDE = False
    in_turn = read(client)
    settings.MESH_READS_BESIDE = True
    with CaptureQueriesContext(connection) as own:
        assert read(client) == in_turn
    return in_turn, [q["sql"] for q in own.captured_queries]


def _page(client: Client, url: str) -> dict:
    response = client.get(url)
    assert response.status_code == 200
    ctx = response.context
    return {
        "facets": ctx["facets"],
        "count": ctx["page"].paginator.count,
        "rows": [row.slug for row in ctx["page"].object_list],
        "number": ctx["page"].number,
    }


@pytest.mark.parametrize(
    "url",
    [
        "/products/?q=product",
        "/products/?q=product&status=published",
        "/products/?q=orders&domain=orders",
        "/products/?q=product&page=2",  # past the end: the last page, as in turn
        "/products/?q=product&page=x",  # not a number: the first page
        "/products/?q=nothingmatches",
        "/products/?q=prodct",  # a typo: found by the names' trigrams, counted beside too
        "/products/?status=published&domain=orders",  # a filtered list: by name, counted beside
    ],
)
def test_the_page_beside_is_the_page_in_turn(committed, settings, url):
    client = Client()
    client.force_login(committed.owner)
    settings.MESH_READS_BESIDE = False
    in_turn = _page(client, url)
    settings.MESH_READS_BESIDE = True
    with CaptureQueriesContext(connection) as own:
        assert _page(client, url) == in_turn
    # the facet pass, the search's probe and the sample's sizing ran on the helper's connection
    sql = [q["sql"] for q in own.captured_queries]
    assert not [q for q in sql if "_over_matches" in q]
    assert not [q for q in sql if q.startswith("SELECT p.n, CASE WHEN p.n > 0")]
    assert not [q for q in sql if q.startswith("SELECT count(*) FROM")]


def test_the_home_page_reads_its_drafts_tiles_and_requests_beside(
    committed, settings, shared_cache
):
    """The drafts per domain, the tiles' lines and the reader's pending requests are read on
    the helper's connection while the page reads the reader's products: the same page as in
    turn, the team's draft counted on its domain's tile for its owner only."""
    from products import services

    services.access_request_create(
        product=committed.products[("users", "published")],
        requester=committed.owner,
        purpose="reporting",
    )

    def home(client):
        response = client.get("/")
        assert response.status_code == 200
        ctx = response.context
        return (
            [(d.slug, d.product_count, d.stats) for d in ctx["domains"]],
            [r.pk for r in ctx["pending"]],
            [p.pk for p in ctx["mine"]],
        )

    seen = {}
    for reader in (committed.owner, committed.consumer):
        in_turn, sql = _in_turn_and_beside(settings, reader, home)
        assert not [q for q in sql if q.startswith('SELECT "products_accessrequest"')]
        assert not [q for q in sql if 'SELECT "products_dataproduct"."domain_id"' in q]
        seen[reader.username] = in_turn
    tiles = {name: dict((slug, n) for slug, n, _ in page[0]) for name, page in seen.items()}
    assert tiles["owner"]["orders"] == tiles["consumer"]["orders"] + 1  # the team's draft
    assert len(seen["owner"][1]) == 1 and seen["consumer"][1] == []


@pytest.mark.parametrize("url", ["/products/", "/products/?page=2"])
def test_the_unfiltered_list_counts_the_readers_drafts_beside(
    committed, settings, shared_cache, url
):
    """The list of everything: its counts over what everyone sees from the shared cache, the
    reader's own drafts counted on the helper's connection while the page is read; the same
    page as in turn, the team's draft counted for its owner only."""
    counts = []
    for reader in (committed.owner, committed.consumer):
        # in turn first, which also fills the cached part
        page, sql = _in_turn_and_beside(settings, reader, lambda client: _page(client, url))
        assert not [q for q in sql if "_over_matches" in q]
        counts.append(page["count"])
    assert counts == [5, 4]


@pytest.mark.parametrize(
    "url",
    [
        "/domains/orders/",
        "/teams/orders-team/",
        "/domains/orders/?page=9",  # past the end: the last page, as in turn
        "/teams/orders-team/?page=x",  # not a number: the first page
    ],
)
def test_a_domains_or_teams_page_counted_beside_is_the_page_in_turn(committed, settings, url):
    """Their products by name: the total counted on the helper's connection while the page's
    ids and rows are read; the same page, and the reader's visibility, as in turn."""

    def page(client):
        response = client.get(url)
        assert response.status_code == 200
        p = response.context["page"]
        return p.paginator.count, p.number, [row.slug for row in p.object_list]

    for reader in (committed.owner, committed.consumer):  # the consumer sees no draft
        in_turn, sql = _in_turn_and_beside(settings, reader, page)
        assert not [q for q in sql if "COUNT(*)" in q.upper() and '"products_dataproduct"' in q]
    assert in_turn[0] == 2 and "draft-product" not in in_turn[2]


def test_a_search_that_may_be_fused_by_meaning_probes_in_turn(committed, settings, monkeypatch):
    """With vectors to fuse (semantic search), the facet pass counts the fused set, which the
    probe's answer does not give: the probe runs on the request's connection, as before, and
    the page is the same."""
    from products.discovery import semantic

    client = Client()
    client.force_login(committed.owner)
    settings.MESH_READS_BESIDE = True
    url = "/products/?q=product"
    alone = _page(client, url)
    monkeypatch.setattr(semantic, "may_fuse", lambda: True)
    with CaptureQueriesContext(connection) as own:
        assert _page(client, url) == alone
    assert [q for q in own.captured_queries if q["sql"].startswith("SELECT p.n, CASE")]


def test_a_searchs_probe_and_facet_pass_are_built_once_for_every_reader_and_words(
    committed, settings, monkeypatch
):
    """A search's probe and facet pass are compiled once per process, the words and the
    reader's readable drafts their parameters: a search by another reader with other words
    builds neither again, and each reader's page is the page the ORM's own statements give (in
    turn): a team's draft for its owner, not for the other team's; every draft for staff."""
    from products.discovery import facets
    from products.discovery import search as searching

    _in_turn_and_beside(settings, committed.owner, lambda c: _page(c, "/products/?q=product"))
    built = []
    for module, name in ((searching, "probe_sql"), (facets, "_sized_sql")):
        monkeypatch.setattr(module, name, _counted(getattr(module, name), built))
    drafts = {"Orders draft", "Users draft"}
    for reader, seen in (
        (committed.other_owner, {"Users draft"}),
        (committed.member, {"Orders draft"}),
        (committed.staff, drafts),
    ):
        _in_turn_and_beside(settings, reader, lambda c: _page(c, "/products/?q=draft"))
        built.clear()
        assert _names(reader, "/products/?q=draft") & drafts == seen
        assert built == []


def test_a_filtered_searchs_facet_pass_is_built_once_per_shape(committed, settings, monkeypatch):
    """A filtered search's or list's facet pass is compiled once per shape (which filters, how
    many values each, words or none), the values, words and the reader's drafts parameters:
    other values, words and readers build it no more, and each page (counts included) is the
    page of the ORM's own pass, in turn."""
    from products.discovery import facets
    from products.models import Tag

    tag = Tag.objects.create(slug="gdpr", name="GDPR")
    committed.products[("orders", "published")].tags.add(tag)
    shapes = [
        (
            "/products/?q={w}&status={s}",
            {"w": "product", "s": "published"},
            {"w": "draft", "s": "draft"},
        ),
        ("/products/?domain={d}&tag={t}", {"d": "orders", "t": "gdpr"}, {"d": "users", "t": "pii"}),
        (
            "/products/?q={w}&owner_team={team}&status=published&status={s}",
            {"w": "product", "team": "orders-team", "s": "deprecated"},
            {"w": "orders", "team": "users-team", "s": "draft"},
        ),
        (
            "/products/?classification={c}&port_kind={k}&quality={qs}",
            {"c": "internal", "k": "table", "qs": "unchecked"},
            {"c": "confidential", "k": "stream", "qs": "failing"},
        ),
    ]
    built = []
    monkeypatch.setattr(facets, "_sized_sql", _counted(facets._sized_sql, built))
    for shape, first, other in shapes:
        _page(_client(committed.owner), shape.format(**first))  # compiles the shape
        url = shape.format(**other)
        for reader in (committed.owner, committed.other_owner, committed.staff):
            _in_turn_and_beside(settings, reader, partial(_page, url=url))
            built.clear()  # (a changed setting compiles every statement again)
            _page(_client(reader), url)
            assert built == [], (url, reader.username)
    page, _ = _in_turn_and_beside(
        settings, committed.owner, lambda c: _page(c, "/products/?q=draft&status=draft")
    )
    assert page["rows"] == ["draft-product"] and page["count"] == 1  # the owner's own draft


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _counted(fn, calls: list):
    def counting(*args, **kwargs):
        calls.append(fn.__name__)
        return fn(*args, **kwargs)

    return counting


def _names(reader, url: str) -> set[str]:
    client = Client()
    client.force_login(reader)
    return {row.name for row in client.get(url).context["page"].object_list}


def test_beside_a_reader_counts_no_other_teams_draft(committed):
    """The pass beside applies the reader's visibility as the page does: the users team's
    draft is counted for its owner only."""
    owner, consumer = Client(), Client()
    owner.force_login(committed.other_owner)
    consumer.force_login(committed.consumer)

    def statuses(client):
        page = _page(client, "/products/?q=product")
        status = next(f for f in page["facets"] if f["key"] == "status")
        return {v["value"]: v["count"] for v in status["values"]}, page["count"]

    assert statuses(owner) == ({"published": 2, "deprecated": 2, "draft": 1}, 5)
    assert statuses(consumer) == ({"published": 2, "deprecated": 2}, 4)


def test_the_bench_headers_count_the_pass_beside(committed, settings):
    """Server-Timing's statements and CPU include the helper's work for the request."""
    settings.MIDDLEWARE = ["meshportal.middleware.BenchHeadersMiddleware", *settings.MIDDLEWARE]
    client = Client()
    client.force_login(committed.owner)
    counts = {}
    for on in (False, True):
        settings.MESH_READS_BESIDE = on
        client.get("/products/?q=product")  # the same caches warm for both
        counts[on] = int(client.get("/products/?q=product")["X-SQL-Queries"])
    assert counts[True] == counts[False]


def test_a_forked_child_makes_its_own_helper(transactional_db, settings):
    """A process forked after the helper started (a pool of workers) has no thread behind the
    parent's: its reads beside get a helper of their own, not a queue nobody serves."""
    import os

    settings.MESH_READS_BESIDE = True
    assert beside.beside(_where).result()[0].startswith("mesh-beside")  # the parent's helper
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: leaves without touching the parent's connections
        try:
            os.write(write, b"ok" if beside._helper is None else b"inherited")
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert os.read(read, 16) == b"ok"
