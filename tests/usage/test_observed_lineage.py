"""Observed lineage on the Lineage tab: used but undeclared (with "declare this input"),
declared and used, declared but unused for 30 days."""

import pytest

from products.lineage import services as lineage_services
from products.models import InputPort
from tests.usage.conftest import INGEST, bearer, event

pytestmark = pytest.mark.django_db

LINEAGE = "/products/users/published-product/?tab=lineage"


@pytest.fixture
def observed(usage_mesh):
    """users/published-product (crm.users) is written from orders' sales.orders."""
    m = usage_mesh
    batch = {"events": [event("svc_users", "INSERT INTO crm.users SELECT * FROM sales.orders")]}
    assert bearer(m.staff).post(INGEST, batch, format="json").status_code == 201
    return m


def test_used_but_undeclared_is_shown_with_declare_for_the_team(observed, client):
    m = observed
    client.force_login(m.other_owner)
    page = client.get(LINEAGE).text
    assert "Observed in query logs" in page
    assert "used but undeclared" in page and "Declare this input" in page
    r = client.post(
        "/products/users/published-product/lineage/inputs/add/",
        {
            "source": "orders/published-product/main",
            "description": "Declared from observed queries.",
        },
    )
    assert r.status_code == 302
    assert InputPort.objects.filter(
        product=m.users_product, source_product=m.orders_product
    ).exists()
    page = client.get(LINEAGE).text
    assert "used but undeclared" not in page and ">declared<" in page


def test_others_see_the_observed_edge_without_the_declare_button(observed, client):
    client.force_login(observed.consumer)
    page = client.get(LINEAGE).text
    assert "used but undeclared" in page and "Declare this input" not in page


def test_declared_but_unused_for_30_days(observed, client):
    m = observed
    deprecated = m.products[("orders", "deprecated")]
    lineage_services.input_port_create(
        product=m.users_product, by=m.other_owner, source_port=deprecated.ports.get()
    )
    client.force_login(m.other_owner)
    page = client.get(LINEAGE).text
    assert "Declared but unused for 30 days" in page
    assert "orders/deprecated-product/main" in page


def test_no_section_without_observed_writes(usage_mesh, client):
    client.force_login(usage_mesh.owner)
    assert "Observed in query logs" not in client.get(LINEAGE).text
