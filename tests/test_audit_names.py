"""Issue 20 item 7: audit diffs name what they reference, and the admin shows a table."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from meshportal import audit
from meshportal.models import AuditEntry
from tests.factories import PASSWORD


def _entries_with(key):
    return [e for e in AuditEntry.objects.all() if isinstance((e.changes or {}).get(key), list)]


def test_the_activity_tab_names_the_product_not_its_id(client, mesh):
    product = mesh.products[("orders", "published")]
    assert _entries_with("product"), "the mesh's ports are audited with their product"
    client.login(username=mesh.owner.username, password=PASSWORD)
    html = client.get(product.get_absolute_url() + "?tab=activity").content.decode()
    assert f'<code>product</code>: <span class="diff-new">{product}</span>' in html
    assert f'<span class="diff-new">{product.pk}</span>' not in html


def test_names_are_resolved_in_one_query_per_model_not_per_row(mesh):
    entries = list(AuditEntry.objects.all())
    assert len(_entries_with("product")) >= 4
    with CaptureQueriesContext(connection) as ctx:
        named = audit.with_names(entries)
    models = {e.content_type.model_class() for e in entries}
    assert len(ctx.captured_queries) <= len(models)
    for e in named:
        values = (e.changes or {}).get("product")
        if isinstance(values, list):
            assert not any(isinstance(v, int) for v in values)


def test_a_deleted_reference_says_so(mesh):
    from products import services

    product = mesh.products[("orders", "draft")]
    entry = next(e for e in _entries_with("product") if product.pk in e.changes["product"])
    pk = product.pk
    services.product_delete(product=product)
    (named,) = audit.with_names([AuditEntry.objects.get(pk=entry.pk)])
    assert f"#{pk} (deleted)" in named.changes["product"]


def test_the_admin_change_page_shows_the_diff_as_a_table(client, mesh):
    product = mesh.products[("orders", "published")]
    entry = next(e for e in _entries_with("product") if product.pk in e.changes["product"])
    client.login(username=mesh.staff.username, password=PASSWORD)
    html = client.get(f"/admin/meshportal/auditentry/{entry.pk}/change/").content.decode()
    assert "<th scope='col'>Before</th>" in html or '<th scope="col">Before</th>' in html
    assert f"<td>{product}</td>" in html
    assert '{"product"' not in html


@pytest.mark.parametrize("tab", ["activity"])
def test_hidden_locations_stay_hidden(client, mesh, tab):
    product = mesh.products[("orders", "published")]
    client.login(username=mesh.consumer.username, password=PASSWORD)
    html = client.get(product.get_absolute_url() + f"?tab={tab}").content.decode()
    assert "sales.secret_table" not in html


def test_derived_search_columns_stay_out_of_the_log(mesh):
    """The search vector and the stored facet values are derived, not the owner's edits: no
    audit entry carries them (a deletion logged the whole vector on PostgreSQL)."""
    from products import services
    from products.models import DataProduct

    product = mesh.products[("orders", "published")]
    with audit.audit_context(door="command"):
        services.product_update(
            product=DataProduct.objects.get(pk=product.pk), summary="Changed", tags=["x"]
        )
        services.product_delete(product=DataProduct.objects.get(pk=product.pk))
    entries = AuditEntry.objects.filter(object_id=str(product.pk))
    assert {"update", "delete"} <= set(entries.values_list("action", flat=True))
    for entry in entries:
        assert not set(entry.changes or {}) & DataProduct.DERIVED, entry.changes
