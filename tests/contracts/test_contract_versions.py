"""Issue 16 item 1: each ODCS document is checked against the official schema of its own
`apiVersion`, and an older version's shapes are read as v3.2.0's, nothing lost. Before, every
document was checked against v3.2.0, so these valid v3.0.2 and v3.1.0 documents were refused."""

import copy

import pytest
import yaml
from rest_framework.test import APIClient

from products.contracts import services as contracts
from products.models import DataProduct

pytestmark = pytest.mark.django_db

V302 = {
    "apiVersion": "v3.0.2",
    "kind": "DataContract",
    "id": "shipments-contract",
    "version": "1.0.0",
    "status": "draft",
    "domain": "orders",
    "dataProduct": "shipments",
    "schema": [
        {
            "name": "shipments",
            "physicalType": "table",
            "physicalName": "shipments",
            "properties": [
                {
                    "name": "shipment_id",
                    "logicalType": "integer",
                    "required": True,
                    "primaryKey": True,
                    "unique": True,
                    "logicalTypeOptions": {
                        "minimum": 0,
                        "maximum": 1000000,
                        "exclusiveMaximum": True,
                        "exclusiveMinimum": False,
                    },
                    "quality": [{"rule": "nullCheck", "mustBe": 0, "description": "Always set."}],
                },
                {"name": "carrier", "logicalType": "string"},
            ],
        }
    ],
    "slaProperties": [
        {"property": "latency", "value": 4, "unit": "d", "column": "shipments.shipment_id"}
    ],
    "team": [
        {"username": "olivia", "role": "owner", "comment": "Leads the orders team."},
    ],
}

V310 = {
    "apiVersion": "v3.1.0",
    "kind": "DataContract",
    "id": "returns-contract",
    "version": "1.0.0",
    "status": "active",
    "domain": "orders",
    "dataProduct": "returns",
    "schema": [
        {
            "name": "returns",
            "physicalType": "table",
            "properties": [
                {"name": "return_id", "logicalType": "integer", "primaryKey": True},
                {"name": "reason", "logicalType": "string", "description": "Why it came back."},
            ],
        }
    ],
}


def _put(user, doc, product):
    c = APIClient()
    c.force_login(user)
    return c.put(
        f"/api/v1/products/orders/{product}/contract",
        data=yaml.safe_dump(doc, sort_keys=False),
        content_type="application/yaml",
    )


def test_a_valid_v3_0_2_document_imports_with_its_older_shapes_read_as_v3_2_0(mesh):
    r = _put(mesh.owner, V302, "shipments")
    assert r.status_code == 201, r.content
    product = DataProduct.objects.get(domain__slug="orders", slug="shipments")
    assert [f.name for f in product.ports.get().fields.order_by("ordinal")] == [
        "shipment_id",
        "carrier",
    ]
    out = contracts.export_document(product)
    assert out["apiVersion"] == "v3.2.0"
    prop = out["schema"][0]["properties"][0]
    # A boolean exclusive bound (v3.0.x) is the number it bounds by (v3.2.0); false is dropped.
    assert prop["logicalTypeOptions"] == {"minimum": 0, "exclusiveMaximum": 1000000}
    # The v3.0.x quality `rule` is a v3.2.0 `metric`, its other keys kept.
    assert prop["quality"] == [{"mustBe": 0, "description": "Always set.", "metric": "nullValues"}]
    # The SLA's `column` is its `element`; a member's `comment` its `description`.
    assert {"property": "latency", "value": 4, "unit": "d", "element": "shipments.shipment_id"} in (
        out["slaProperties"]
    )
    assert out["team"]["members"] == [
        {"username": "olivia", "role": "owner", "description": "Leads the orders team."}
    ]


def test_a_key_whose_new_name_is_taken_travels_as_a_custom_property():
    doc = copy.deepcopy(V302)
    doc["team"][0]["description"] = "Owner since 2024."
    member = contracts.upgrade(doc)["team"]["members"][0]
    assert member["description"] == "Owner since 2024."
    assert member["customProperties"] == [
        {"property": "comment", "value": "Leads the orders team."}
    ]


def test_a_valid_v3_1_0_document_imports(mesh):
    r = _put(mesh.owner, V310, "returns")
    assert r.status_code == 201, r.content
    assert DataProduct.objects.filter(domain__slug="orders", slug="returns").exists()


def test_an_older_document_is_checked_against_its_own_schema(mesh):
    """A v3.2.0 shape in a v3.0.2 document is an error of that document's own schema, named by
    its path (v3.0.2 has no `map` logical type)."""
    doc = copy.deepcopy(V302)
    doc["schema"][0]["properties"][1]["logicalType"] = "map"
    r = _put(mesh.owner, doc, "shipments")
    assert r.status_code == 400
    assert r.json()["detail"].startswith("schema[0].properties[1].logicalType: 'map' is not one")
