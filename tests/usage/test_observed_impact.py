"""Observed edges in impact analysis (`?observed=1`): the impact page, its JSON, the Lineage
tab's checkbox and the deprecate page; a draft the user may not see is never in the answer.

    orders/published ──(observed: svc_users writes crm.users from sales.orders)──▶ users/published
    users/published ──(declared)──▶ users/deprecated
    orders/published ──(observed)──▶ users/draft (the users team's draft) ──(declared)──▶ orders/f
"""

import pytest

from products.lineage import graph as lineage
from products.lineage import services as lineage_services
from products.models import OutputPort
from tests.lineage.conftest import make_product
from tests.usage.conftest import INGEST, bearer, event

pytestmark = pytest.mark.django_db

ORDERS = "/products/orders/published-product"


@pytest.fixture
def observed(usage_mesh):
    m = usage_mesh
    m.users_draft = m.products[("users", "draft")]
    OutputPort.objects.filter(product=m.users_draft).update(
        data_source=m.source, location="crm.drafts"
    )
    m.users_deprecated = m.products[("users", "deprecated")]
    lineage_services.input_port_create(
        product=m.users_deprecated, by=m.other_owner, source_port=m.users_product.ports.get()
    )
    m.f = make_product(m.orders, "f")
    lineage_services.input_port_create(
        product=m.f, by=m.staff, source_port=m.users_draft.ports.get()
    )
    batch = {
        "events": [
            event("svc_users", "INSERT INTO crm.users SELECT * FROM sales.orders"),
            event("svc_users", "INSERT INTO crm.drafts SELECT order_id FROM sales.orders"),
        ]
    }
    assert bearer(m.staff).post(INGEST, batch, format="json").status_code == 201
    return m


def _labels(result) -> dict[str, tuple[list[str], bool]]:
    return {i.label: (i.path, i.observed) for i in result.items}


def test_declared_only_by_default(observed):
    m = observed
    assert lineage.impact(user=m.staff, product=m.orders_product).items == []


def test_observed_edges_reach_and_are_marked(observed):
    m = observed
    got = _labels(lineage.impact(user=m.staff, product=m.orders_product, observed=True))
    assert got == {
        "users/published-product": (["orders/published-product", "users/published-product"], True),
        "users/draft-product": (["orders/published-product", "users/draft-product"], True),
        "users/deprecated-product": (
            ["orders/published-product", "users/published-product", "users/deprecated-product"],
            True,
        ),
        "orders/f": (["orders/published-product", "users/draft-product", "orders/f"], True),
    }


def test_a_declared_path_wins_and_is_not_marked(observed):
    m = observed
    lineage_services.input_port_create(
        product=m.users_product, by=m.other_owner, source_port=m.orders_product.ports.get()
    )
    got = _labels(lineage.impact(user=m.staff, product=m.orders_product, observed=True))
    assert got["users/published-product"] == (
        ["orders/published-product", "users/published-product"],
        False,
    )
    assert got["users/deprecated-product"][1] is False
    assert got["users/draft-product"][1] is True


def test_a_hidden_draft_is_answered_as_if_it_did_not_exist(observed, client):
    m = observed
    client.force_login(m.consumer)
    data = client.get(f"{ORDERS}/lineage/impact.json?observed=1").json()
    assert data["observed_included"] is True
    assert {p["product"]: p["observed"] for p in data["products"]} == {
        "users/published-product": True,
        "users/deprecated-product": True,
    }  # no users draft, and no orders/f, reached only through it
    page = client.get(f"{ORDERS}/lineage/impact/?observed=1").text
    assert "users/draft-product" not in page and "Users draft" not in page
    assert "orders/f" not in page
    # its own team sees it
    client.force_login(m.other_owner)
    data = client.get(f"{ORDERS}/lineage/impact.json?observed=1").json()
    assert {"users/draft-product", "orders/f"} <= {p["product"] for p in data["products"]}


def test_the_impact_page_has_the_checkbox_and_marks_observed(observed, client):
    client.force_login(observed.consumer)
    page = client.get(f"{ORDERS}/lineage/impact/").text
    assert 'name="observed"' in page and "No product depends on" in page
    page = client.get(f"{ORDERS}/lineage/impact/?observed=1").text
    row = page.split(">Users published</a>")[1].split("</tr>")[0]
    assert ">observed<" in row
    assert 'id="impact-observed" checked' in page


def test_the_lineage_tab_asks_for_observed_impact(observed, client):
    client.force_login(observed.consumer)
    page = client.get(f"{ORDERS}/?tab=lineage&observed=1").text
    assert f'hx-get="{ORDERS}/lineage/impact/?observed=1"' in page
    assert "Include dependencies observed in query logs" in page
    page = client.get(f"{ORDERS}/?tab=lineage").text
    assert f'hx-get="{ORDERS}/lineage/impact/"' in page


def test_port_impact_follows_observed_edges_of_that_port_only(observed):
    m = observed
    from products import services

    extra = services.port_create(product=m.orders_product, slug="extra", name="Extra", kind="table")
    result = lineage.impact(user=m.staff, product=m.orders_product, port=extra, observed=True)
    assert result.items == []
    main = m.orders_product.ports.get(slug="main")
    result = lineage.impact(user=m.staff, product=m.orders_product, port=main, observed=True)
    assert "users/published-product" in _labels(result)


def test_the_deprecate_page_lists_observed_consumers_when_asked(observed, client):
    client.force_login(observed.owner)
    page = client.get(f"{ORDERS}/deprecate/").text
    assert "Include dependencies observed in query logs" in page
    assert "users/published-product" not in page
    page = client.get(f"{ORDERS}/deprecate/?observed=1").text
    assert "users/published-product" in page and ">observed<" in page
