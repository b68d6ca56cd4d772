"""The scale generator, and the query-count bound every page keeps whatever the mesh size."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from demo import scale
from domains.models import Domain, Team
from meshportal.permissions import can, visible
from products.discovery import semantic
from products.discovery.search import search_products
from products.models import AccessRequest, DataProduct, ProductEmbedding, SchemaField

# 16: a search's one look at the semantic vectors' table (is the in-memory copy current?).
MAX_QUERIES = 16
SMALL = scale.Options(products=12, domains=3, teams=6, fields_per_port=4, users=30, seed=1)
LARGE = scale.Options(products=150, domains=6, teams=24, fields_per_port=4, users=120, seed=2)


def quiet(_):
    pass


@pytest.mark.django_db
def test_generator_builds_the_requested_mesh_with_working_permissions():
    ctx = scale.generate(
        scale.Options(products=50, domains=4, teams=8, fields_per_port=6, users=40), quiet
    )
    products = scale.scale_products()
    assert products.count() == 50
    assert Domain.objects.count() == 4 and Team.objects.count() == 8
    assert ctx.counts["products_outputport"] == 150
    assert 150 * 3 <= SchemaField.objects.count() <= 150 * 9
    # The owning team's members may edit their drafts; a consumer outside it may not see them.
    draft = products.filter(status="draft").select_related("owner_team").first()
    member = (
        get_user_model()
        .objects.filter(memberships__team=draft.owner_team_id, memberships__role="member")
        .first()
    )
    outsider = get_user_model().objects.exclude(memberships__team=draft.owner_team_id).first()
    assert can(member, "edit", draft)
    assert not can(outsider, "view", draft)
    assert not visible(outsider, DataProduct.objects.filter(pk=draft.pk)).exists()
    # Approved requests come with the grant a real approval writes.
    grant = AccessRequest.objects.filter(status="approved").select_related("requester").first()
    assert can(grant.requester, "view_connection", grant.product)
    # The search index is built too: a product is found by a word of its name.
    published = products.filter(status="published").first()
    word = published.name.split()[0]
    assert search_products(products, word).filter(pk=published.pk).exists()


@pytest.mark.django_db
def test_generator_is_deterministic_and_reset_replaces_only_the_generated_mesh(mesh):
    options = scale.Options(products=20, domains=2, teams=4, fields_per_port=3, users=10, seed=7)

    def snapshot():
        return list(
            scale.scale_products()
            .order_by(
                "domain__slug",
                "slug",
                "ports__slug",
                "ports__fields__ordinal",
            )
            .values_list("domain__slug", "slug", "status", "ports__slug", "ports__fields__name")
        )

    scale.generate(options, quiet)
    first = snapshot()
    with pytest.raises(CommandError, match="already here"):
        call_command("seed_scale", products=20, verbosity=0)
    call_command(
        "seed_scale",
        products=20,
        domains=2,
        teams=4,
        fields_per_port=3,
        users=10,
        seed=7,
        reset=True,
        verbosity=0,
    )
    assert snapshot() == first
    if semantic.enabled():  # the command computes the meaning vectors (unless --no-embeddings)
        generated = DataProduct.objects.exclude(domain__slug__in=["orders", "users"])
        assert ProductEmbedding.objects.filter(product__in=generated).count() == 20
    # The hand-made mesh is untouched.
    assert DataProduct.objects.filter(domain__slug="orders").count() == 3
    assert get_user_model().objects.filter(username="owner").exists()


@pytest.mark.django_db
def test_sqlite_refuses_large_meshes_postgresql_takes_them():
    assert "needs PostgreSQL" in scale.size_problem(scale.SQLITE_MAX_PRODUCTS + 1, "sqlite")
    assert scale.size_problem(scale.SQLITE_MAX_PRODUCTS, "sqlite") is None
    assert scale.size_problem(100_000, "postgresql") is None
    if connection.vendor == "sqlite":
        with pytest.raises(CommandError, match="needs PostgreSQL"):
            call_command("seed_scale", products=scale.SQLITE_MAX_PRODUCTS + 1, verbosity=0)
        assert not DataProduct.objects.exists()


def _pages(client, ctx):
    """Every core page, seen by an owner of a team (drafts, inbox) and by a plain consumer."""
    team = next(t for t in ctx.teams if any(p["team"] is t for p in ctx.products))
    product = next(p for p in ctx.products if p["team"] is team)
    domain = product["domain"]
    base = f"/products/{domain['slug']}/{product['slug']}/"
    urls = [
        "/",
        "/products/",
        "/products/?q=orders",
        "/products/?status=published&tag=gdpr",
        "/domains/",
        f"/domains/{domain['slug']}/",
        f"/teams/{team['slug']}/",
        "/access/inbox/",
        "/access/mine/",
        "/tags/gdpr/",
        base,
        base + "?tab=schema",
        base + "?tab=ports",
        base + "?tab=access",
        base + "?tab=activity",
    ]
    owner = get_user_model().objects.get(pk=team["owners"][0])
    consumer = (
        get_user_model().objects.exclude(memberships__isnull=False).first()
        or get_user_model().objects.exclude(pk=owner.pk).first()
    )
    counts = {}
    for user in (owner, consumer):
        client.force_login(user)
        for url in urls:
            with CaptureQueriesContext(connection) as q:
                response = client.get(url)
            assert response.status_code == 200, url
            counts[(user.username, url)] = len(q)
    return counts


@pytest.mark.django_db
def test_pages_keep_their_query_count_whatever_the_mesh_size(client):
    small = _pages(client, scale.generate(SMALL, quiet))
    scale.reset()
    large = _pages(client, scale.generate(LARGE, quiet))
    too_many = {k: v for k, v in {**small, **large}.items() if v > MAX_QUERIES}
    assert not too_many, f"more than {MAX_QUERIES} queries: {too_many}"


@pytest.mark.django_db
def test_bench_headers_report_time_and_queries_only_when_switched_on(client, mesh, settings):
    client.force_login(mesh.consumer)
    assert "Server-Timing" not in client.get("/products/").headers
    settings.MIDDLEWARE = ["meshportal.middleware.BenchHeadersMiddleware", *settings.MIDDLEWARE]
    client = Client()  # a new handler loads the new middleware list
    client.force_login(mesh.consumer)
    with CaptureQueriesContext(connection) as q:
        response = client.get("/products/")
    assert response.status_code == 200
    assert response.headers["X-SQL-Queries"] == str(len(q))
    assert "app;dur=" in response.headers["Server-Timing"]
    assert f'desc="{len(q)} queries"' in response.headers["Server-Timing"]


@pytest.mark.django_db
def test_product_filters_keep_the_chosen_domain_and_team(client, mesh):
    client.force_login(mesh.consumer)
    response = client.get("/products/?domain=orders&owner_team=orders-team&status=published")
    html = response.text
    # the list's facets keep the chosen values ticked (search/facet page, issue 4)
    assert 'id="f-domain-orders" checked' in html
    assert 'id="f-owner_team-orders-team" checked' in html
    assert 'id="f-domain-users" checked' not in html
    assert "Orders published" in html and "Users published" not in html


@pytest.mark.django_db
def test_postgresql_connections_run_without_jit():
    # JIT cost 100-300 ms per list query at 10,000 products (README, Scale and benchmarks).
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("SHOW jit")
            assert cur.fetchone()[0] == "off"
    else:
        assert "options" not in connection.settings_dict.get("OPTIONS", {})


@pytest.mark.django_db
def test_generator_builds_lineage_governance_and_quality_consistently():
    from governance.models import (
        Compliance,
        ComplianceChange,
        DataSource,
        GlossaryTerm,
        Policy,
        ProductQuality,
        QualityCheck,
        QualityRun,
    )
    from governance.policies import services as policy_services
    from governance.quality import services as quality_services
    from products.models import InputPort

    options = scale.Options(
        products=200, domains=5, teams=10, fields_per_port=5, users=40, check_runs=6000, seed=3
    )
    ctx = scale.generate(options, quiet)
    products = {p["id"]: p for p in ctx.products}

    # Lineage: about 3 inputs per product between real output ports, acyclic, readable sources.
    edges = list(
        InputPort.objects.filter(source_port__isnull=False).values_list(
            "source_product_id", "product_id", "source_port__product_id"
        )
    )
    assert 0.9 * options.edge_count <= len(edges) <= options.edge_count
    assert all(src == port_owner for src, _, port_owner in edges)
    assert all(products[src]["status"] in ("published", "deprecated") for src, _, _ in edges)
    assert InputPort.objects.filter(source_port__isnull=True).exclude(external_name="").exists()
    cross = sum(products[s]["domain"] is not products[d]["domain"] for s, d, _ in edges)
    assert 0.2 < cross / len(edges) < 0.6
    downstream: dict[int, set[int]] = {}
    for s, d, _ in edges:
        downstream.setdefault(s, set()).add(d)
    indegree = {pk: 0 for pk in products}
    for targets in downstream.values():
        for d in targets:
            indegree[d] += 1
    ready, ordered = [pk for pk, n in indegree.items() if n == 0], 0
    while ready:  # Kahn: every node gets ordered only if there is no cycle
        node = ready.pop()
        ordered += 1
        for d in downstream.get(node, ()):
            indegree[d] -= 1
            if indegree[d] == 0:
                ready.append(d)
    assert ordered == len(products), "the generated lineage has a cycle"

    # Policies: every live product judged by every active policy that applies, with history,
    # and the next evaluation finds nothing to change.
    active = list(Policy.objects.filter(status="active"))
    assert len(active) >= 5
    live = DataProduct.objects.exclude(status="retired")
    for policy in active:
        scope = live.filter(domain_id=policy.domain_id) if policy.domain_id else live
        assert Compliance.objects.filter(policy=policy).count() == scope.count()
    assert Compliance.objects.filter(outcome="fail").exists()
    assert ComplianceChange.objects.values("run_id").distinct().count() > 1
    assert policy_services.evaluate_policies(trigger="command").changed == 0

    # Quality: the requested runs; each check's last status is its newest run's; trust and
    # state are what a refresh computes.
    assert QualityRun.objects.count() == 6000
    assert QualityCheck.objects.count() >= 200
    # JSON columns hold JSON values, whether a stage gave text or Python values (COPY's binary
    # format on PostgreSQL serialises them itself: text given as-is would be a JSON string).
    assert QualityRun.objects.filter(sample=[]).count() == 6000
    assert all(isinstance(p, dict) for p in QualityCheck.objects.values_list("params", flat=True))
    for check in QualityCheck.objects.all()[:50]:
        newest = check.runs.order_by("-finished_at").first()
        assert (check.last_status, check.last_run_at) == (newest.status, newest.finished_at)
        assert check.next_run_at > newest.finished_at
        assert check.port.data_source_id is not None
    assert ProductQuality.objects.count() == 200
    assert ProductQuality.objects.filter(state="failing").exists()
    assert ProductQuality.objects.filter(state="passing").exists()
    for state in ProductQuality.objects.select_related("product")[:60]:
        before = (state.trust_score, state.state, state.freshness_breached, state.components)
        after = quality_services.product_quality_refresh(product=state.product)
        assert before == (
            after.trust_score,
            after.state,
            after.freshness_breached,
            after.components,
        )

    # Glossary terms with their fields linked.
    assert SchemaField.objects.filter(glossary_term__slug="scale-customer").exists()

    scale.reset()
    assert not InputPort.objects.exists()
    assert not QualityRun.objects.exists() and not QualityCheck.objects.exists()
    assert not Policy.objects.exists() and not GlossaryTerm.objects.exists()
    assert not DataSource.objects.exists() and not ProductQuality.objects.exists()


@pytest.mark.django_db
def test_every_bench_scenario_answers_200_on_a_generated_mesh(client):
    import importlib

    from bench.__main__ import mesh_facts
    from bench.scenarios import SCENARIOS

    scale.generate(LARGE, quiet)
    facts = mesh_facts()
    client.force_login(get_user_model().objects.get(username=facts["user"]))
    search = "/search/" if client.get("/search/?q=orders").status_code != 404 else "/products/"
    for s in SCENARIOS:
        if s.is_url:
            url = s.target.format(**facts["vars"], search=search)
            response = client.get(url)
            assert response.status_code == 200, (s.name, url, response.status_code)
        else:
            module, _, name = s.target.rpartition(".")
            assert callable(getattr(importlib.import_module(module), name)), s.name
