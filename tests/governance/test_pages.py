"""Governance pages: who may do what, and a fixed number of queries whatever the data size."""

import pytest
from django.urls import reverse

from governance.models import GlossaryTerm, Policy, Waiver
from governance.policies import services as ps
from products import services
from tests import factories

pytestmark = pytest.mark.django_db


def policy(mesh, **kw):
    kw = {"key": "slo", "title": "Freshness declared", "rule_type": "freshness", **kw}
    return ps.policy_propose(by=mesh.owner, **kw)


def test_propose_page_for_domain_owners_only(client, mesh):
    url = reverse("governance:policy_propose")
    client.force_login(mesh.consumer)
    assert client.get(url).status_code == 403
    assert (
        client.post(
            url, {"key": "x", "title": "X", "rule_type": "schema", "severity": "advisory"}
        ).status_code
        == 403
    )
    assert not Policy.objects.exists()
    client.force_login(mesh.owner)
    resp = client.post(
        url,
        {
            "key": "slo",
            "title": "Freshness declared",
            "rule_type": "freshness",
            "severity": "blocking",
            "params_for": "freshness",
            "param_max_hours": "0",
        },
    )
    # the parameter is a field of its own, and its error stands next to it
    assert 'id="id_param_max_hours-error">Ensure this value is greater than or equal to 1.' in (
        resp.content.decode()
    )
    resp = client.post(
        url,
        {
            "key": "slo",
            "title": "Freshness declared",
            "rule_type": "freshness",
            "severity": "blocking",
            "parameters": "",
        },
    )
    assert resp.status_code == 302
    assert Policy.objects.get(key="slo").status == "proposed"
    # An owner adopts a policy for their own domain at once, not for another's.
    resp = client.post(
        url,
        {
            "key": "ours",
            "title": "Ours",
            "rule_type": "schema",
            "severity": "advisory",
            "domain": mesh.orders.pk,
        },
    )
    assert Policy.objects.get(key="ours").status == "active"
    resp = client.post(
        url,
        {
            "key": "theirs",
            "title": "Theirs",
            "rule_type": "schema",
            "severity": "advisory",
            "domain": mesh.users.pk,
        },
    )
    assert "Only owners of Users adopt its policies." in resp.content.decode()


def test_only_council_votes_on_the_page(client, mesh, settings):
    settings.MESH_POLICY_QUORUM = 1
    p = policy(mesh)
    url = reverse("governance:policy_vote", args=[p.key])
    for user in (mesh.owner, mesh.consumer, mesh.other_owner):
        client.force_login(user)
        assert client.post(url, {"decision": "approve"}).status_code == 403
    assert "Vote</button>" not in client.get(p.get_absolute_url()).content.decode()
    client.force_login(mesh.council)
    assert "Vote</button>" in client.get(p.get_absolute_url()).content.decode()
    client.post(url, {"decision": "approve", "comment": "fine"})
    assert Policy.objects.get(pk=p.pk).status == "active"


def test_retire_and_evaluate_refused_to_others(client, mesh):
    p = policy(mesh, domain=mesh.orders)
    client.force_login(mesh.other_owner)
    assert client.post(reverse("governance:policy_retire", args=[p.key])).status_code == 403
    assert client.post(reverse("governance:evaluate")).status_code == 403
    assert Policy.objects.get(pk=p.pk).status == "active"
    client.force_login(mesh.owner)
    client.post(reverse("governance:policy_retire", args=[p.key]))
    assert Policy.objects.get(pk=p.pk).status == "retired"


def test_evaluate_button_runs_an_evaluation(client, mesh, settings):
    p = policy(mesh, domain=mesh.orders)
    client.force_login(mesh.council)
    resp = client.post(reverse("governance:evaluate"), follow=True)
    assert "Evaluation started" in resp.content.decode()
    # The task is queued on the broker; running the service is what the worker does.
    ps.evaluate_policies()
    page = client.get(reverse("governance:compliance")).content.decode()
    assert p.title in page and "0/2" in page  # the council sees the two non-drafts


def test_waiver_pages_refuse_non_owners_and_non_council(client, mesh):
    p = policy(mesh, domain=mesh.orders)
    product = mesh.products[("orders", "published")]
    url = reverse("governance:waiver_request", args=[p.key, product.pk])
    client.force_login(mesh.consumer)
    assert client.post(url, {"justification": "please"}).status_code == 403
    client.force_login(mesh.owner)
    client.post(url, {"justification": "SLO agreed next month"})
    waiver = Waiver.objects.get()
    decide = reverse("governance:waiver_decide", args=[waiver.pk])
    for user in (mesh.owner, mesh.other_owner):  # the requester and a non-council owner
        client.force_login(user)
        assert client.post(
            decide, {"decision": "grant", "decision_reason": "ok", "expires_at": "2099-01-01T00:00"}
        ).status_code in (403, 404)
    client.force_login(mesh.council)
    client.post(
        decide, {"decision": "grant", "decision_reason": "ok", "expires_at": "2099-01-01T00:00"}
    )
    assert Waiver.objects.get().status == "granted"
    # A draft's waiver cannot even be asked for by someone who cannot see the draft.
    draft = mesh.products[("orders", "draft")]
    client.force_login(mesh.other_owner)
    assert (
        client.get(reverse("governance:waiver_request", args=[p.key, draft.pk])).status_code == 404
    )


def _grow(mesh, n, start=0):
    port = {
        "slug": "main",
        "name": "Main",
        "kind": "table",
        "location": "s.t",
        "fields": [{"name": "BadName"}, {"name": "good_name"}],
    }
    for i in range(start, start + n):
        services.product_create(
            domain=mesh.users if i % 2 else mesh.orders,
            slug=f"bulk-{i}",
            name=f"Bulk {i}",
            ports=[port],
        )


PAGES = [
    lambda p: reverse("governance:compliance"),
    lambda p: reverse("governance:policies"),
    lambda p: p.get_absolute_url(),
    lambda p: reverse("governance:domain_scorecard", args=["users"]),
    lambda p: reverse("governance:waivers"),
    lambda p: reverse("governance:glossary"),
    lambda p: reverse("products:product", args=["orders", "published-product"]) + "?tab=governance",
]


def test_pages_run_a_fixed_number_of_queries(client, mesh, django_assert_max_num_queries):
    active = []
    for key, rule in (("names", "naming"), ("slo", "freshness"), ("schema", "schema")):
        p = ps.policy_propose(by=mesh.owner, key=key, title=key, rule_type=rule, domain=mesh.orders)
        Policy.objects.filter(pk=p.pk).update(domain=None)
        active.append(p)
    p = Policy.objects.get(key="names")
    client.force_login(mesh.owner)
    for size in (2, 12):
        _grow(mesh, size - 2 if size == 12 else 2, start=0 if size == 2 else 2)
        ps.evaluate_policies()
        for term in range(size):
            ps.glossary_term_save(slug=f"t{size}-{term}", name=f"Term {term}", definition="d")
        for url in PAGES:
            with django_assert_max_num_queries(16):
                assert client.get(url(p)).status_code == 200


def test_glossary_pages_and_search_hook(client, mesh):
    term = ps.glossary_term_save(
        slug="customer",
        name="Customer",
        definition="A buyer.",
        synonyms="client, shopper",
        domain=mesh.users,
        status="approved",
    )
    field = mesh.products[("orders", "published")].ports.get().fields.get()
    services.field_update(field=field, glossary_term=term)
    hidden = mesh.products[("orders", "draft")].ports.get().fields.get()
    services.field_update(field=hidden, glossary_term=term)
    assert list(ps.glossary_search("shopper")) == [term]
    assert list(ps.glossary_search("nothing-like-it")) == []
    client.force_login(mesh.consumer)
    assert "Customer" in client.get(reverse("governance:glossary") + "?q=client").content.decode()
    page = client.get(term.get_absolute_url()).content.decode()
    # The consumer sees the published product's field, not the draft's.
    assert "Orders published" in page and "Orders draft" not in page


def test_anonymous_is_sent_to_login(client, mesh):
    p = policy(mesh)
    for url in PAGES:
        resp = client.get(url(p))
        assert resp.status_code == 302 and "/login/" in resp["Location"]


def test_council_member_user_factory():
    assert factories.user("c", groups=["governance"]).groups.filter(name="governance").exists()


def test_glossary_terms_kept_by_council_and_domain_owners(client, mesh):
    new = reverse("governance:term_create")
    data = {
        "name": "Order",
        "slug": "order",
        "definition": "A purchase.",
        "synonyms": "purchase",
        "domain": "",
        "status": "approved",
    }
    client.force_login(mesh.consumer)
    assert client.post(new, data).status_code == 403
    client.force_login(mesh.owner)  # a domain owner: their own domain's terms, not global ones
    assert "Only the council keeps global terms" in client.post(new, data).content.decode()
    client.post(new, {**data, "domain": mesh.orders.pk})
    term = GlossaryTerm.objects.get(slug="order")
    assert term.domain == mesh.orders
    client.force_login(mesh.other_owner)
    assert (
        client.post(
            reverse("governance:term_edit", args=["order"]), {**data, "definition": "Hijacked"}
        ).status_code
        == 403
    )
    client.force_login(mesh.council)
    client.post(
        reverse("governance:term_edit", args=["order"]),
        {**data, "domain": mesh.orders.pk, "definition": "A confirmed purchase."},
    )
    assert GlossaryTerm.objects.get(slug="order").definition == "A confirmed purchase."


def test_the_compliance_matrix_counts_open_incidents_per_domain_as_the_reader_sees_them(
    client, mesh
):
    from governance.quality import incidents

    policy(mesh, domain=mesh.orders)
    incidents.record_freshness_many([(mesh.products[("orders", "published")], True, 24)])
    incidents.record_freshness_many([(mesh.products[("users", "draft")], True, 24)])
    client.force_login(mesh.consumer)  # not an owner: the users draft's incident is not counted
    page = client.get(reverse("governance:compliance")).text
    assert "Open incidents" in page
    assert page.count(" open</a>") == 1
    assert f'href="{reverse("governance:incidents")}?domain=orders">1 open</a>' in page
    listed = client.get(reverse("governance:incidents"), {"domain": "orders"}).text
    assert "Orders published: freshness SLO (24 h) breached" in listed
    assert (
        "Users draft" not in client.get(reverse("governance:incidents"), {"domain": "users"}).text
    )
    client.force_login(mesh.other_owner)  # its own team counts it
    assert "?domain=users" in client.get(reverse("governance:compliance")).text
