"""A domain team gives its new product quality checks without the platform team (issue 20,
item 2): the product form's ports take a data source, typed by name with suggestions offered
only among those the platform team opened to the product's team, shown by name and kind only
(where the data lives stays private).
Walked as the platform team (registering sources) and an orders team member (the product)."""

import pytest

from governance.models import DataSource, QualityCheck
from products.models import DataProduct
from tests.test_self_serve import _form

pytestmark = pytest.mark.django_db


@pytest.fixture
def sources(client, mesh):
    """Registered on the portal's Data sources page by the platform team: one open to every
    team, one only for the users team."""
    client.force_login(mesh.staff)
    base = {"kind": "sqlite", "max_timeout_seconds": "300", "options": "{}"}
    for slug, name, db, teams in (
        ("lake", "Lake", "/srv/secret-lake.sqlite3", []),
        ("users-wh", "Users warehouse", "/srv/users-only.sqlite3", [mesh.users_team.pk]),
    ):
        r = client.post(
            "/quality/sources/",
            {**base, "slug": slug, "name": name, "database": db, "teams": teams},
        )
        assert r.status_code == 302, r.content
    listed = " ".join(client.get("/quality/sources/").text.split())
    assert "<td>every team</td>" in listed and "<td>Users Team</td>" in listed
    client.logout()
    return DataSource.objects.get(slug="lake"), DataSource.objects.get(slug="users-wh")


def _with_source(source, location="main.t_known"):
    data = _form(name="Order checks", ports=[{"name": "Events", "location": location}])
    data["ports-0-data_source"] = source.name if source else ""
    return data


def _suggested(client, url: str, typed: str = "", field: str = "ports-0-data_source"):
    """What the picker lists for `typed`: (value, label) of each <option> htmx swaps in."""
    import re

    r = client.get(url, {field: typed})
    assert r.status_code == 200, r.status_code
    return r.text, re.findall(r'<option value="([^"]*)">([^<]*)</option>', r.text)


def test_a_member_picks_a_data_source_open_to_the_team_and_can_add_checks(client, mesh, sources):
    lake, users_wh = sources
    assert list(users_wh.teams.all()) == [mesh.users_team]
    client.force_login(mesh.member)
    page = client.get("/domains/orders/products/new/").text
    assert 'name="ports-__prefix__-data_source"' in page  # the "Add port" template has it too
    # A type-ahead picker: the port's input asks as one types and fills its own list.
    picker = 'hx-get="/domains/orders/products/new/data-sources/"'
    assert picker in page and 'list="id_ports-__prefix__-data_source-options"' in page
    assert '<datalist id="id_ports-__prefix__-data_source-options">' in page
    assert "Users warehouse" not in page and "secret-lake" not in page

    url = "/domains/orders/products/new/data-sources/"
    text, options = _suggested(client, url)
    assert options == [("Lake", "SQLite")]  # not the users team's; by name and kind only
    assert "secret-lake" not in text and "lake.sqlite3" not in text
    assert _suggested(client, url, "lak")[1] == [("Lake", "SQLite")]
    assert _suggested(client, url, "users")[1] == []  # kept for the users team: not offered
    assert _suggested(client, url, "LAKE", field="ports-3-data_source")[1] == [("Lake", "SQLite")]

    r = client.post("/domains/orders/products/new/", _with_source(lake))
    assert r.status_code == 302, r.content
    product = DataProduct.objects.get(slug="order-checks")
    port = product.ports.get()
    assert port.data_source == lake

    # The editor shows the chosen source again, by name; its picker asks for this product.
    edit = client.get(f"/products/orders/{product.slug}/edit/").text
    assert 'name="ports-0-data_source" value="Lake"' in " ".join(edit.split())
    edit_url = f"/products/orders/{product.slug}/edit/data-sources/"
    assert f'hx-get="{edit_url}"' in edit
    assert _suggested(client, edit_url, "la")[1] == [("Lake", "SQLite")]
    # The quality form now offers the port.
    checks = client.get(f"/quality/products/orders/{product.slug}/checks/new/")
    assert checks.status_code == 200 and f'value="{port.pk}"' in checks.text
    r = client.post(
        f"/quality/products/orders/{product.slug}/checks/new/",
        {
            "port": port.pk,
            "name": "Has rows",
            "kind": "row_count",
            "min": "1",
            "interval_minutes": "60",
        },
    )
    assert r.status_code == 302, r.content
    assert QualityCheck.objects.filter(port=port, name="Has rows").exists()


def test_the_picker_answers_only_those_who_may_fill_the_form(client, mesh, sources):
    """The users team's owner is offered its own source; a consumer, who may not create or
    edit orders products, gets no list at all (403, or 404 for a draft it may not see)."""
    client.force_login(mesh.other_owner)
    _, options = _suggested(client, "/domains/users/products/new/data-sources/", "wareh")
    assert options == [("Users warehouse", "SQLite")]
    draft = mesh.products[("users", "draft")]
    users_edit = f"/products/users/{draft.slug}/edit/data-sources/"
    assert [v for v, _ in _suggested(client, users_edit)[1]] == ["Lake", "Users warehouse"]
    assert client.get("/domains/orders/products/new/data-sources/").status_code == 403
    client.force_login(mesh.consumer)
    assert client.get("/domains/orders/products/new/data-sources/").status_code == 403
    published = mesh.products[("orders", "published")]
    assert client.get(f"/products/orders/{published.slug}/edit/data-sources/").status_code == 403
    assert client.get(users_edit).status_code == 404


def test_a_source_closed_to_the_team_is_refused_by_name(client, mesh, sources):
    _, users_wh = sources
    client.force_login(mesh.member)
    # Typed by hand (or without JavaScript): the form says why, nothing is saved. The same
    # answer as for a source that does not exist.
    for typed in ("Users warehouse", "users-wh", "Nowhere"):
        data = _form(name="Order checks", ports=[{"name": "Events", "location": "main.t"}])
        data["ports-0-data_source"] = typed
        r = client.post("/domains/orders/products/new/", data)
        assert r.status_code == 400, r.status_code
        assert f"No data source “{typed}” is open to Orders Team" in r.text
        assert 'aria-describedby="id_ports-0-data_source-error id_ports-0-data_source-help"' in (
            r.text
        )
    assert not DataProduct.objects.filter(slug="order-checks").exists()


def test_a_source_is_found_by_its_slug_and_its_name_in_any_case(client, mesh, sources):
    lake, _ = sources
    client.force_login(mesh.member)
    for i, typed in enumerate(("lake", " LAKE ")):
        data = _form(name=f"Checked {i}", ports=[{"name": "Events", "location": "main.t"}])
        data["ports-0-data_source"] = typed
        assert client.post("/domains/orders/products/new/", data).status_code == 302
        assert DataProduct.objects.get(slug=f"checked-{i}").ports.get().data_source == lake


def test_every_door_that_saves_a_port_meets_the_rule(mesh, sources):
    """The API and contract imports save ports through the same model check."""
    from django.core.exceptions import ValidationError

    from products import services

    _, users_wh = sources
    port = mesh.products[("orders", "draft")].ports.get()
    with pytest.raises(ValidationError) as e:
        services.port_update(port=port, data_source=users_wh)
    assert "not open to Orders Team" in str(e.value.message_dict["data_source"])
    users_port = mesh.products[("users", "draft")].ports.get()
    assert services.port_update(port=users_port, data_source=users_wh).data_source == users_wh


def test_the_editor_reads_the_sources_once_however_many_ports(client, mesh, sources):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from products import services

    lake, _ = sources
    product = mesh.products[("orders", "draft")]
    client.force_login(mesh.member)
    url = f"/products/orders/{product.slug}/edit/"

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            page = " ".join(client.get(url).text.split())
        assert page.count('data_source" value="Lake"') == product.ports.count()
        return sum("governance_datasource" in q["sql"] for q in ctx.captured_queries)

    for port in product.ports.all():
        services.port_update(port=port, data_source=lake)
    one = count()
    for i in range(4):
        services.port_create(product=product, name=f"Extra {i}", data_source=lake)
    assert count() == one  # each port's source name comes with the ports: not a query each


def test_the_api_sets_and_shows_a_port_data_source_as_the_form_does(mesh, sources):
    from rest_framework.test import APIClient

    lake, users_wh = sources
    port = mesh.products[("orders", "published")].ports.get()
    api = APIClient()
    api.force_login(mesh.member)
    r = api.patch(f"/api/v1/ports/{port.pk}/", {"data_source": "users-wh"}, format="json")
    assert r.status_code == 400 and "not open to Orders Team" in str(r.json())
    r = api.patch(f"/api/v1/ports/{port.pk}/", {"data_source": "lake"}, format="json")
    assert r.status_code == 200 and r.json()["data_source"] == "lake"
    # Where the data lives is a connection detail: a consumer without access sees null.
    api.force_login(mesh.consumer)
    assert api.get(f"/api/v1/ports/{port.pk}/").json()["data_source"] is None
    api.force_login(mesh.approved)
    assert api.get(f"/api/v1/ports/{port.pk}/").json()["data_source"] == "lake"


def test_a_product_whose_port_reads_a_closed_source_cannot_move_there(client, mesh, sources):
    """Moving a users product to the orders team would leave its port reading a source the
    orders team may not use: the transfer is refused with the reason, nothing moves."""
    from django.core.exceptions import ValidationError

    from products import services

    _, users_wh = sources
    product = mesh.products[("users", "published")]
    services.port_update(port=product.ports.get(), data_source=users_wh)
    with pytest.raises(ValidationError) as e:
        services.product_transfer(product=product, team=mesh.orders_team, by=mesh.staff)
    assert "reads Users warehouse, which is not open to Orders Team" in str(
        e.value.message_dict["owner_team"]
    )
    product.refresh_from_db()
    assert product.owner_team == mesh.users_team


def test_the_picker_answers_in_the_same_queries_however_many_sources(client, mesh, sources):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(mesh.member)
    url = "/domains/orders/products/new/data-sources/"

    def count() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as ctx:
            _, options = _suggested(client, url, "lake")
        return len(ctx.captured_queries), len(options)

    one = count()
    for i in range(5):
        DataSource.objects.create(slug=f"lake-{i}", name=f"Lake {i}", kind="sqlite", database="/x")
    assert count() == (one[0], one[1] + 5)
