"""Creating, editing and cloning products in the browser's forms; lifecycle confirmations."""

import pytest

from products.models import DataProduct, OutputPort, SchemaField


def _form(name="Order events", slug="", ports=()):
    data = {
        "name": name,
        "slug": slug,
        "summary": "Events of every order",
        "description": "# Hi",
        "version": "1.0.0",
        "classification": "internal",
        "tags": "orders, events",
        "freshness_slo_hours": "",
        "availability_slo": "",
        "ports-TOTAL_FORMS": str(len(ports)),
        "ports-INITIAL_FORMS": "0",
        "ports-MIN_NUM_FORMS": "0",
        "ports-MAX_NUM_FORMS": "1000",
    }
    for i, port in enumerate(ports):
        fields = port.get("fields", [])
        data.update(
            {
                f"ports-{i}-id": port.get("id", ""),
                f"ports-{i}-name": port["name"],
                f"ports-{i}-slug": port.get("slug", ""),
                f"ports-{i}-kind": port.get("kind", "table"),
                f"ports-{i}-location": port.get("location", ""),
                f"ports-{i}-format": "",
                f"ports-{i}-description": "",
                f"ports-{i}-fields-TOTAL_FORMS": str(len(fields)),
                f"ports-{i}-fields-INITIAL_FORMS": "0",
                f"ports-{i}-fields-MIN_NUM_FORMS": "0",
                f"ports-{i}-fields-MAX_NUM_FORMS": "1000",
            }
        )
        if port.get("DELETE"):
            data[f"ports-{i}-DELETE"] = "on"
        for j, f in enumerate(fields):
            p = f"ports-{i}-fields-{j}-"
            data.update(
                {
                    p + "id": f.get("id", ""),
                    p + "name": f["name"],
                    p + "logical_type": f.get("logical_type", "string"),
                    p + "description": "",
                }
            )
            for flag in ("required", "unique", "primary_key", "pii", "DELETE"):
                if f.get(flag):
                    data[p + flag] = "on"
    return data


TWO_FIELDS = [
    {
        "name": "Events",
        "location": "orders.events",
        "fields": [
            {"name": "event_id", "logical_type": "integer", "primary_key": True},
            {"name": "email", "pii": True},
        ],
    }
]


def test_member_creates_a_product_with_a_port_and_two_fields(client, mesh):
    client.force_login(mesh.member)
    r = client.get("/domains/orders/products/new/")
    assert r.status_code == 200
    assert 'id="port-template"' in r.text
    r = client.post("/domains/orders/products/new/", _form(ports=TWO_FIELDS))
    assert r.status_code == 302, r.content
    p = DataProduct.objects.get(slug="order-events")
    assert r["Location"] == p.get_absolute_url()
    assert p.status == "draft" and p.owner_team == mesh.orders_team
    assert sorted(t.slug for t in p.tags.all()) == ["events", "orders"]
    port = p.ports.get()
    assert port.slug == "events" and port.location == "orders.events"
    assert [(f.name, f.primary_key, f.pii) for f in port.fields.all()] == [
        ("event_id", True, False),
        ("email", False, True),
    ]
    page = client.get(p.get_absolute_url() + "?tab=schema").text
    assert "event_id" in page and "PII" in page


def test_invalid_form_saves_nothing_and_shows_errors_next_to_fields(client, mesh):
    client.force_login(mesh.member)
    bad = [{"name": "Events", "fields": [{"name": "a"}, {"name": "a"}, {"name": ""}]}]
    before = (DataProduct.objects.count(), OutputPort.objects.count(), SchemaField.objects.count())
    r = client.post("/domains/orders/products/new/", _form(ports=bad))
    assert r.status_code == 400
    assert "Nothing was saved" in r.text
    assert "Another row already uses this name." in r.text
    assert 'id="id_ports-0-fields-2-name-error"' in r.text  # the required error, by its field
    after = (DataProduct.objects.count(), OutputPort.objects.count(), SchemaField.objects.count())
    assert before == after
    # a slug the domain already has
    r = client.post("/domains/orders/products/new/", _form(slug="published-product"))
    assert r.status_code == 400 and "already has a product" in r.text


def test_service_error_on_a_port_rolls_back_the_product(client, mesh):
    client.force_login(mesh.member)
    ports = [{"name": "Events", "slug": "events"}, {"name": "Events 2", "slug": "events"}]
    r = client.post("/domains/orders/products/new/", _form(ports=ports))
    assert r.status_code == 400
    assert not DataProduct.objects.filter(slug="order-events").exists()


@pytest.mark.parametrize("who", ["consumer", "other_owner"])
def test_non_members_may_not_create(client, mesh, who):
    client.force_login(getattr(mesh, who))
    assert client.get("/domains/orders/products/new/").status_code == 403
    r = client.post("/domains/orders/products/new/", _form(ports=TWO_FIELDS))
    assert r.status_code == 403
    assert not DataProduct.objects.filter(slug="order-events").exists()


def test_edit_updates_adds_and_removes_ports_and_fields(client, mesh):
    client.force_login(mesh.member)
    p = mesh.products[("orders", "draft")]
    port = p.ports.get()
    field = port.fields.get()
    r = client.get(f"/products/orders/{p.slug}/edit/")
    assert r.status_code == 200 and "order_id" in r.text
    data = _form(
        name="Orders draft v2",
        slug=p.slug,
        ports=[
            {
                "id": port.pk,
                "name": "Main",
                "slug": "main",
                "fields": [
                    {"id": field.pk, "name": "order_no", "logical_type": "integer"},
                    {"name": "placed_at", "logical_type": "timestamp"},
                ],
            },
            {"name": "Export", "kind": "file"},
        ],
    )
    r = client.post(f"/products/orders/{p.slug}/edit/", data)
    assert r.status_code == 302, r.content
    p.refresh_from_db()
    assert p.name == "Orders draft v2"
    assert sorted(p.ports.values_list("slug", flat=True)) == ["export", "main"]
    assert list(p.ports.get(slug="main").fields.values_list("name", flat=True)) == [
        "order_no",
        "placed_at",
    ]
    # remove the export port
    data = _form(
        name="Orders draft v2",
        slug=p.slug,
        ports=[
            {
                "id": port.pk,
                "name": "Main",
                "slug": "main",
                "fields": [{"id": field.pk, "name": "order_no"}],
            },
            {"id": p.ports.get(slug="export").pk, "name": "Export", "DELETE": True},
        ],
    )
    assert client.post(f"/products/orders/{p.slug}/edit/", data).status_code == 302
    assert list(p.ports.values_list("slug", flat=True)) == ["main"]


def test_edit_refused_to_outsiders(client, mesh):
    p = mesh.products[("orders", "published")]
    client.force_login(mesh.consumer)
    assert client.get(f"/products/orders/{p.slug}/edit/").status_code == 403
    draft = mesh.products[("orders", "draft")]
    assert client.get(f"/products/orders/{draft.slug}/edit/").status_code == 404
    assert client.post(f"/products/orders/{draft.slug}/edit/", _form()).status_code == 404


def test_clone_prefills_a_new_draft(client, mesh):
    client.force_login(mesh.member)
    r = client.get("/products/orders/published-product/clone/")
    assert r.status_code == 200
    assert "Orders published (copy)" in r.text and "order_id" in r.text
    assert 'action="/domains/orders/products/new/"' in r.text
    client.force_login(mesh.consumer)
    assert client.get("/products/orders/published-product/clone/").status_code == 403


def test_owner_publishes_with_confirmation_member_may_not(client, mesh):
    draft = mesh.products[("orders", "draft")]
    url = f"/products/orders/{draft.slug}/publish/"
    client.force_login(mesh.member)
    assert client.get(url).status_code == 403
    client.force_login(mesh.owner)
    r = client.get(url)
    assert r.status_code == 200 and "Publish Orders draft?" in r.text
    draft.refresh_from_db()
    assert draft.status == "draft"  # a GET only asks
    assert client.post(url).status_code == 302
    draft.refresh_from_db()
    assert draft.status == "published"
