"""Property (issue 16): whatever ODPS content the portal has no field for, as the official
ODPS 1.1.0 schema allows it (generated from the schema's own definitions by
hypothesis-jsonschema), an import keeps it and the export gives it back as it came — the
document equals the export modulo the normalisations docs/contracts.md lists."""

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from products.contracts import odps
from products.contracts import services as contracts
from tests.contracts.test_odps_roundtrip import modulo_normalisations

pytestmark = pytest.mark.django_db

# A copy: hypothesis-jsonschema canonicalises the schema it is given in place (sorting its
# properties), which would reorder the keys of every later ODPS export in this process.
SCHEMA = copy.deepcopy(odps.validator("v1.1.0").schema)
DEFS = SCHEMA["$defs"]
# The parts of a document the portal has no field for, each as the official schema defines it.
UNOWNED_TOP = (
    "tenant", "type", "context", "synonyms", "deprecated", "authoritativeDefinitions",
    "managementPorts",
)  # fmt: skip
UNOWNED_OUTPUT = ("id", "sbom", "inputContracts", "synonyms", "tags", "context", "deprecated")
PORTAL_NAMES = {"classification", "summary", "sunsetDate", "replacement", "businessName"}
PORTAL_NAMES |= {"format", "location", "dataSource", "description", "externalKind"}


def _part(properties: dict) -> st.SearchStrategy:
    return from_schema(
        {
            "$defs": DEFS,
            "type": "object",
            "properties": properties,
            "additionalProperties": False,
        }
    )


custom_items = from_schema({"$defs": DEFS, "$ref": "#/$defs/CustomProperty"}).filter(
    lambda c: c["property"] not in PORTAL_NAMES
)
top = _part({k: SCHEMA["properties"][k] for k in UNOWNED_TOP})
port_extra = _part({k: DEFS["OutputPort"]["properties"][k] for k in UNOWNED_OUTPUT})
description = _part(
    {k: DEFS["Description"]["properties"][k] for k in ("usage", "limitations")}
    | {"customProperties": {"type": "array", "items": {"$ref": "#/$defs/CustomProperty"}}}
)
support = from_schema({"$defs": DEFS, "$ref": "#/$defs/Support"}).filter(
    lambda s: s["channel"] not in ("mesh-portal", "orders-team")
)
team = _part({k: DEFS["Team"]["properties"][k] for k in ("tags", "customProperties")})


def _storable(value):
    """value with the text a database cannot store replaced (the portal refuses a NUL and a
    lone surrogate, docs/contracts.md); the generated content is otherwise left as it is."""
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(v) for v in value]
    if isinstance(value, str):
        return "".join("?" if c == "\x00" or 0xD800 <= ord(c) <= 0xDFFF else c for c in value)
    return value


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    top=top,
    port=port_extra,
    description=description,
    custom=st.lists(custom_items, max_size=3),
    port_custom=st.lists(custom_items, max_size=2),
    support=st.lists(support, max_size=2),
    team=team,
)
def test_content_the_portal_has_no_field_for_comes_back_as_it_came(
    mesh, top, port, description, custom, port_custom, support, team
):
    product = mesh.products[("orders", "published")]
    base = odps.export_document(product, user=mesh.owner)
    doc = copy.deepcopy(base)
    doc.update(top)
    doc["description"] = {**doc.get("description", {}), **description}
    doc["customProperties"] = [*doc["customProperties"], *custom]
    doc["outputPorts"][0].update(port)
    doc["outputPorts"][0]["customProperties"] += port_custom
    doc["support"] = [*doc["support"], *support]
    doc["team"] = {**doc["team"], **team}
    doc = _storable(doc)
    odps.validate(doc)  # what was generated is a valid document
    result = odps.odps_import(text=contracts.dump(doc), user=mesh.owner, product=product)
    out = odps.export_document(product, user=mesh.owner)
    assert modulo_normalisations(out, "orders-team") == modulo_normalisations(doc, "orders-team")
    odps.validate(out)
    # Whatever was kept, importing the export again changes nothing.
    again = odps.odps_import(text=contracts.dump(out), user=mesh.owner, product=product)
    assert not again.changed, again.changes
    assert len(again.kept) == len(result.kept)
