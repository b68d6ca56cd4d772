"""Proposing, voting, domain adoption, waivers and the publish gate, through services and pages."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from governance.models import Compliance, Policy, Waiver
from governance.policies import services as ps
from meshportal.models import AuditEntry
from products import services
from products.models import DataProduct
from tests import factories

pytestmark = pytest.mark.django_db


def council(n):
    return [factories.user(f"delegate{i}", groups=["governance"]) for i in range(n)]


def naming(by, **kw):
    return ps.policy_propose(
        by=by, key="snake", title="Fields are snake_case", rule_type="naming", **kw
    )


def test_quorum_of_council_approvals_activates_a_global_policy(mesh, settings):
    settings.MESH_POLICY_QUORUM = 3
    policy = naming(mesh.owner)
    assert policy.status == "proposed"
    a, b, c = council(3)
    ps.policy_vote(policy=policy, by=a, decision="approve", comment="yes")
    ps.policy_vote(policy=policy, by=b, decision="approve")
    # A changed vote counts once: b approves again, still 2 approvals.
    ps.policy_vote(policy=policy, by=b, decision="approve", comment="still yes")
    assert Policy.objects.get(pk=policy.pk).status == "proposed"
    ps.policy_vote(policy=policy, by=c, decision="approve")
    policy.refresh_from_db()
    assert policy.status == "active" and policy.activated_at
    # Voting is over once it is active; only council members vote at all.
    with pytest.raises(ValidationError):
        ps.policy_vote(policy=policy, by=a, decision="reject", comment="changed my mind")
    other = ps.policy_propose(by=mesh.owner, key="other", title="Other", rule_type="schema")
    with pytest.raises(ValidationError):
        ps.policy_vote(policy=other, by=mesh.owner, decision="approve")
    # Every change is audited: the creation, the votes and the activation.
    actions = AuditEntry.objects.filter(scope_id=str(policy.pk), object_repr__contains="snake")
    assert actions.filter(action="create").exists() and actions.filter(action="update").exists()


def test_quorum_of_rejections_rejects_and_a_rejection_needs_a_comment(mesh, settings):
    settings.MESH_POLICY_QUORUM = 2
    policy = naming(mesh.owner)
    a, b = council(2)
    with pytest.raises(ValidationError) as e:
        ps.policy_vote(policy=policy, by=a, decision="reject")
    assert "comment" in e.value.message_dict
    ps.policy_vote(policy=policy, by=a, decision="reject", comment="too strict")
    ps.policy_vote(policy=policy, by=b, decision="reject", comment="agree")
    assert Policy.objects.get(pk=policy.pk).status == "rejected"


def test_who_proposes_and_domain_adoption_without_council(mesh):
    # A right, not a state: PermissionDenied (403 at every door), not a ValidationError.
    with pytest.raises(PermissionDenied):
        naming(mesh.consumer)  # owns no domain, not on the council
    with pytest.raises(PermissionDenied):
        naming(mesh.owner, domain=mesh.users)  # not an owner of Users
    adopted = naming(mesh.other_owner, domain=mesh.users, severity="blocking")
    assert adopted.status == "active"
    with pytest.raises(ValidationError) as e:
        ps.policy_propose(
            by=mesh.owner,
            key="bad",
            title="Bad",
            rule_type="freshness",
            parameters={"max_hours": 0},
        )
    assert e.value.message_dict["parameters"][0].startswith("max_hours:")
    ps.policy_retire(policy=adopted, by=mesh.other_owner)
    assert Policy.objects.get(pk=adopted.pk).status == "retired"


def active(policy_kw, by):
    p = ps.policy_propose(by=by, **policy_kw)
    Policy.objects.filter(pk=p.pk).update(status="active")
    return Policy.objects.get(pk=p.pk)


def test_publish_gate_lists_each_failing_blocking_policy_and_how_to_fix(mesh):
    draft = mesh.products[("users", "draft")]
    services.field_create(port=draft.ports.get(), name="CustomerID")
    active(
        {
            "key": "snake",
            "title": "Fields are snake_case",
            "rule_type": "naming",
            "severity": "blocking",
        },
        mesh.owner,
    )
    active(
        {
            "key": "slo",
            "title": "Freshness declared",
            "rule_type": "freshness",
            "severity": "blocking",
            "domain": mesh.users,
        },
        mesh.other_owner,
    )
    active({"key": "advice", "title": "Advice only", "rule_type": "ownership"}, mesh.owner)
    active(
        {
            "key": "orders-only",
            "title": "Orders only",
            "rule_type": "glossary",
            "severity": "blocking",
            "domain": mesh.orders,
        },
        mesh.owner,
    )
    with pytest.raises(ValidationError) as e:
        services.product_publish(product=draft)
    assert e.value.messages == [
        "Blocking policy “Freshness declared” fails: no freshness SLO is declared. "
        "To fix: Declare how fresh the data is (freshness SLO, in hours).",
        "Blocking policy “Fields are snake_case” fails: field `CustomerID` is not snake_case. "
        "To fix: Rename what is listed so it follows the convention (leave a pattern empty to "
        "skip it).",
    ]
    assert DataProduct.objects.get(pk=draft.pk).status == "draft"
    # Fix one, waive the other: it publishes.
    services.product_update(product=draft, freshness_slo_hours=24)
    snake = Policy.objects.get(key="snake")
    waiver = ps.waiver_request(
        policy=snake,
        product=draft,
        by=mesh.other_owner,
        justification="legacy export, renamed next quarter",
    )
    ps.waiver_decide(
        waiver=waiver,
        by=mesh.council,
        grant=True,
        reason="ok until Q3",
        expires_at=timezone.now() + timedelta(days=30),
    )
    services.product_publish(product=DataProduct.objects.get(pk=draft.pk))
    assert DataProduct.objects.get(pk=draft.pk).status == "published"


def test_publish_page_shows_which_policies_fail(client, mesh):
    draft = mesh.products[("orders", "draft")]
    active(
        {
            "key": "slo",
            "title": "Freshness declared",
            "rule_type": "freshness",
            "severity": "blocking",
        },
        mesh.owner,
    )
    client.force_login(mesh.owner)
    url = reverse("products:lifecycle", args=["orders", "draft-product", "publish"])
    resp = client.post(url, follow=True)
    assert (
        "Blocking policy “Freshness declared” fails: no freshness SLO is declared"
        in resp.content.decode()
    )
    assert DataProduct.objects.get(pk=draft.pk).status == "draft"


def test_waiver_shows_as_waived_until_it_expires(mesh, client):
    product = mesh.products[("orders", "published")]
    policy = active(
        {"key": "slo", "title": "Freshness declared", "rule_type": "freshness"}, mesh.owner
    )
    ps.evaluate_policies()
    with pytest.raises(ValidationError):  # only the product's owners ask
        ps.waiver_request(policy=policy, product=product, by=mesh.consumer, justification="x")
    waiver = ps.waiver_request(
        policy=policy, product=product, by=mesh.owner, justification="SLO agreed next month"
    )
    with pytest.raises(ValidationError):  # the council grants, not the owner
        ps.waiver_decide(
            waiver=waiver,
            by=mesh.owner,
            grant=True,
            reason="me",
            expires_at=timezone.now() + timedelta(days=1),
        )
    with pytest.raises(ValidationError) as e:
        ps.waiver_decide(waiver=waiver, by=mesh.council, grant=True, reason="ok")
    assert "expires_at" in e.value.message_dict
    ps.waiver_decide(
        waiver=waiver,
        by=mesh.council,
        grant=True,
        reason="ok",
        expires_at=timezone.now() + timedelta(hours=1),
    )
    client.force_login(mesh.owner)
    tab = reverse("products:product", args=["orders", "published-product"]) + "?tab=governance"
    assert ">waived<" in client.get(tab).content.decode()
    Waiver.objects.filter(pk=waiver.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    page = client.get(tab).content.decode()
    assert ">fails<" in page and ">waived<" not in page
    assert "no freshness SLO is declared" in page


def test_evaluation_stores_current_state_history_and_trend(mesh):
    policy = active(
        {"key": "slo", "title": "Freshness declared", "rule_type": "freshness"}, mesh.owner
    )
    run1 = ps.evaluate_policies()
    live = DataProduct.objects.exclude(status="retired").count()
    assert Compliance.objects.filter(policy=policy, outcome="fail").count() == live
    product = mesh.products[("orders", "published")]
    services.product_update(product=product, freshness_slo_hours=12)
    run2 = ps.evaluate_policies()
    assert run2.changed == 1  # only what changed is written
    status = Compliance.objects.get(policy=policy, product=product)
    assert status.outcome == "pass" and status.run == run2
    history = list(
        policy.compliance_changes.filter(product=product)
        .order_by("created_at")
        .values_list("run", "outcome")
    )
    assert history == [(run1.pk, "fail"), (run2.pk, "pass")]
    # The trend is shown to everyone: it counts the products everyone sees (not drafts).
    public = DataProduct.objects.exclude(status__in=["retired", "draft"]).count()
    trend = list(policy.summaries.order_by("run__started_at").values_list("passed", "failed"))
    assert trend == [(0, public), (1, public - 1)]
    # Retiring the policy removes its current state from scorecards.
    ps.policy_retire(policy=policy, by=mesh.staff)
    assert not Compliance.objects.filter(policy=policy).exists()


def test_policy_compliance_is_a_term_of_the_trust_score(mesh):
    from governance.models import Policy
    from governance.policies import services as policy_services
    from governance.quality import services as quality_services

    product = mesh.products[("orders", "published")]
    assert policy_services.compliance_share(product) is None  # nothing judged yet
    state = quality_services.product_quality_refresh(product=product)
    assert "compliance" not in state.components
    Policy.objects.create(
        key="fresh",
        title="Fresh",
        rule_type="freshness",
        parameters={},
        severity="advisory",
        status="active",
        proposed_by=mesh.owner,
    )
    Policy.objects.create(
        key="documented",
        title="Documented",
        rule_type="lifecycle",
        parameters={},
        severity="advisory",
        status="active",
        proposed_by=mesh.owner,
    )
    policy_services.evaluate_policies()
    assert policy_services.compliance_share(product) == 0.5  # no SLO fails, lifecycle passes
    state = quality_services.product_quality_refresh(product=product)
    assert state.components["compliance"] == {"weight": 20, "value": 0.5}


def test_publish_gate_shows_before_publish_is_pressed(client, mesh):
    """The product page and the confirmation page show the gate's verdict; the button is
    disabled while it would be refused, and a waived failure is marked and lets it through."""
    draft = mesh.products[("orders", "draft")]
    policy = active(
        {
            "key": "slo",
            "title": "Freshness declared",
            "rule_type": "freshness",
            "severity": "blocking",
        },
        mesh.owner,
    )
    active({"key": "advice", "title": "Advice only", "rule_type": "ownership"}, mesh.owner)
    client.force_login(mesh.owner)
    page = client.get(reverse("products:product", args=["orders", "draft-product"])).text
    assert "Publishing would be refused" in page and "blocked</span>" in page
    assert "no freshness SLO is declared" in page
    assert "To fix: Declare how fresh the data is" in page
    assert "Advice only" not in page  # advisory policies never block
    url = reverse("products:lifecycle", args=["orders", "draft-product", "publish"])
    confirm = client.get(url).text
    assert "Publishing would be refused" in confirm
    assert 'type="submit" disabled aria-disabled="true"' in confirm
    # Waived: still listed, marked, and the button is enabled.
    waiver = ps.waiver_request(policy=policy, product=draft, by=mesh.owner, justification="soon")
    ps.waiver_decide(
        waiver=waiver,
        by=mesh.council,
        grant=True,
        reason="ok",
        expires_at=timezone.now() + timedelta(days=3),
    )
    confirm = client.get(url).text
    assert "each is waived" in confirm and ">waived</span>" in confirm
    assert "disabled" not in confirm.split('type="submit"')[1][:20]
    assert "blocked</span>" not in client.get(draft.get_absolute_url()).text
    # Fixed: nothing to show at all.
    services.product_update(product=draft, freshness_slo_hours=24)
    Waiver.objects.all().delete()
    assert "publish-gate" not in client.get(url).text
    assert client.post(url).status_code == 302
    assert DataProduct.objects.get(pk=draft.pk).status == "published"


def test_publish_gate_preview_is_for_owners_only(client, mesh):
    active({"key": "slo", "title": "Freshness declared", "rule_type": "freshness"}, mesh.owner)
    Policy.objects.filter(key="slo").update(severity="blocking")
    url = reverse("products:lifecycle", args=["orders", "draft-product", "publish"])
    client.force_login(mesh.member)  # in the team, not an owner: sees the draft, may not publish
    assert "Publishing would be refused" not in client.get("/products/orders/draft-product/").text
    assert client.get(url).status_code == 403
    client.force_login(mesh.other_owner)  # another team: the draft does not exist for them
    assert client.get(url).status_code == 404
