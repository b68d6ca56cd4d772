"""Issue 20 item 8: a policy's parameters are fields of their own (`param_<name>`, the chosen
rule type's), each error next to its field, instead of a JSON text box."""

import pytest
from django.urls import reverse

from governance.models import Policy

pytestmark = pytest.mark.django_db


def _post(client, **fields):
    data = {"key": "p1", "title": "P1", "severity": "advisory", **fields}
    return client.post(reverse("governance:policy_propose"), data)


def test_the_chosen_rule_types_parameters_are_fields_with_defaults(client, mesh):
    client.force_login(mesh.owner)
    page = client.get(reverse("governance:policy_propose"), {"rule_type": "documentation"})
    assert page.status_code == 200
    text = page.text
    assert 'name="param_min_summary_length"' in text and 'value="20"' in text
    assert 'name="param_min_field_description_pct"' in text
    assert 'name="param_max_hours"' not in text  # another rule type's parameter
    assert 'name="parameters"' not in text  # no JSON box any more
    assert 'hx-trigger="change from:#id_rule_type"' in text


def test_a_bad_parameter_is_flagged_next_to_its_field_and_nothing_is_saved(client, mesh):
    client.force_login(mesh.owner)
    r = _post(
        client,
        rule_type="documentation",
        params_for="documentation",
        param_min_summary_length="-1",
        param_min_description_length="50",
        param_min_field_description_pct="120",
    )
    assert r.status_code == 200
    assert 'id="id_param_min_summary_length-error"' in r.text
    assert 'id="id_param_min_field_description_pct-error"' in r.text
    assert not Policy.objects.exists()


def test_fields_are_saved_as_the_policys_parameters_unchecked_box_included(client, mesh):
    client.force_login(mesh.owner)
    r = _post(client, rule_type="ownership", params_for="ownership", param_min_members="3")
    assert r.status_code == 302
    assert Policy.objects.get(key="p1").parameters == {"min_members": 3, "require_contact": False}


def test_changing_the_rule_type_without_js_shows_its_fields_and_saves_nothing(client, mesh):
    client.force_login(mesh.owner)
    r = _post(
        client, rule_type="freshness", params_for="documentation", param_min_summary_length="5"
    )
    assert r.status_code == 200
    assert 'id="params-switched"' in r.text and 'name="param_max_hours"' in r.text
    assert 'name="param_min_summary_length"' not in r.text
    assert 'name="params_for" value="freshness"' in r.text
    assert not Policy.objects.exists()
    r = _post(client, rule_type="freshness", params_for="freshness", param_max_hours="24")
    assert r.status_code == 302
    assert Policy.objects.get(key="p1").parameters == {"max_hours": 24}


def test_a_post_without_the_fields_gets_the_defaults(client, mesh):
    client.force_login(mesh.owner)
    assert _post(client, rule_type="glossary").status_code == 302
    assert Policy.objects.get(key="p1").parameters == {"min_linked_pct": 50}


def test_a_consumer_still_may_not_propose(client, mesh):
    client.force_login(mesh.consumer)
    assert _post(client, rule_type="glossary", params_for="glossary").status_code == 403
    assert not Policy.objects.exists()
