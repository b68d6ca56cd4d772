"""Words built from values read as English (issue 20, item 10): past tenses of the status verbs
("Waiver denied", not "denyed"), plurals ("Watches", "1 field"), and a documentation policy's
advice that does not ask for "at least 0%" of anything."""

import pytest
from django.urls import reverse

from governance.policies import rules
from governance.policies import services as ps
from meshportal.text import past_tense, plural
from products import services

pytestmark = pytest.mark.django_db


def test_past_tenses_and_plurals():
    assert [past_tense(v) for v in ("grant", "deny", "publish", "retire", "Deprecate")] == [
        "granted",
        "denied",
        "published",
        "retired",
        "Deprecated",
    ]
    assert [past_tense(v) for v in ("approve", "reject", "apply")] == [
        "approved",
        "rejected",
        "applied",
    ]
    assert plural(1, "field") == "1 field" and plural(3, "field") == "3 fields"
    assert plural(2, "policy") == "2 policies" and plural(2, "watch") == "2 watches"


def test_a_council_delegate_denies_a_waiver_and_reads_waiver_denied(
    client, mesh, django_capture_on_commit_callbacks
):
    draft = mesh.products[("orders", "draft")]
    policy = ps.policy_propose(
        by=mesh.owner, key="names", title="Snake", rule_type="naming", domain=mesh.orders
    )
    waiver = ps.waiver_request(policy=policy, product=draft, by=mesh.owner, justification="x")
    client.force_login(mesh.council)
    r = client.post(
        reverse("governance:waiver_decide", args=[waiver.pk]),
        {"decision": "deny", "decision_reason": "Fix the names first."},
        follow=True,
    )
    assert "Waiver denied." in r.text and "denyed" not in r.text


def test_votes_read_in_the_past_tense(client, mesh, settings):
    settings.MESH_POLICY_QUORUM = 2
    policy = ps.policy_propose(by=mesh.owner, key="g", title="Global", rule_type="naming")
    ps.policy_vote(policy=policy, by=mesh.council, decision="approve")
    client.force_login(mesh.consumer)
    text = " ".join(client.get(policy.get_absolute_url()).text.split())
    assert "council</strong> approved" in text and "approves" not in text


def test_the_console_names_its_lists_in_plural(client, mesh):
    client.force_login(mesh.staff)
    text = client.get(reverse("admin:index")).text
    assert "Watches" in text and "Watchs" not in text
    from governance.models import PolicyRunSummary, ProductQuality

    assert PolicyRunSummary._meta.verbose_name_plural == "policy run summaries"
    assert ProductQuality._meta.verbose_name_plural == "product quality"


def test_a_documentation_policy_asks_only_what_its_parameters_set(client, mesh):
    rule = rules.get("documentation")
    hint = rule.fix_hint(
        {"min_summary_length": 500, "min_description_length": 0, "min_field_description_pct": 0}
    )
    assert hint == "Write a summary of at least 500 characters."
    assert "every field" in rule.fix_hint(
        {"min_summary_length": 0, "min_description_length": 0, "min_field_description_pct": 100}
    )
    # On the product's Governance tab, where its owner reads it.
    product = mesh.products[("orders", "published")]
    services.product_update(product=product, summary="short")
    ps.policy_propose(
        by=mesh.owner,
        key="docs",
        title="Documented",
        rule_type="documentation",
        domain=mesh.orders,
        parameters={"min_summary_length": 500, "min_field_description_pct": 0},
    )
    ps.evaluate_policies()
    client.force_login(mesh.owner)
    text = " ".join(client.get(product.get_absolute_url() + "?tab=governance").text.split())
    assert (
        "To fix: Write a summary of at least 500 characters and a description of at least" in text
    )
    assert "0%" not in text
