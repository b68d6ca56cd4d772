"""ODPS round trip (issue 16): the standard's own examples go in and come back out as they
were, modulo the normalisations docs/contracts.md lists ("The product in ODPS"); what the
portal has no field for is kept, and nothing connection-like in it reaches a reader who may not
see where the data lives."""

import copy
import json
import math
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from rest_framework.test import APIClient

from products.contracts import odps
from products.contracts import services as contracts
from products.models import DataProduct
from tests.conftest import FAIL_ON_SKIP
from tests.contracts.test_demo_exports import _lint

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((Path(__file__).parent / "odps_examples").glob("*.odps.yaml"))
TEMPLATE = "odps-1.1.0.init.yaml"  # the standard's template, as dataproduct-cli ships it


def client_for(user) -> APIClient:
    c = APIClient()
    c.force_authenticate(user)
    return c


def put(client, path: str, text: str):
    return client.put(path, data=text, content_type="application/yaml")


def export(client, path: str) -> dict:
    r = client.get(path, HTTP_ACCEPT="application/json")
    assert r.status_code == 200, r.content
    return json.loads(r.content)


# The documented normalisations (docs/contracts.md, "The product in ODPS"), written out here
# rather than taken from the code they check: values the portal writes from its own data.
PORTAL_TOP = ("apiVersion", "id", "status", "domain", "productCreatedTs")
PORTAL_PROPERTIES = ("classification", "summary", "sunsetDate", "replacement")
PORTAL_PORT_PROPERTIES = ("businessName", "format", "location", "dataSource")
PORTAL_INPUT_PROPERTIES = ("description", "externalKind")


def modulo_normalisations(doc: dict, team: str) -> dict:
    d = copy.deepcopy(doc)
    for key in PORTAL_TOP:
        d.pop(key, None)

    def custom(obj: dict, portal: tuple[str, ...]) -> None:
        rest = [c for c in obj.pop("customProperties", []) if c["property"] not in portal]
        if rest:
            obj["customProperties"] = rest

    custom(d, PORTAL_PROPERTIES)
    support = [s for s in d.pop("support", []) if s["channel"] not in ("mesh-portal", team)]
    if support:
        d["support"] = support
    rest_team = {k: v for k, v in d.pop("team", {}).items() if k not in ("description", "members")}
    rest_team.pop("name", None)
    if rest_team:
        d["team"] = rest_team
    for port in d.get("outputPorts", []):
        port.pop("version", None)
        port.pop("contractId", None)
        custom(port, PORTAL_PORT_PROPERTIES)
    for port in d.get("inputPorts", []):
        port.pop("version", None)
        custom(port, PORTAL_INPUT_PROPERTIES)
    for key in ("outputPorts", "inputPorts"):
        if key in d:
            d[key] = sorted(d[key], key=lambda p: (p.get("contractId", ""), p["name"]))
    # An empty list or object where the portal writes its own values is left out.
    for key in ("description", "tags", "inputPorts", "outputPorts"):
        if d.get(key) in ({}, []):
            del d[key]
    return _numbers(d)


def _numbers(value):
    """Every number as its decimal value: on PostgreSQL (jsonb keeps numbers as numeric) a
    float such as 2.5e+16 comes back written 25000000000000000, the same number."""
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    if isinstance(value, float) and math.isfinite(value):
        return Decimal(repr(value)).normalize()
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value).normalize()
    return value


def _template() -> Path:
    found = sorted(
        ROOT.glob(f".venv-dataproduct/lib/python*/site-packages/dataproduct/schemas/{TEMPLATE}")
    )
    if not found:
        (pytest.fail if FAIL_ON_SKIP else pytest.skip)(
            "dataproduct-cli is not installed: make dataproduct-cli"
        )
    return found[0]


@pytest.mark.parametrize("example", [*EXAMPLES, TEMPLATE], ids=lambda p: getattr(p, "name", p))
def test_the_standards_examples_round_trip(mesh, example, tmp_path):
    path = _template() if example == TEMPLATE else example
    text = path.read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    odps.validate(doc)  # an example valid against the official schema, as it came
    url = "/api/v1/products/orders/customer-360/odps"
    if str(doc.get("id", "")).startswith("urn:mesh:"):
        url = f"/api/v1/products/{doc['id'].replace('urn:mesh:', '').replace(':', '/')}/odps"
    c = client_for(mesh.owner)
    r = put(c, url, text)
    assert r.status_code == 201, r.content
    kept = {k["path"] for k in r.json()["kept"]}
    product = DataProduct.objects.get(domain__slug="orders", slug=url.split("/")[-2])
    out = export(c, url)
    odps.validator("v1.1.0").validate(out)
    assert modulo_normalisations(out, "orders-team") == modulo_normalisations(doc, "orders-team")
    # Where the normalised values come from.
    assert out["id"] == product.urn and out["domain"] == "orders" and out["status"] == "draft"
    assert out["team"]["name"] == "orders-team"
    assert all(p["version"] == product.version for p in out.get("outputPorts", []))
    assert kept or example == TEMPLATE
    # Export -> import -> export: nothing changes, nothing more is reported.
    again = put(c, url, yaml.safe_dump(out, sort_keys=False))
    assert again.status_code == 200 and not again.json()["changed"], again.content
    assert len(again.json()["kept"]) == len(kept)
    assert export(c, url) == out
    # dataproduct-cli accepts the export, kept content and all, every contract beside it.
    for p in DataProduct.objects.select_related("domain"):
        (tmp_path / f"{p.domain.slug}-{p.slug}.odcs.yaml").write_text(contracts.export_yaml(p))
    (tmp_path / "product.odps.yaml").write_text(yaml.safe_dump(out, sort_keys=False))
    doc = tmp_path / "product.odps.yaml"
    report = _lint([doc], tmp_path)[doc]
    assert report["result"] == "passed", report


def test_template_output_port_type_is_kept_as_the_standard_spells_it(mesh):
    r = put(client_for(mesh.owner), "/api/v1/products/orders/tpl/odps", _template().read_text())
    assert r.status_code == 201, r.content
    port = DataProduct.objects.get(slug="tpl").ports.get()
    assert port.kind == "table"
    out = export(client_for(mesh.owner), "/api/v1/products/orders/tpl/odps")
    assert out["outputPorts"][0]["type"] == "tables"


def test_kept_content_never_says_where_the_data_lives_to_readers_without_access(mesh):
    """The connection rule (products/connection.py) applies to kept content too: for the
    owner, approved consumers and staff it comes back as it went in; for everyone else, keys
    and custom properties that name a server, location or connection are left out."""
    product = mesh.products[("orders", "published")]
    url = f"/api/v1/products/orders/{product.slug}/odps"
    owner = client_for(mesh.owner)
    doc = export(owner, url)
    doc["customProperties"].append(
        {"property": "Connection", "value": "jdbc:postgresql://db.internal:5432/sales"}
    )
    doc["managementPorts"] = [
        {
            "name": "admin",
            "content": "control",
            "customProperties": [
                {"property": "Server", "value": {"host": "db.internal", "port": 5432}},
                {"property": "owner", "value": "ops"},
            ],
        }
    ]
    doc["outputPorts"][0]["customProperties"].append({"property": "server", "value": "db.internal"})
    doc["outputPorts"][0]["tags"] = ["core"]
    r = put(owner, url, yaml.safe_dump(doc, sort_keys=False))
    assert r.status_code == 200, r.content
    for user in (mesh.owner, mesh.approved, mesh.staff):
        assert export(client_for(user), url) == doc
    for user in (mesh.consumer, mesh.other_owner):
        raw = client_for(user).get(url).content
        assert b"db.internal" not in raw and b"jdbc" not in raw, user
        seen = yaml.safe_load(raw)
        odps.validate(seen)
        assert seen["managementPorts"] == [
            {
                "name": "admin",
                "content": "control",
                "customProperties": [{"property": "owner", "value": "ops"}],
            }
        ]
        assert seen["outputPorts"][0]["tags"] == ["core"]
    # The activity log says what changed without the values.
    page = client_for(mesh.consumer)
    page.force_login(mesh.consumer)
    activity = page.get(product.get_absolute_url() + "?tab=activity")
    assert activity.status_code == 200
    assert b"db.internal" not in activity.content and b"jdbc" not in activity.content


def test_kept_content_never_overrides_what_the_portal_owns(mesh):
    """A kept value is never one a portal field owns: even written into the stored
    remainder directly, the export takes the portal's values."""
    product = mesh.products[("orders", "published")]
    DataProduct.objects.filter(pk=product.pk).update(
        odps_kept={
            "name": "Smuggled",
            "domain": "users",
            "customProperties": [{"property": "classification", "value": "public"}],
            "team": {"name": "users-team", "tags": ["kept"]},
            "tenant": "acme",
        }
    )
    product.ports.update(odps_kept={"type": "dashboard", "name": "x", "sbom": [{"url": "u"}]})
    out = odps.export_document(DataProduct.objects.get(pk=product.pk), user=mesh.owner)
    assert out["name"] == product.name and out["domain"] == "orders"
    assert [c for c in out["customProperties"] if c["property"] == "classification"] == [
        {"property": "classification", "value": product.classification}
    ]
    assert out["team"]["name"] == "orders-team" and out["team"]["tags"] == ["kept"]
    assert out["tenant"] == "acme"
    port = out["outputPorts"][0]
    assert (port["name"], port["type"], port["sbom"]) == ("main", "table", [{"url": "u"}])
