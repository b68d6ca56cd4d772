"""A council delegate decides a waiver for another team's draft, walked by following links
(issue 20, item 1): the notification leads to the waivers list, the list to the draft's
Governance tab (why it fails), the decision is taken on the page, and afterwards the delegate
still finds the waiver they decided, while the draft is its team's alone again. The API's
list answers as the page does at every step."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from governance.policies import services as ps
from meshportal.models import Notification
from products import services

pytestmark = pytest.mark.django_db


def _text(r) -> str:
    assert r.status_code == 200, r.status_code
    return " ".join(r.text.split())


def _api_waivers(user) -> list[int]:
    c = APIClient()
    c.force_login(user)
    return [w["id"] for w in c.get("/api/v1/waivers/").json()["results"]]


@pytest.fixture
def pending(mesh, django_capture_on_commit_callbacks):
    draft = mesh.products[("orders", "draft")]
    services.product_update(product=draft, name="Zq Returns Draft")
    policy = ps.policy_propose(
        by=mesh.owner,
        key="docs",
        title="Documented",
        rule_type="documentation",
        domain=mesh.orders,
        parameters={"min_summary_length": 400},
    )
    ps.evaluate_policies()
    waiver = ps.waiver_request(
        policy=policy, product=draft, by=mesh.owner, justification="Launch first, docs in Q3"
    )
    return draft, waiver


def test_a_delegate_is_led_from_the_notification_to_the_decision(client, mesh, pending):
    draft, waiver = pending
    delegate = mesh.council
    client.force_login(delegate)
    note = Notification.objects.get(user=delegate, kind="waiver_requested")
    assert "Zq Returns Draft" in note.title
    waivers = _text(client.get(note.url))
    assert "No waivers" not in waivers and "Launch first, docs in Q3" in waivers
    assert _api_waivers(delegate) == [waiver.pk]
    # From the list to the draft's Governance tab: why it fails the policy.
    link = re.search(r'href="([^"]+\?tab=governance)">Zq Returns Draft<', waivers).group(1)
    tab = _text(client.get(link))
    assert "Documented" in tab and "summary has" in tab
    # The decision, on the page.
    future = (timezone.now() + timedelta(days=60)).strftime("%Y-%m-%dT%H:%M")
    r = client.post(
        f"/governance/waivers/{waiver.pk}/decide/",
        {"decision": "grant", "decision_reason": "Until Q3", "expires_at": future},
        follow=True,
    )
    page = _text(r)
    assert "Waiver granted." in page
    # Their decision stays in their list (the page and the API alike), named but no longer
    # linked: the draft is private to its team again.
    assert "Zq Returns Draft" in page and "Until Q3" in page and "No waivers" not in page
    assert f'href="{draft.get_absolute_url()}' not in page
    assert client.get(draft.get_absolute_url()).status_code == 404
    assert _api_waivers(delegate) == [waiver.pk]


def test_a_decided_waiver_stays_private_to_others(client, mesh, pending):
    _, waiver = pending
    ps.waiver_decide(waiver=waiver, by=mesh.council, grant=False, reason="Docs first")
    for who in (mesh.other_owner, mesh.consumer):
        assert _api_waivers(who) == []
        client.force_login(who)
        assert "Zq Returns Draft" not in client.get("/governance/waivers/").text
    assert _api_waivers(mesh.owner) == [waiver.pk]  # the draft's team
