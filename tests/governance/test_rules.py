"""Each rule type: pass, fail and edge cases, evaluated over a product set the way the task does."""

import pytest
from django.core.exceptions import ValidationError

from domains import services as domain_services
from governance.policies import rules
from products import services
from products.models import DataProduct, SchemaField

pytestmark = pytest.mark.django_db


def evaluate(key, product, **params):
    rule = rules.get(key)
    return rule.evaluate(DataProduct.objects.filter(pk=product.pk), rule.clean_params(params)).get(
        product.pk
    )


def make(mesh, slug="p", *, fields=None, kind="table", location="sales.orders", **kw):
    fields = (
        fields
        if fields is not None
        else [{"name": "order_id", "primary_key": True, "description": "Order number"}]
    )
    return services.product_create(
        domain=mesh.orders,
        slug=slug,
        name=slug.title(),
        ports=[
            {"slug": "main", "name": "Main", "kind": kind, "location": location, "fields": fields}
        ],
        **kw,
    )


def test_naming_default_is_snake_case_fields_and_names_each_offender(mesh):
    good = make(mesh, "good", fields=[{"name": "customer_id"}, {"name": "x2"}])
    bad = make(
        mesh, "bad", fields=[{"name": "CustomerID"}, {"name": "last_login"}, {"name": "isActive"}]
    )
    assert evaluate("naming", good) is None
    assert evaluate("naming", bad) == [
        "field `CustomerID` is not snake_case",
        "field `isActive` is not snake_case",
    ]


def test_naming_checks_product_slug_port_and_table_when_asked(mesh):
    p = make(mesh, "Mixed-Case", location="sales.OrderTable")
    reasons = evaluate("naming", p, product_slug_regex=rules.KEBAB_CASE, port_regex=r"^[a-z_-]+$")
    assert reasons == [
        "product slug `Mixed-Case` is not kebab-case",
        "table `OrderTable` of port `main` is not matching ^[a-z_-]+$",
    ]
    # An empty pattern skips that check; a stream port has no table name.
    stream = make(mesh, "stream", kind="stream", location="kafka://Orders.Events")
    assert evaluate("naming", stream, port_regex=r"^[a-z]+$", field_regex="") is None


def test_parameters_are_validated_with_clear_errors():
    with pytest.raises(ValidationError) as e:
        rules.get("naming").clean_params({"field_regex": "([a-z", "colour": 1})
    msgs = e.value.message_dict["parameters"]
    assert any(m.startswith("colour: unknown parameter") for m in msgs)
    assert any(m.startswith("field_regex: Not a valid regular expression") for m in msgs)
    with pytest.raises(ValidationError) as e:
        rules.get("documentation").clean_params({"min_field_description_pct": 150})
    assert "min_field_description_pct" in e.value.message_dict["parameters"][0]
    with pytest.raises(ValidationError) as e:
        rules.get("nonsense")
    assert "rule_type" in e.value.message_dict


def test_documentation_lengths_and_share_of_described_fields(mesh):
    ok = make(mesh, "ok", summary="A long enough summary here", description="d" * 60)
    assert evaluate("documentation", ok) is None
    short = make(
        mesh,
        "short",
        summary="tiny",
        description="",
        fields=[{"name": "a", "description": "yes"}, {"name": "b"}, {"name": "c"}],
    )
    assert evaluate("documentation", short) == [
        "summary has 4 characters, needs 20",
        "description has 0 characters, needs 50",
        "1 of 3 fields have a description (33%), needs 80%",
    ]
    # Edge: a product with no fields has nothing undescribed; 0% turns the share check off.
    empty = make(mesh, "empty", fields=[], summary="s" * 20, description="d" * 50)
    assert evaluate("documentation", empty) is None
    assert (
        evaluate(
            "documentation",
            short,
            min_summary_length=0,
            min_description_length=0,
            min_field_description_pct=0,
        )
        is None
    )


def test_ownership_members_and_contact(mesh):
    p = make(mesh, "owned")  # orders team: owner + member, no contact e-mail
    assert evaluate("ownership", p) == ["owner team Orders Team has no contact e-mail"]
    assert evaluate("ownership", p, min_members=3, require_contact=False) == [
        "owner team Orders Team has 2 member(s), needs 3"
    ]
    domain_services.team_update(team=mesh.orders_team, contact_email="orders@example.com")
    assert evaluate("ownership", p) is None


def test_classification_pii_needs_confidential(mesh):
    p = make(mesh, "pii", fields=[{"name": "email", "pii": True}], classification="internal")
    assert evaluate("classification", p) == [
        "has PII fields but is classified internal; needs at least confidential"
    ]
    assert evaluate("classification", p, pii_min_classification="internal") is None
    services.product_update(product=p, classification="restricted")
    assert evaluate("classification", p) is None
    no_pii = make(mesh, "nopii", classification="public")
    assert evaluate("classification", no_pii) is None


def test_schema_needs_fields_and_primary_key_on_tables_and_views(mesh):
    assert evaluate("schema", make(mesh, "keyed")) is None
    assert evaluate("schema", make(mesh, "nokey", fields=[{"name": "a"}])) == [
        "port `main` has no primary key"
    ]
    assert evaluate("schema", make(mesh, "nofields", fields=[], kind="view")) == [
        "port `main` declares no fields"
    ]
    assert evaluate("schema", make(mesh, "file", fields=[], kind="file")) is None


def test_freshness_declared_and_bounded(mesh):
    assert evaluate("freshness", make(mesh, "none")) == ["no freshness SLO is declared"]
    p = make(mesh, "daily", freshness_slo_hours=48)
    assert evaluate("freshness", p) is None
    assert evaluate("freshness", p, max_hours=24) == ["freshness SLO is 48 h, must be at most 24 h"]


def test_glossary_share_of_linked_fields(mesh):
    from governance.policies import services as policy_services

    term = policy_services.glossary_term_save(slug="order", name="Order", definition="An order.")
    p = make(mesh, "g", fields=[{"name": "order_id"}, {"name": "b"}, {"name": "c"}])
    assert evaluate("glossary", p) == ["0 of 3 fields are linked to glossary terms (0%), needs 50%"]
    for f in SchemaField.objects.filter(port__product=p, name__in=["order_id", "b"]):
        services.field_update(field=f, glossary_term=term)
    assert evaluate("glossary", p) is None
    assert evaluate("glossary", make(mesh, "nofields", fields=[])) is None


def test_lifecycle_deprecated_needs_sunset_and_replacement(mesh):
    dep = mesh.products[("orders", "deprecated")]
    assert evaluate("lifecycle", dep) == [
        "is deprecated without a sunset date",
        "is deprecated without a replacement",
    ]
    DataProduct.objects.filter(pk=dep.pk).update(
        sunset_date="2027-01-01", replacement=mesh.products[("orders", "published")]
    )
    assert evaluate("lifecycle", dep) is None
    assert evaluate("lifecycle", mesh.products[("orders", "published")]) is None


def test_a_new_rule_type_is_one_registered_class(mesh):
    from django import forms
    from django.db.models import Count

    @rules.register
    class HasTags(rules.RuleType):
        key, label = "test-tags", "Tags"

        class Params(forms.Form):
            min_tags = forms.IntegerField(min_value=0, initial=1)

        def evaluate(self, products, params):
            rows = products.annotate(n=Count("tags")).values_list("pk", "n")
            return {pk: [f"has {n} tags"] for pk, n in rows if n < params["min_tags"]}

    try:
        assert ("test-tags", "Tags") in rules.choices()
        assert evaluate("test-tags", make(mesh, "t")) == ["has 0 tags"]
    finally:
        rules._registry.pop("test-tags")


def test_quality_coverage_counts_checks_and_pass_rate(mesh):
    from datetime import timedelta

    from django.utils import timezone

    from governance.models import QualityCheck, QualityRun

    p = make(mesh, "covered")
    port = p.ports.get()
    assert evaluate("quality_coverage", p, min_pass_rate_pct=None) == [
        "port `main` has 0 quality checks, needs 1"
    ]
    check = QualityCheck.objects.create(port=port, name="rows", kind="row_count", params={"min": 1})
    assert evaluate("quality_coverage", p) is None  # a check and no runs yet: nothing to judge
    now = timezone.now()
    for status in ["passed", "failed", "failed"]:
        QualityRun.objects.create(quality_check=check, status=status, finished_at=now, deadline=now)
    # Old runs fall out of the window.
    QualityRun.objects.create(
        quality_check=check, status="passed", finished_at=now - timedelta(days=40), deadline=now
    )
    assert evaluate("quality_coverage", p, min_pass_rate_pct=50, days=30) == [
        "1 of 3 check runs passed in the last 30 days (33%), needs 50%"
    ]
    assert evaluate("quality_coverage", p, min_pass_rate_pct=30, days=30) is None
    # Dashboards and files have no table to check: they need no checks.
    dash = make(mesh, "dash", kind="dashboard", fields=[])
    assert evaluate("quality_coverage", dash) is None
