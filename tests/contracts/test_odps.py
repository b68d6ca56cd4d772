"""The data product itself in ODPS v1.1.0 (issue 16, item 7): export and import, from the API
and the product page (every demo product valid against the official ODPS schema and accepted
by `dataproduct lint`: test_demo_exports.py)."""

import json

import pytest
import yaml
from rest_framework.test import APIClient

from products.contracts import odps
from products.lineage import services as lineage
from products.models import DataProduct, InputPort

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def client_for(user) -> APIClient:
    c = APIClient()
    c.force_authenticate(user)
    return c


def url(product, suffix: str = "odps") -> str:
    return f"/api/v1/products/{product.domain.slug}/{product.slug}/{suffix}"


def get_doc(client, product) -> dict:
    r = client.get(url(product), HTTP_ACCEPT="application/json")
    assert r.status_code == 200, r.content
    return json.loads(r.content)


def put(client, product, doc, *, dry_run=False, path=None):
    body = doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False)
    target = path or url(product)
    return client.put(
        target + ("?dry_run=true" if dry_run else ""),
        data=body,
        content_type="application/yaml",
    )


def props(items) -> dict:
    return {p["property"]: p["value"] for p in items or []}


# -- API: reads, connection details, query count -------------------------------------------------


def test_get_yaml_by_default_json_on_request_and_by_urn(mesh):
    product = mesh.products[("orders", "published")]
    c = client_for(mesh.owner)
    r = c.get(url(product))
    assert r.status_code == 200 and r["Content-Type"].startswith("application/yaml")
    doc = yaml.safe_load(r.content)
    assert doc["apiVersion"] == "v1.1.0" and doc["kind"] == "DataProduct"
    assert doc["status"] == "active" and doc["team"]["name"] == "orders-team"
    assert json.loads(c.get(url(product), HTTP_ACCEPT="application/json").content) == doc
    by_urn = c.get(f"/api/v1/products/{product.urn}/odps")
    assert by_urn.status_code == 200 and yaml.safe_load(by_urn.content) == doc
    download = c.get(url(product) + "?download=1")
    assert 'filename="orders-published-product.odps.yaml"' in download["Content-Disposition"]


def test_location_only_for_those_who_may_see_where_the_data_lives(mesh):
    product = mesh.products[("orders", "published")]
    for user in (mesh.owner, mesh.approved, mesh.staff):
        port = get_doc(client_for(user), product)["outputPorts"][0]
        assert props(port["customProperties"])["location"] == "sales.secret_table"
    for user in (mesh.consumer, mesh.other_owner):
        r = client_for(user).get(url(product))
        assert r.status_code == 200
        assert b"secret_table" not in r.content and b"location" not in r.content
        odps.validate(yaml.safe_load(r.content))  # still a valid document


def test_a_hidden_draft_is_404_and_inputs_from_hidden_products_are_not_named(mesh):
    draft = mesh.products[("orders", "draft")]
    assert client_for(mesh.consumer).get(url(draft)).status_code == 404
    consumer_side = mesh.products[("users", "published")]
    lineage.input_port_create(
        product=consumer_side, by=mesh.staff, source_port=draft.ports.get(), description="x"
    )
    doc = get_doc(client_for(mesh.other_owner), consumer_side)
    assert "inputPorts" not in doc  # other_owner may not see the orders draft
    doc = get_doc(client_for(mesh.staff), consumer_side)
    assert doc["inputPorts"] == [
        {
            "name": "main",
            "version": "1.0.0",
            "contractId": draft.urn,
            "customProperties": [{"property": "description", "value": "x"}],
        }
    ]


def test_export_query_count_is_bounded(mesh, django_assert_max_num_queries):
    product = mesh.products[("orders", "published")]
    for i in range(3):
        lineage.input_port_create(
            product=product, by=mesh.staff, external_name=f"CRM {i}", external_kind="saas"
        )
        lineage.input_port_create(
            product=product,
            by=mesh.staff,
            source_port=mesh.products[
                ("users", ["draft", "published", "deprecated"][i])
            ].ports.get(),
        )
    c = client_for(mesh.owner)
    c.get(url(product))  # sessions, caches
    with django_assert_max_num_queries(14):
        r = c.get(url(product))
    assert r.status_code == 200
    # Six inputs; the users draft is not the orders owner's to see.
    assert len(yaml.safe_load(r.content)["inputPorts"]) == 5


# -- API: imports ---------------------------------------------------------------------------------


def test_owner_updates_creates_and_previews(mesh):
    product = mesh.products[("orders", "published")]
    c = client_for(mesh.owner)
    doc = get_doc(c, product)
    doc["name"] = "Orders, renamed"
    doc["tags"] = ["sales"]
    doc["outputPorts"].append(
        {
            "name": "extract",
            "type": "file",
            "customProperties": [
                {"property": "format", "value": "parquet"},
                {"property": "location", "value": "s3://bucket/orders/"},
            ],
        }
    )
    doc["inputPorts"] = [
        {"name": "Salesforce", "customProperties": [{"property": "externalKind", "value": "saas"}]}
    ]
    preview = put(c, product, doc, dry_run=True)
    assert preview.status_code == 200, preview.content
    assert preview.json()["changed"] and not preview.json()["applied"]
    assert DataProduct.objects.get(pk=product.pk).name == "Orders published"
    r = put(c, product, doc)
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["changed"] and body["applied"] and body["urn"] == product.urn
    product.refresh_from_db()
    assert product.name == "Orders, renamed"
    assert [t.name for t in product.tags.all()] == ["sales"]
    extract = product.ports.get(slug="extract")
    assert (extract.kind, extract.format, extract.location) == (
        "file",
        "parquet",
        "s3://bucket/orders/",
    )
    assert InputPort.objects.get(product=product).external_kind == "saas"
    # The same document again: nothing to do.
    again = put(c, product, get_doc(c, product))
    assert again.status_code == 200 and not again.json()["changed"]

    # A new product in the owner's domain, named by the URL.
    new = get_doc(c, product)
    new["id"] = "urn:mesh:orders:fresh"
    new["name"] = "Fresh"
    new["inputPorts"] = []
    created = put(c, None, new, path="/api/v1/products/orders/fresh/odps")
    assert created.status_code == 201, created.content
    fresh = DataProduct.objects.get(domain__slug="orders", slug="fresh")
    assert fresh.status == "draft" and fresh.name == "Fresh"
    assert {i["path"] for i in created.json()["ignored"]} == {"status"}  # stays a draft


def test_a_non_owner_import_is_refused_and_changes_nothing(mesh):
    published = mesh.products[("orders", "published")]
    draft = mesh.products[("orders", "draft")]
    owner = client_for(mesh.owner)
    before = {p: owner.get(url(p)).content for p in (published, draft)}
    doc = get_doc(owner, published)
    doc["name"] = "Taken over"
    for user in (mesh.other_owner, mesh.consumer, mesh.approved):
        r = put(client_for(user), published, doc)
        assert r.status_code == 403, (user, r.content)
        assert "may not edit" in r.json()["detail"]
    # A draft other_owner may not see is answered exactly as a name that does not exist:
    # creating a product in another team's domain is 403, as at every other door (ODCS too).
    doc = get_doc(owner, draft)
    doc["name"] = "Taken over"
    hidden = put(client_for(mesh.other_owner), draft, doc)
    doc["id"] = "urn:mesh:orders:intruder"
    r = put(client_for(mesh.other_owner), None, doc, path="/api/v1/products/orders/intruder/odps")
    assert r.status_code == hidden.status_code == 403
    assert r.json()["detail"] == hidden.json()["detail"]
    assert "Only the team owning Orders" in r.json()["detail"]
    assert not DataProduct.objects.filter(slug="intruder").exists()
    # Moving the product to another team through the document: the transfer rule.
    doc = get_doc(owner, published)
    doc["team"] = {"name": "users-team"}
    r = put(owner, published, doc)
    assert r.status_code == 403, r.content
    for p in (published, draft):
        assert owner.get(url(p)).content == before[p]


@pytest.mark.parametrize(
    "change, field, reason",
    [
        (lambda d: d.update(kind="DataContract"), "kind", "is not one of"),
        (lambda d: d.update(apiVersion="v0.9.0"), "apiVersion", "reads ODPS v1.0.0, v1.1.0"),
        (lambda d: d["outputPorts"][0].pop("name"), "outputPorts[0]", "'name' is a required"),
        (lambda d: d["outputPorts"][0].update(type="lake"), "outputPorts[0].type", "port type"),
        (lambda d: d["outputPorts"][0].update(name="a b"), "outputPorts[0].name", "port slug"),
        (lambda d: d.update(id="urn:mesh:users:other"), "id", "describes urn:mesh:users:other"),
        (lambda d: d.update(domain="users"), "domain", "not orders"),
        (lambda d: d["support"][0].pop("url"), "support[0]", "'url' is a required"),
        (
            lambda d: d.update(inputPorts=[{"name": "main", "contractId": "urn:mesh:x:y"}]),
            "inputPorts[0].contractId",
            "No data product has the contract",
        ),
        (
            lambda d: d.update(
                inputPorts=[{"name": "nope", "contractId": "urn:mesh:users:published-product"}]
            ),
            "inputPorts[0].name",
            "has no output port “nope”",
        ),
        (lambda d: d["team"].update(name="nobody"), "team.name", "Unknown team"),
        (lambda d: d.update(version="2.0.0") or d.pop("outputPorts"), None, None),
        (lambda d: d.pop("outputPorts"), "version", "needs a major version bump"),
    ],
)
def test_bad_documents_are_400_naming_path_and_reason(mesh, change, field, reason):
    product = mesh.products[("orders", "published")]
    c = client_for(mesh.owner)
    before = c.get(url(product)).content
    doc = get_doc(c, product)
    change(doc)
    r = put(c, product, doc, dry_run=True)
    if field is None:  # the same removal with the major version bump is accepted
        assert r.status_code == 200, r.content
        return
    assert r.status_code == 400, r.content
    errors = r.json()["errors"]
    assert any(e["field"] == field and reason in e["reason"] for e in errors), errors
    assert c.get(url(product)).content == before


def test_not_yaml_is_400_with_line_and_column(mesh):
    product = mesh.products[("orders", "published")]
    r = put(client_for(mesh.owner), product, "apiVersion: v1.1.0\nkind: [DataProduct\n")
    assert r.status_code == 400
    assert "line" in r.json()["errors"][0]["reason"]


def test_unmapped_content_is_kept_and_written_back_in_its_place(mesh):
    """What the portal has no field for is kept as it came, reported as kept, and merged back
    on export; the portal's own values win over anything in it."""
    product = mesh.products[("orders", "published")]
    c = client_for(mesh.owner)
    doc = get_doc(c, product)
    doc["tenant"] = "acme"
    doc["description"] = {"purpose": "Orders.", "usage": "Reporting."}
    doc["customProperties"].append({"property": "costCenter", "value": "42"})
    doc["customProperties"].append({"property": "classification", "value": "public"})
    doc["managementPorts"] = [{"name": "changes", "content": "discoverability", "type": "topic"}]
    doc["support"].append({"channel": "#orders", "url": "https://chat.example.com/orders"})
    doc["team"]["tags"] = ["sales"]
    port = doc["outputPorts"][0]
    port["sbom"] = [{"type": "external", "url": "https://sbom.example.com/1"}]
    port["customProperties"].append({"property": "tier", "value": "gold"})
    r = put(c, product, doc)
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["changed"] and "kept ODPS content changed." in body["changes"]
    assert {i["path"] for i in body["kept"]} == {
        "tenant",
        "description.usage",
        "customProperties[2]",
        "managementPorts",
        f"support[{len(doc['support']) - 1}]",
        "team.tags",
        "outputPorts[0].sbom",
        f"outputPorts[0].customProperties[{len(port['customProperties']) - 1}]",
    }
    # A second classification: the portal reads the first, the second is not kept.
    assert [i["path"] for i in body["ignored"]] == ["customProperties[3]"]
    assert DataProduct.objects.get(pk=product.pk).description == "Orders."
    again = get_doc(c, product)
    doc["customProperties"].pop()  # the one not kept
    assert again == doc
    # In the standard's order, whatever order the database keeps JSON keys in.
    assert list(again["managementPorts"][0]) == ["name", "content", "type"]
    odps.validate(again)
    # The same document again changes nothing.
    assert not put(c, product, again).json()["changed"]


def test_product_page_links_the_odps_download(mesh, client):
    product = mesh.products[("orders", "published")]
    client.force_login(mesh.consumer)
    page = client.get(product.get_absolute_url() + "?tab=contract")
    assert page.status_code == 200
    assert f'href="{url(product)}?download=1"'.encode() in page.content
