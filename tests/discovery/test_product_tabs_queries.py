"""The product page loads schema fields only for tabs that show them, and every tab stays
within a fixed query budget whatever the product's size."""

import pytest

from meshportal.audit import audit_context
from products import services
from products.tabs import tabs

URL = "/products/orders/published-product/"


def _widen(mesh, n: int) -> None:
    """n more fields on the product's port and n audit entries on it (activity grows)."""
    product = mesh.products[("orders", "published")]
    port = product.ports.get()
    with audit_context(door="command"):
        services.fields_create(
            port=port, fields=[{"name": f"wide_{i}", "logical_type": "string"} for i in range(n)]
        )
        for i in range(n):
            services.product_update(product=product, summary=f"summary {i}")


def test_overview_does_not_load_schema_fields(client, mesh, django_assert_max_num_queries):
    client.force_login(mesh.owner)
    with django_assert_max_num_queries(20) as captured:
        r = client.get(URL)
    assert r.status_code == 200
    assert not any("products_schemafield" in q["sql"] for q in captured.captured_queries)


def test_schema_tab_shows_the_fields(client, mesh):
    client.force_login(mesh.consumer)
    r = client.get(URL, {"tab": "schema"})
    assert r.status_code == 200
    assert "order_id" in r.text


TABS = [
    "overview",
    "schema",
    "ports",
    "access",
    "quality",
    "governance",
    "lineage",
    "contract",
    "usage",
    "activity",
]


def test_the_list_covers_every_tab(client, mesh):
    client.force_login(mesh.owner)
    client.get(URL)  # the URLconf (and with it every app's tab) is loaded
    assert sorted(t.key for t in tabs()) == sorted(TABS)


@pytest.mark.parametrize("tab", TABS)
def test_every_tab_has_a_fixed_query_budget(client, mesh, tab, django_assert_max_num_queries):
    client.force_login(mesh.owner)
    with django_assert_max_num_queries(20) as small:
        assert client.get(URL, {"tab": tab}).status_code == 200
    _widen(mesh, 12)
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert client.get(URL, {"tab": tab}).status_code == 200


def test_a_consumer_sees_no_draft_on_any_tab(client, mesh):
    client.force_login(mesh.consumer)
    for t in tabs():
        r = client.get("/products/orders/draft-product/", {"tab": t.key})
        assert r.status_code == 404


@pytest.mark.parametrize("tab", ["overview", "schema"])
def test_the_page_shows_the_products_tags_in_order_without_a_query_of_their_own(
    client, mesh, settings, tab
):
    """Its tags, by slug, linked to their pages; on PostgreSQL read in the product's own
    statement (no statement reads products_tag on its own)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    product = mesh.products[("orders", "published")]
    with audit_context(door="command"):
        services.product_update(product=product, tags=["Zeta", "alpha", "Mid tag"])
    client.force_login(mesh.consumer)
    with CaptureQueriesContext(connection) as captured:
        r = client.get(URL, {"tab": tab})
    assert r.status_code == 200
    if tab == "overview":  # where the tags are shown
        shown = [r.text.index(f'href="/tags/{slug}/"') for slug in ("alpha", "mid-tag", "zeta")]
        assert shown == sorted(shown)
        assert "Mid tag" in r.text
    assert [t.slug for t in r.context["product"].tags.all()] == ["alpha", "mid-tag", "zeta"]
    alone = [q for q in captured.captured_queries if 'FROM "products_tag"' in q["sql"]]
    assert not alone if settings.IS_POSTGRES else len(alone) == 1


def test_the_overview_names_the_teams_owners_without_a_query_of_their_own(client, mesh, settings):
    """Every owner of the product's team (members are not), by user name, with their full
    name where they have one and a link to write to them; on PostgreSQL read in the product's
    own statement, so that the team's memberships are never read on their own."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from domains import services as domain_services

    users = get_user_model().objects
    named = users.create_user("aaron", first_name="Aaron", last_name="Ames", email="a@x.example")
    plain = users.create_user("zed")  # no name, no address
    for user in (named, plain):
        domain_services.membership_set(team=mesh.orders_team, user=user, role="owner")
    client.force_login(mesh.consumer)
    with CaptureQueriesContext(connection) as captured:
        r = client.get(URL)
    start = r.text.index(">", r.text.index('id="owners"')) + 1
    owners = r.text[start : r.text.index("</dd>", start)]
    shown = [owners.index(name) for name in ("Aaron Ames", mesh.owner.username, "zed")]
    assert shown == sorted(shown)
    assert 'href="mailto:a@x.example"' in owners
    assert mesh.member.username not in owners
    alone = [q for q in captured.captured_queries if 'FROM "domains_membership"' in q["sql"]]
    members = [q for q in alone if '"domains_membership"."role" =' in q["sql"]]
    assert not members if settings.IS_POSTGRES else len(members) == 1
