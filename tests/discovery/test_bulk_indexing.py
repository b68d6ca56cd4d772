"""Bulk paths: `fields_create` (many fields, one INSERT, same rules and audit as one by one) and
`search.deferred_indexing()` (one search document per product at the end of a bulk block)."""

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError

from meshportal.audit import AuditEntry, audit_context
from products import services
from products.discovery.search import deferred_indexing, search_products
from products.models import DataProduct, SchemaField


def _fields(n: int, prefix: str = "col") -> list[dict]:
    return [{"name": f"{prefix}_{i}", "logical_type": "string", "ordinal": i} for i in range(n)]


def test_fields_create_writes_every_field_with_its_audit_entry(mesh):
    port = mesh.products[("orders", "draft")].ports.get()
    with audit_context(door="command"):
        created = services.fields_create(port=port, fields=_fields(5))
    assert [f.name for f in created] == [f"col_{i}" for i in range(5)]
    assert set(port.fields.values_list("name", flat=True)) >= {f"col_{i}" for i in range(5)}
    entries = AuditEntry.objects.filter(action="create", object_repr__contains="col_")
    assert entries.count() == 5


def test_fields_create_refuses_a_taken_or_repeated_name_and_writes_nothing(mesh):
    port = mesh.products[("orders", "draft")].ports.get()  # has order_id
    before = SchemaField.objects.count()
    with pytest.raises(ValidationError, match="already exists"):
        services.fields_create(port=port, fields=[{"name": "new_one"}, {"name": "order_id"}])
    with pytest.raises(ValidationError, match="already exists"):
        services.fields_create(port=port, fields=[{"name": "twice"}, {"name": "twice"}])
    with pytest.raises(ValidationError):
        services.fields_create(port=port, fields=[{"name": "ok"}, {"name": "x" * 500}])
    assert SchemaField.objects.count() == before


def test_fields_create_queries_do_not_grow_with_the_fields(mesh, django_assert_max_num_queries):
    port = mesh.products[("orders", "draft")].ports.get()
    with audit_context(door="command"), django_assert_max_num_queries(25):
        services.fields_create(port=port, fields=_fields(40))
    assert port.fields.count() == 41


def test_product_create_with_many_fields_in_a_fixed_number_of_queries(
    mesh, django_assert_max_num_queries
):
    port = {"slug": "wide", "name": "Wide", "kind": "table", "fields": _fields(60)}
    with (
        audit_context(door="command"),
        django_assert_max_num_queries(75),
    ):  # ~7 per field before: 400+
        p = services.product_create(domain=mesh.orders, slug="wide", name="Wide", ports=[port])
    assert p.ports.get().fields.count() == 60


@pytest.mark.postgres
@pytest.mark.skipif(not settings.IS_POSTGRES, reason="SQLite searches live, without an index")
def test_deferred_indexing_indexes_once_at_the_end(mesh):
    visible = DataProduct.objects.all()
    port = mesh.products[("orders", "draft")].ports.get()
    with deferred_indexing():
        with audit_context(door="command"):
            services.fields_create(port=port, fields=[{"name": "zebrafish_count"}])
        # inside the block the document is not rebuilt yet
        assert not search_products(visible, "zebrafish").filter(pk=port.product_id).exists()
        with deferred_indexing():  # a nested block joins the outer one
            services.field_create(port=port, name="quokka_total")
        assert not search_products(visible, "quokka").filter(pk=port.product_id).exists()
    assert search_products(visible, "zebrafish").filter(pk=port.product_id).exists()
    assert search_products(visible, "quokka").filter(pk=port.product_id).exists()


@pytest.mark.postgres
@pytest.mark.skipif(not settings.IS_POSTGRES, reason="SQLite searches live, without an index")
def test_deferred_indexing_after_an_error_indexes_nothing_and_ends(mesh):
    port = mesh.products[("orders", "draft")].ports.get()
    with pytest.raises(RuntimeError), deferred_indexing():
        services.field_create(port=port, name="narwhal_weight")
        raise RuntimeError("boom")
    assert not search_products(DataProduct.objects.all(), "narwhal").exists()
    services.field_create(port=port, name="okapi_height")  # indexed at once again
    assert search_products(DataProduct.objects.all(), "okapi").exists()
