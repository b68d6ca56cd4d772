"""Linking schema fields to glossary terms from the product's Schema tab."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from governance.models import Compliance, DirtyProduct, GlossaryTerm, Policy
from governance.policies import services as ps
from meshportal.models import AuditEntry
from products import services
from products.models import SchemaField

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def term(db):
    return ps.glossary_term_save(
        name="Lifetime value",
        slug="lifetime-value",
        definition="What a customer is worth.",
        synonyms="CLV, customer worth",
        status="approved",
    )


def _found(user, q: str) -> list[str]:
    from products.discovery import facets as discovery

    return [p.name for p in discovery.search(user=user, data={"q": q}).queryset]


def _link_url(field):
    product = field.port.product
    return reverse("governance:field_glossary", args=[product.domain.slug, product.slug, field.pk])


def test_owner_links_a_field_which_reindexes_search_and_reevaluates_policies(
    client, mesh, term, monkeypatch, django_capture_on_commit_callbacks
):

    product = mesh.products[("orders", "published")]
    field = product.ports.get().fields.get()
    policy = Policy.objects.create(
        key="linked", title="Fields are linked", rule_type="glossary", status="active"
    )
    ps.evaluate_policies()
    assert Compliance.objects.get(policy=policy, product=product).outcome == "fail"
    DirtyProduct.objects.all().delete()
    scheduled = []
    monkeypatch.setattr(  # the one enqueue (meshportal.queue) hands it to the broker
        "meshportal.queue._publish",
        lambda name, args, kwargs, options: scheduled.append((name, options["countdown"])),
    )
    client.force_login(mesh.owner)
    page = client.get(product.get_absolute_url() + "?tab=schema").text
    assert 'aria-label="Glossary term for order_id"' in page
    with django_capture_on_commit_callbacks(execute=True):
        resp = client.post(_link_url(field), {"term": "lifetime-value"}, **HTMX)
    assert resp.status_code == 200
    assert f'href="{term.get_absolute_url()}">Lifetime value</a>' in resp.text
    assert "Unlink" in resp.text
    assert SchemaField.objects.get(pk=field.pk).glossary_term == term
    assert AuditEntry.objects.filter(
        content_type__model="schemafield", object_id=str(field.pk), action="update"
    ).exists()
    # The debounced evaluation is scheduled, and when it runs the glossary rule passes.
    evaluations = [
        c for name, c in scheduled if name == "governance.tasks.evaluate_changed_products"
    ]
    assert DirtyProduct.objects.filter(product=product).exists() and len(evaluations) == 1
    ps.evaluate_changed_products()
    assert Compliance.objects.get(policy=policy, product=product).outcome == "pass"
    # Search finds the product by the term's synonym at once.
    assert _found(mesh.consumer, "CLV") == ["Orders published"]
    client.force_login(mesh.consumer)
    assert "Lifetime value" in client.get(product.get_absolute_url() + "?tab=schema").text
    # Unlink (plain form post, no JavaScript): back to the tab, and the search forgets it.
    client.force_login(mesh.owner)
    resp = client.post(_link_url(field), {"action": "unlink", "term": "x"}, follow=True)
    assert "Unlinked order_id from the glossary" in resp.text
    assert SchemaField.objects.get(pk=field.pk).glossary_term is None
    assert _found(mesh.consumer, "CLV") == []


def test_link_by_name_and_refusals_are_shown_in_place(client, mesh, term):
    field = mesh.products[("orders", "draft")].ports.get().fields.get()
    client.force_login(mesh.member)  # team members edit, so they link too
    resp = client.post(_link_url(field), {"term": "lifetime VALUE"}, **HTMX)
    assert SchemaField.objects.get(pk=field.pk).glossary_term == term
    resp = client.post(_link_url(field), {"term": "no-such-term"}, **HTMX)
    assert "No glossary term “no-such-term”." in resp.text and 'aria-invalid="true"' in resp.text
    assert SchemaField.objects.get(pk=field.pk).glossary_term == term  # unchanged
    GlossaryTerm.objects.filter(pk=term.pk).update(status="deprecated")
    services.field_update(field=field, glossary_term=None)
    resp = client.post(_link_url(field), {"term": "lifetime-value"}, **HTMX)
    assert "is deprecated; link a current term" in resp.text
    assert SchemaField.objects.get(pk=field.pk).glossary_term is None


def test_non_owners_are_refused(client, mesh, term):
    published = mesh.products[("orders", "published")].ports.get().fields.get()
    draft = mesh.products[("orders", "draft")].ports.get().fields.get()
    client.force_login(mesh.consumer)
    assert client.post(_link_url(published), {"term": "lifetime-value"}).status_code == 403
    assert client.post(_link_url(draft), {"term": "lifetime-value"}).status_code == 404
    client.force_login(mesh.other_owner)  # owns another domain
    assert client.post(_link_url(published), {"term": "lifetime-value"}).status_code == 403
    assert not SchemaField.objects.filter(glossary_term=term).exists()
    # Viewers see the links but no form.
    page = client.get(mesh.products[("orders", "published")].get_absolute_url() + "?tab=schema")
    assert "Glossary term for" not in page.text
    # A field of another product is not reachable through this product's URL.
    other = mesh.products[("users", "published")].ports.get().fields.get()
    url = reverse("governance:field_glossary", args=["users", "published-product", published.pk])
    assert client.post(url, {"term": "lifetime-value"}).status_code == 404
    assert other.glossary_term_id is None
    client.logout()
    assert client.post(_link_url(published), {"term": "lifetime-value"}).status_code == 302


def test_suggestions_find_terms_by_name_and_synonym(client, mesh, term):
    ps.glossary_term_save(name="Old term", slug="old", definition="x", status="deprecated")
    client.force_login(mesh.consumer)
    for query in ("lifet", "clv"):
        resp = client.get(reverse("governance:term_suggest"), {"term": query}, **HTMX)
        assert '<option value="lifetime-value">Lifetime value (also CLV, customer worth)' in (
            resp.text
        ), query
    assert "old" not in client.get(reverse("governance:term_suggest"), {"term": "old"}).text
    assert client.get(reverse("governance:term_suggest")).text.strip() == ""


def _schema_queries(client, product) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(product.get_absolute_url() + "?tab=schema").status_code == 200
    return len(ctx.captured_queries)


def test_schema_tab_query_count_does_not_grow_with_fields(client, mesh, term):
    product = mesh.products[("orders", "draft")]
    client.force_login(mesh.owner)
    _schema_queries(client, product)  # warm per-process caches
    small = _schema_queries(client, product)
    port = product.ports.get()
    for i in range(30):
        f = services.field_create(port=port, name=f"extra_{i}", logical_type="string")
        if i % 2:
            services.field_update(field=f, glossary_term=term)
    assert _schema_queries(client, product) == small
    assert small <= 20
