"""Whether another team's draft exists stays private at every door: a user who may not see the
draft gets exactly the answer a name that does not exist gets (status and body), and none of
its metadata (name, description, tags, owner, URN) reaches them. The one exception: a council
delegate sees the draft a pending waiver asks them to decide, and only while it is pending."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from governance.models import QualityCheck, QualityRun
from governance.policies import services as ps
from meshportal.permissions import VIEW, can, visible
from products import services
from products.models import DataProduct

pytestmark = pytest.mark.django_db

DRAFT = "urn:mesh:orders:draft-product"
NOWHERE = "urn:mesh:orders:no-such-product"


def api(user) -> APIClient:
    c = APIClient()
    c.force_login(user)
    return c


@pytest.fixture
def world(mesh, django_capture_on_commit_callbacks):
    """The orders draft with a policy result, a waiver request, a quality check and a run."""
    draft = mesh.products[("orders", "draft")]
    services.product_update(
        product=draft, name="Zq Secret Name", description="zq secret plans", tags=["zq-only-tag"]
    )
    policy = ps.policy_propose(
        by=mesh.owner, key="names", title="Snake", rule_type="naming", domain=mesh.orders
    )
    ps.evaluate_policies()
    with django_capture_on_commit_callbacks(execute=True):  # the council's e-mails, on commit
        waiver = ps.waiver_request(policy=policy, product=draft, by=mesh.owner, justification="x")
    port = draft.ports.get()
    check = QualityCheck.objects.create(port=port, name="rows", kind="row_count", params={})
    QualityRun.objects.create(quality_check=check, status="passed", deadline=timezone.now())
    from governance.quality import incidents

    incidents.record_freshness_many([(draft, True, 1)])  # an open incident
    mesh.draft, mesh.waiver, mesh.policy = draft, waiver, policy
    return mesh


LISTS = [
    "/api/v1/products/?urn={}",
    "/api/v1/products/?urn={}&status=draft",
    "/api/v1/compliance/?product={}",
    "/api/v1/compliance/history/?product={}",
    "/api/v1/waivers/?product={}",
    "/api/v1/quality-checks/?product={}",
    "/api/v1/quality-runs/?product={}",
    "/api/v1/incidents/?product={}",
    "/api/v1/ports/?product={}",
    "/api/v1/fields/?product={}",
    "/api/v1/access-requests/?product={}",
]


@pytest.mark.parametrize("url", LISTS)
def test_list_filters_answer_a_hidden_draft_like_an_unknown_urn(world, url):
    for who in (world.other_owner, world.consumer, world.approved):
        c = api(who)
        hidden, unknown = c.get(url.format(DRAFT)), c.get(url.format(NOWHERE))
        assert (hidden.status_code, hidden.content) == (unknown.status_code, unknown.content)
    # ... and the team still finds its draft's rows by URN (the filter is not simply broken).
    if "access-requests" not in url:
        assert api(world.member).get(url.format(DRAFT)).json()["count"] >= 1, url


def test_filters_by_port_id_refuse_a_hidden_port_like_a_missing_one(world):
    port = world.draft.ports.get()
    missing = port.pk + 1000
    for url in ("/api/v1/quality-checks/?port={}", "/api/v1/fields/?port={}"):
        c = api(world.other_owner)
        hidden, unknown = c.get(url.format(port.pk)), c.get(url.format(missing))
        assert hidden.status_code == unknown.status_code == 400
        assert hidden.json()["errors"][0]["field"] == "port"
        assert hidden.content.replace(str(port.pk).encode(), b"#") == unknown.content.replace(
            str(missing).encode(), b"#"
        )
        assert api(world.member).get(url.format(port.pk)).json()["count"] == 1


def test_waiver_and_write_references_answer_a_hidden_draft_like_an_unknown_urn(world):
    c = api(world.other_owner)
    body = {"policy": "names", "justification": "x"}
    hidden = c.post("/api/v1/waivers/", {**body, "product": DRAFT}, format="json")
    unknown = c.post("/api/v1/waivers/", {**body, "product": NOWHERE}, format="json")
    assert hidden.status_code == unknown.status_code == 400
    assert hidden.content.replace(DRAFT.encode(), b"U") == unknown.content.replace(
        NOWHERE.encode(), b"U"
    )


# -- the exception: the council delegate a waiver is asked of -----------------------------------


def test_a_delegate_sees_the_draft_of_a_pending_waiver_and_only_that_draft(world, client):
    delegate, draft = world.council, world.draft
    other_draft = world.products[("users", "draft")]
    assert can(delegate, VIEW, draft) and not can(delegate, VIEW, other_draft)
    ids = set(visible(delegate, DataProduct.objects.filter(status="draft")).values_list("pk"))
    assert ids == {(draft.pk,)}
    c = api(delegate)
    assert c.get("/api/v1/waivers/?product=" + DRAFT).json()["count"] == 1
    assert c.get(f"/api/v1/waivers/{world.waiver.pk}/").status_code == 200
    assert c.get("/api/v1/products/orders/draft-product/").status_code == 200
    client.force_login(delegate)
    assert "Zq Secret Name" in client.get("/products/orders/draft-product/").text
    assert "Zq Secret Name" in client.get("/governance/waivers/").text
    # Seeing is not connecting: the location stays the team's.
    assert "sales.secret_table" not in client.get("/products/orders/draft-product/?tab=ports").text
    # The delegate decides it; from then on the draft is the team's alone again.
    future = (timezone.now() + timedelta(days=30)).isoformat()
    r = c.post(
        f"/api/v1/waivers/{world.waiver.pk}/grant/",
        {"decision_reason": "until Q3", "expires_at": future},
        format="json",
    )
    assert r.status_code == 200
    assert not can(delegate, VIEW, DataProduct.objects.get(pk=draft.pk))
    assert client.get("/products/orders/draft-product/").status_code == 404
    assert api(delegate).get("/api/v1/products/?urn=" + DRAFT).json()["count"] == 0


def test_the_exception_is_for_delegates_only_and_not_for_their_own_request(world):
    # Off the council: no exception, although a waiver on the draft is pending.
    for who in (world.other_owner, world.consumer, world.approved):
        assert not can(who, VIEW, world.draft)
    # A delegate does not decide their own request, so it opens nothing to them.
    type(world.waiver).objects.filter(pk=world.waiver.pk).update(requested_by=world.council)
    assert not can(world.council, VIEW, world.draft)
    assert not visible(world.council, DataProduct.objects.filter(pk=world.draft.pk)).exists()


def test_waiver_notification_reaches_the_delegates_it_concerns(world):
    assert any("Zq Secret Name" in m.subject for m in mail.outbox if "council" in m.to[0])


# -- tags ---------------------------------------------------------------------------------------


def test_a_tag_used_only_by_a_hidden_draft_answers_like_a_missing_tag(world, client):
    client.force_login(world.other_owner)
    hidden, unknown = client.get("/tags/zq-only-tag/"), client.get("/tags/no-such-tag/")
    assert hidden.status_code == unknown.status_code == 404
    assert "zq-only-tag" not in hidden.text
    client.force_login(world.member)
    assert "Zq Secret Name" in client.get("/tags/zq-only-tag/").text
    # Once a product others see carries the tag, the tag is theirs to see too.
    services.product_update(product=world.products[("users", "published")], tags=["zq-only-tag"])
    client.force_login(world.other_owner)
    page = client.get("/tags/zq-only-tag/")
    assert page.status_code == 200 and "Zq Secret Name" not in page.text


def test_tags_never_offer_a_hidden_drafts_tag(world, client):
    """Facets, spelling suggestions and the admin's tag picker."""
    client.force_login(world.other_owner)
    assert "zq-only-tag" not in client.get("/search/").text  # the tag facet
    assert "zq-only-tag" not in client.get("/search/?q=zq-onlx-tag").text  # "Did you mean"
    world.other_owner.is_staff = True
    world.other_owner.save(update_fields=["is_staff"])
    product = world.products[("users", "published")]
    form = client.get(f"/admin/products/dataproduct/{product.pk}/change/")
    assert form.status_code == 200 and "zq-only-tag" not in form.text
    client.force_login(world.owner)
    assert "zq-only-tag" in client.get("/search/").text


# -- contract import: the page and the API -------------------------------------------------------


def _contract(world, slug: str) -> str:
    import yaml

    from products.contracts import services as contracts

    doc = yaml.safe_load(contracts.export_yaml(world.products[("orders", "published")]))
    doc.update(dataProduct=slug, name="Zq Hijack", id=slug)
    return yaml.safe_dump(doc, sort_keys=False)


def _import_errors(response) -> list[str]:
    import re

    return re.findall(r"<li><code>(.*?)</code></li>", response.text)


@pytest.mark.parametrize("apply", ["", "1"])
def test_import_page_answers_a_hidden_draft_like_a_missing_name(world, client, apply):
    client.force_login(world.other_owner)
    hidden = client.post(
        "/contracts/import/", {"document": _contract(world, "draft-product"), "apply": apply}
    )
    unknown = client.post(
        "/contracts/import/", {"document": _contract(world, "no-such-product"), "apply": apply}
    )
    assert hidden.status_code == unknown.status_code
    assert _import_errors(hidden) == _import_errors(unknown) != []
    assert "Zq Secret Name" not in hidden.text and "Orders Team" in _import_errors(hidden)[0]
    assert DataProduct.objects.get(pk=world.draft.pk).name == "Zq Secret Name"


def test_contract_upload_api_answers_a_hidden_draft_like_a_missing_name(world):
    c = api(world.other_owner)
    url = "/api/v1/products/orders/{}/contract"

    def put(slug):
        return c.put(url.format(slug), _contract(world, slug), content_type="application/yaml")

    hidden, unknown = put("draft-product"), put("no-such-product")
    assert hidden.status_code == unknown.status_code
    assert hidden.content.replace(b"draft-product", b"X") == unknown.content.replace(
        b"no-such-product", b"X"
    )
    # The GET of the contract: 404 both.
    assert (
        c.get(url.format("draft-product")).content == c.get(url.format("no-such-product")).content
    )
    assert DataProduct.objects.get(pk=world.draft.pk).name == "Zq Secret Name"


def test_a_domain_member_who_cannot_see_a_moved_draft_is_not_told_whose_it_is(world):
    """A draft of the orders domain owned by another team: an orders member may create products
    there but not this name; the refusal names neither the product's team nor its content."""
    moved = services.product_create(
        domain=world.orders, slug="moved", name="Zq Moved", owner_team=world.users_team
    )
    assert not can(world.member, VIEW, moved)
    r = api(world.member).put(
        "/api/v1/products/orders/moved/contract",
        _contract(world, "moved"),
        content_type="application/yaml",
    )
    assert r.status_code == 400
    assert "not available" in r.text and "Users Team" not in r.text and "Zq" not in r.text


# -- notifications, the retire page, policy counts ----------------------------------------------


def test_a_notification_about_a_draft_reaches_only_those_who_may_see_it(
    world, monkeypatch, django_capture_on_commit_callbacks
):
    """Whoever a service lists as recipients (here a quality-alert hook naming an outsider),
    notify() delivers a notification about a product only to those who may see it."""
    from governance.quality import services as quality_services
    from meshportal.models import Notification

    monkeypatch.setattr(
        quality_services.lineage_services, "watchers_of", lambda product: [world.other_owner]
    )
    mail.outbox.clear()
    run = QualityRun.objects.get()
    run.status, run.message = "failed", "too few rows"
    with django_capture_on_commit_callbacks(execute=True):  # e-mails leave on commit
        quality_services.alert_state_change(check=run.quality_check, run=run, previous="passed")
    got = set(Notification.objects.filter(kind="quality.failed").values_list("user__username"))
    assert got == {("owner",), ("member",)}
    assert all("other_owner@" not in m.to[0] for m in mail.outbox)


def test_the_waiver_request_reaches_the_delegates_it_awaits(world):
    from meshportal.models import Notification

    sent = Notification.objects.filter(kind="waiver_requested")
    assert [n.user.username for n in sent] == ["council"]
    assert "Zq Secret Name" in sent.get().title  # they may see the draft: it awaits them


def test_retire_page_does_not_list_a_hidden_downstream_draft(world, client):
    from products.lineage import services as lineage_services

    upstream = world.products[("users", "published")]
    lineage_services.input_port_create(
        product=world.draft, by=world.owner, source_port=upstream.ports.get()
    )
    client.force_login(world.other_owner)  # owns the upstream product, may not see the draft
    page = client.get("/products/users/published-product/retire/")
    assert page.status_code == 200
    assert "draft-product" not in page.text and "Zq Secret Name" not in page.text
    assert "Retirement is blocked" not in page.text  # a draft is not live: it does not block
    # The downstream impact reads as if the draft did not exist: not even a placeholder.
    assert "No product depends on" in page.text and "Hidden product" not in page.text
    tab = client.get("/products/users/published-product/?tab=lineage").text
    assert "No product declares this one as an input." in tab and "cannot see" not in tab
    services.product_retire(product=upstream, by=world.other_owner)
    assert DataProduct.objects.get(pk=upstream.pk).status == "retired"


def test_policy_trend_counts_only_what_everyone_may_see(world, client):
    """The trend table on a policy's page is stored for everyone: it leaves drafts out."""
    from governance.models import PolicyRunSummary

    summary = PolicyRunSummary.objects.filter(policy=world.policy).latest("run__started_at")
    # orders' published and deprecated products; not the draft.
    assert summary.passed + summary.failed == 2
    client.force_login(world.other_owner)
    page = client.get(f"/governance/policies/{world.policy.key}/")
    assert page.context["counts"]["total"] == 2  # the counts computed per reader agree
    assert [(s.passed, s.failed) for s in page.context["trend"]] == [
        (summary.passed, summary.failed)
    ]
