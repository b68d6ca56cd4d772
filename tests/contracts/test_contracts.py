"""ODCS v3 contracts: export, import, validation, versions and breaking changes."""

import json

import pytest
import yaml
from django.core.exceptions import PermissionDenied
from rest_framework.test import APIClient

from meshportal.models import AuditEntry, Notification
from products.contracts import services as contracts
from products.extensions import ProductExtension
from products.models import ContractVersion, DataProduct, SchemaField

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # PBKDF2 takes seconds per test user on a shared CI box; these tests are not about it.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_export_maps_ports_fields_slos_and_team(mesh):
    product = mesh.products[("orders", "published")]
    doc = yaml.safe_load(contracts.export_yaml(product))
    assert doc["apiVersion"] == "v3.2.0"
    assert doc["id"] == "urn:mesh:orders:published-product"
    assert doc["domain"] == "orders" and doc["dataProduct"] == "published-product"
    assert doc["team"] == {"name": "orders-team"}
    obj = doc["schema"][0]
    assert (obj["name"], obj["physicalType"], obj["physicalName"]) == (
        "main",
        "table",
        "sales.secret_table",
    )
    assert obj["properties"][0] == {
        "name": "order_id",
        "logicalType": "integer",
        "required": False,
        "unique": False,
        "primaryKey": True,
    }


def _doc(**over) -> str:
    doc = {
        "apiVersion": "v3.2.0",
        "kind": "DataContract",
        "id": "shipments-contract",
        "name": "Shipments",
        "version": "1.0.0",
        "status": "draft",
        "domain": "orders",
        "dataProduct": "shipments",
        "schema": [
            {
                "name": "shipments",
                "physicalType": "table",
                "physicalName": "wh.shipments",
                "properties": [
                    {
                        "name": "shipment_id",
                        "logicalType": "integer",
                        "required": True,
                        "primaryKey": True,
                        "unique": True,
                    },
                    {
                        "name": "email",
                        "logicalType": "string",
                        "classification": "pii",
                        "enum": [{"value": "a"}, {"value": "b"}],
                        "examples": ["x@example.com"],
                    },
                ],
            }
        ],
        "slaProperties": [
            {"property": "freshness", "value": 2, "unit": "d"},
            {"property": "availability", "value": 99.5, "unit": "percent"},
            {"property": "retention", "value": 3, "unit": "y"},
        ],
        "servers": [
            {
                "server": "prod",
                "type": "postgresql",
                "host": "db",
                "port": 5432,
                "database": "wh",
                "schema": "public",
            }
        ],
    }
    doc.update(over)
    return yaml.safe_dump(doc, sort_keys=False)


def test_import_creates_product_keeps_unknown_odcs_and_is_idempotent(mesh):
    result = contracts.contract_import(text=_doc(), user=mesh.owner)
    assert result.created and result.applied
    product = DataProduct.objects.get(domain__slug="orders", slug="shipments")
    assert product.freshness_slo_hours == 48 and str(product.availability_slo) == "99.500"
    email = SchemaField.objects.get(port__product=product, name="email")
    assert email.pii and not email.required
    doc = yaml.safe_load(contracts.export_yaml(product))
    assert doc["id"] == "shipments-contract"
    assert doc["servers"][0]["host"] == "db"  # unknown-but-valid content kept
    assert doc["schema"][0]["properties"][1]["enum"] == [{"value": "a"}, {"value": "b"}]
    assert {"property": "retention", "value": 3, "unit": "y"} in doc["slaProperties"]
    assert product.contract_versions.count() == 1
    again = contracts.contract_import(text=_doc(), user=mesh.owner)
    assert not again.changed and product.contract_versions.count() == 1
    # The exported document imports as no change either.
    assert not contracts.contract_import(
        text=contracts.export_yaml(product), user=mesh.owner
    ).changed


def _state():
    return (
        DataProduct.objects.count(),
        SchemaField.objects.count(),
        ContractVersion.objects.count(),
        AuditEntry.objects.count(),
    )


@pytest.mark.parametrize(
    "text,path,needle",
    [
        ("apiVersion: v3.1.0\nkind: DataContract\nname: [x\nid: y\n", "document", "line 4, column"),
        (_doc(version=3), "version", "is not of type 'string'"),
        (_doc(apiVersion="v2.2.0"), "apiVersion", "v3.0.0, v3.0.1, v3.0.2, v3.1.0, v3.2.0"),
        (_doc(domain="nowhere"), "domain", "Unknown domain “nowhere”"),
        (
            _doc(
                schema=[
                    {
                        "name": "s",
                        "properties": [
                            {"name": "a", "logicalType": "string"},
                            {"name": "a", "logicalType": "string"},
                        ],
                    }
                ]
            ),
            "schema[0].properties[1].name",
            "Duplicate field “a”",
        ),
        (
            _doc(schema=[{"name": "s", "properties": [{"name": "a", "logicalType": "text"}]}]),
            "schema[0].properties[0].logicalType",
            "is not one of",
        ),
        (
            _doc(schema=[{"name": "s", "properties": [{"name": "a", "logicalTyp": "string"}]}]),
            "schema[0].properties[0]",
            "logicalTyp",
        ),
    ],
)
def test_bad_documents_are_refused_precisely_and_change_nothing(mesh, text, path, needle):
    before = _state()
    with pytest.raises(Exception) as e:  # noqa: B017 - ValidationError, checked below
        contracts.contract_import(text=text, user=mesh.owner)
    errors = e.value.message_dict
    assert path in errors, errors
    assert any(needle in m for m in errors[path]), errors
    assert _state() == before


def test_a_document_for_another_teams_domain_is_refused_as_at_every_door(mesh):
    before = _state()
    with pytest.raises(PermissionDenied, match="Only the team owning Users, Users Team"):
        contracts.contract_import(text=_doc(domain="users"), user=mesh.owner)
    assert _state() == before


def test_breaking_change_needs_major_bump_and_tells_consumers(mesh):
    product = mesh.products[("orders", "published")]
    doc = yaml.safe_load(contracts.export_yaml(product))
    doc["schema"][0]["properties"] = []  # remove order_id
    with pytest.raises(Exception) as e:  # noqa: B017
        contracts.contract_import(text=yaml.safe_dump(doc), user=mesh.owner, product=product)
    assert "needs a major version bump" in e.value.message_dict["version"][0]
    assert SchemaField.objects.filter(port__product=product, name="order_id").exists()
    doc["version"] = "2.0.0"
    result = contracts.contract_import(text=yaml.safe_dump(doc), user=mesh.owner, product=product)
    assert result.applied and result.breaking
    assert [c.kind for c in result.changes if c.breaking] == ["field_removed"]
    note = Notification.objects.get(user=mesh.approved, kind="contract_breaking")
    assert "order_id removed" in note.body


@pytest.mark.parametrize(
    "change,breaking",
    [
        (lambda f: f.update(required=True), True),
        (lambda f: f.update(logicalType="string"), True),
        (lambda f: f.update(unique=True), True),
        (lambda f: f.update(description="The order number."), False),
    ],
)
def test_changes_are_classified_from_the_consumers_side(mesh, change, breaking):
    product = mesh.products[("orders", "draft")]  # drafts take any change
    doc = yaml.safe_load(contracts.export_yaml(product))
    change(doc["schema"][0]["properties"][0])
    result = contracts.contract_import(text=yaml.safe_dump(doc), user=mesh.owner, product=product)
    assert result.changed and result.breaking is breaking


def test_slo_weakened_is_breaking_and_optional_field_added_is_not(mesh):
    product = mesh.products[("orders", "draft")]
    doc = yaml.safe_load(contracts.export_yaml(product))
    doc["slaProperties"] = [{"property": "freshness", "value": 24, "unit": "h"}]
    contracts.contract_import(text=yaml.safe_dump(doc), user=mesh.owner, product=product)
    doc["slaProperties"][0]["value"] = 48
    doc["schema"][0]["properties"].append({"name": "note", "logicalType": "string"})
    result = contracts.contract_import(text=yaml.safe_dump(doc), user=mesh.owner, product=product)
    kinds = {c.kind: c.breaking for c in result.changes}
    assert kinds == {"slo_weakened": True, "field_added": False}


def test_page_and_service_edits_record_versions(mesh):
    from products import services

    product = mesh.products[("orders", "draft")]
    n = product.contract_versions.count()
    port = product.ports.get()
    services.field_create(port=port, name="extra", logical_type="string")
    latest = contracts.latest_version(product)
    assert product.contract_versions.count() == n + 1
    assert latest.changelog[0]["kind"] == "field_added"
    # Outside the automation doors a breaking edit is recorded and announced, not refused.
    published = mesh.products[("orders", "published")]
    services.field_delete(field=SchemaField.objects.get(port__product=published))
    assert contracts.latest_version(published).breaking
    assert Notification.objects.filter(user=mesh.approved, kind="contract_breaking").exists()


def test_dry_run_previews_without_changing(mesh):
    product = mesh.products[("orders", "draft")]
    doc = yaml.safe_load(contracts.export_yaml(product))
    doc["name"] = "Renamed"
    before = _state()
    result = contracts.contract_import(
        text=yaml.safe_dump(doc), user=mesh.owner, product=product, dry_run=True
    )
    assert not result.applied and [c.path for c in result.changes] == ["name"]
    assert _state() == before
    assert DataProduct.objects.get(pk=product.pk).name != "Renamed"


class RecordingRules(ProductExtension):
    """An extension in place of governance's: records what the import hands over, and writes
    its own rules on export."""

    taken: list = []
    written = [{"metric": "nullValues", "mustBeLessThan": 3}]

    def import_quality(self, product, port, sections, previous):
        self.taken.append((port.slug, sections, previous))

    def export_quality(self, product, port, sections):
        return {"order_id": self.written}


def test_quality_sections_are_kept_and_handed_to_the_quality_extension(mesh, settings):
    product = mesh.products[("orders", "draft")]
    doc = yaml.safe_load(contracts.export_yaml(product))
    rule = [{"metric": "nullValues", "mustBe": 0}]
    doc["schema"][0]["properties"][0]["quality"] = rule
    contracts.contract_import(text=yaml.safe_dump(doc), user=mesh.owner, product=product)
    exported = yaml.safe_load(contracts.export_yaml(product))
    assert exported["schema"][0]["properties"][0]["quality"] == rule  # kept as is
    RecordingRules.taken.clear()
    settings.PRODUCT_EXTENSIONS = [f"{__name__}.RecordingRules"]
    doc["name"] = "Touched"
    contracts.contract_import(text=yaml.safe_dump(doc), user=mesh.owner, product=product)
    # The importer sees the port's sections, this document's and the last version's ...
    assert RecordingRules.taken == [("main", [("order_id", rule)], [("order_id", rule)])]
    # ... the contract keeps them as they came ...
    extras = json.loads(contracts.latest_version(product).extras)
    assert extras["objects"]["main"]["properties"]["order_id"]["quality"] == rule
    # ... and the exporter writes them.
    assert (
        yaml.safe_load(contracts.export_yaml(product))["schema"][0]["properties"][0]["quality"]
        == RecordingRules.written
    )


def test_breaking_change_reaches_watchers_too(mesh):
    from products.lineage.services import watch_set

    product = mesh.products[("orders", "published")]
    watch_set(user=mesh.consumer, product=product, on=True)
    doc = yaml.safe_load(contracts.export_yaml(product))
    doc["schema"][0]["properties"] = []
    doc["version"] = "2.0.0"
    contracts.contract_import(text=yaml.safe_dump(doc), user=mesh.owner, product=product)
    for user in (mesh.consumer, mesh.approved):  # a watcher and a consumer, once each
        assert Notification.objects.filter(user=user, kind="contract_breaking").count() == 1


def test_optional_odcs_fields_are_asked_for_or_defaulted_not_refused(mesh, client):
    """ODCS does not require `name` or `domain` and has logical type `map` (v3.1+): a document
    without a domain goes into the domain the upload names (form, API route, --domain); a new
    product without a name is named by its slug; `map` is stored."""
    doc = yaml.safe_load(_doc())
    for key in ("domain", "name"):
        doc.pop(key, None)
    string = {"name": "k", "logicalType": "string"}
    attributes = {
        "name": "attributes",
        "logicalType": "map",
        "map": {"key": string, "value": string},
    }
    doc["schema"][0]["properties"].append(attributes)
    text = yaml.safe_dump(doc)
    with pytest.raises(Exception) as asked:  # noqa: B017 - ValidationError, checked below
        contracts.contract_import(text=text, user=mesh.owner)
    assert "Choose the portal domain" in asked.value.message_dict["domain"][0]
    result = contracts.contract_import(text=text, user=mesh.owner, domain_slug="orders")
    product = result.product
    assert (product.domain.slug, product.name) == ("orders", product.slug)
    assert SchemaField.objects.get(port__product=product, name="attributes").logical_type == "map"
    exported = yaml.safe_load(contracts.export_yaml(product))["schema"][0]["properties"][-1]
    assert exported["map"] == attributes["map"]  # the key/value definition travels back out
    client.force_login(mesh.owner)
    doc["dataProduct"] = doc["id"] = "from-the-form"
    r = client.post(
        "/contracts/import/", {"document": yaml.safe_dump(doc), "domain": "orders", "apply": "1"}
    )
    assert r.status_code == 302
    assert DataProduct.objects.filter(domain__slug="orders", slug="from-the-form").exists()


def test_a_map_field_made_in_the_portal_exports_a_valid_document(mesh):
    product = mesh.products[("orders", "draft")]
    from products import services

    services.field_create(port=product.ports.get(), name="attrs", logical_type="map")
    doc = contracts.export_document(product)
    contracts.validate(doc)  # ODCS requires a map's key and value types
    (attrs,) = [p for p in doc["schema"][0]["properties"] if p["name"] == "attrs"]
    assert attrs["map"]["key"]["logicalType"] == "string"


def test_odcs_top_level_content_the_portal_has_no_field_for_is_kept(mesh):
    """The ODCS side of issue 16's leftovers: every top-level key the portal does not map
    (and custom properties at any level) comes back as it went in; for readers who may not see
    where the data lives, custom properties named as connection details are left out, as
    `servers` and `physicalName` are."""
    top = {
        "tenant": "RetailCorp",
        "contractCreatedTs": "2024-01-15T10:30:00Z",
        "price": {"priceAmount": 9.95, "priceCurrency": "USD", "priceUnit": "megabyte"},
        "support": [{"channel": "#shipments", "url": "https://chat.example.com/shipments"}],
        "roles": [{"role": "shipments_reader", "access": "read"}],
        "authoritativeDefinitions": [{"type": "businessDefinition", "url": "https://x.example"}],
        "slaDefaultElement": "shipments.shipment_id",
        "description": {"purpose": "Shipments.", "usage": "Logistics.", "limitations": "None."},
        "customProperties": [
            {"property": "costCenter", "value": "CC-7"},
            {"property": "connection", "value": "jdbc:postgresql://db.internal/wh"},
        ],
    }
    assert contracts.contract_import(text=_doc(**top), user=mesh.owner).applied
    product = DataProduct.objects.get(domain__slug="orders", slug="shipments")
    doc = yaml.safe_load(contracts.export_yaml(product))
    for key, value in top.items():
        if key == "customProperties":
            assert [c for c in doc[key] if c["property"] not in ("classification",)] == value
        else:
            assert doc[key] == value, key
    url = "/api/v1/products/orders/shipments/contract"
    for user, sees in ((mesh.owner, True), (mesh.consumer, False)):
        product.status = "published"
        product.save(update_fields=["status"])
        c = APIClient()
        c.force_authenticate(user)
        raw = c.get(url).content
        assert (b"db.internal" in raw) is sees, user
        shown = yaml.safe_load(raw)
        assert {"property": "costCenter", "value": "CC-7"} in shown["customProperties"]
        contracts.validate(shown)  # still a valid ODCS document


def test_a_bare_object_name_takes_the_servers_schema_a_path_does_not(mesh):
    objects = [
        {"name": "rows", "physicalType": "table", "physicalName": "shipments"},
        {"name": "files", "physicalType": "file", "physicalName": "s3://bucket/shipments/"},
    ]
    result = contracts.contract_import(text=_doc(schema=objects), user=mesh.owner)
    locations = dict(result.product.ports.values_list("slug", "location"))
    assert locations == {"rows": "public.shipments", "files": "s3://bucket/shipments/"}
