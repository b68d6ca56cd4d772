"""Properties of the ODCS contract parser and importer (hypothesis).

* A valid contract, once imported, exports to a document that imports as no change and exports
  to the very same text (export → import → export is the identity).
* A valid contract comes back from import → export equal to itself, but for the normalisations
  docs/contracts.md lists ("What a round trip normalises"); quality rules and SLAs have their own
  round-trip property (tests/properties/test_quality_roundtrip.py).
* Any text at all (garbled YAML, JSON-ish fragments, YAML's own exotic tags) is either parsed or
  refused with the parser's ValidationError naming a path or a line; through the API's PUT
  contract endpoint it is a 4xx with field and reason, never a 500.
"""

import copy
import json
import re
import string

import pytest
import yaml
from django.core.exceptions import ValidationError
from django.db import transaction
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from products.contracts import services as contracts
from products.models import DataProduct

BOUNDED = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# -- strategies --------------------------------------------------------------------------------

words = st.text(string.ascii_letters + string.digits + " .,-'éß€", min_size=1, max_size=30)
# Leading/trailing blanks are not part of a name anywhere in the portal.
names = words.map(str.strip).filter(bool)
slugs = st.from_regex(r"[a-z][a-z0-9]{0,8}(-[a-z0-9]{1,6}){0,2}", fullmatch=True)
field_names = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True)
versions = st.from_regex(r"[1-9]\.[0-9]{1,2}\.[0-9]{1,2}", fullmatch=True)
extras = st.dictionaries(
    st.sampled_from(["examples", "tags", "businessName"]),
    st.lists(names, max_size=2),
    max_size=1,
)


@st.composite
def properties(draw):
    out = []
    for name in draw(st.lists(field_names, min_size=1, max_size=5, unique=True)):
        prop = {
            "name": name,
            "logicalType": draw(st.sampled_from(sorted(contracts.LOGICAL_TYPES))),
            "required": draw(st.booleans()),
            "unique": draw(st.booleans()),
            "primaryKey": draw(st.booleans()),
        }
        if prop["logicalType"] == "map":  # ODCS: a map names its key and value types
            kind = {"logicalType": "string"}
            prop["map"] = {"key": {"name": "key", **kind}, "value": {"name": "value", **kind}}
        if draw(st.booleans()):
            prop["description"] = draw(names)
        if draw(st.booleans()):
            prop["physicalType"] = draw(st.sampled_from(["bigint", "text", "varchar(20)"]))
        classification = draw(st.sampled_from([None, "pii", "internal"]))
        if classification:
            prop["classification"] = classification
        if draw(st.booleans()):
            prop["examples"] = draw(st.lists(names, min_size=1, max_size=2))
        out.append(prop)
    return out


@st.composite
def contract_documents(draw) -> dict:
    slug = draw(slugs)
    doc: dict = {
        # Its shapes are v3.2.0's (a team object, map types): older versions are in
        # tests/properties/test_odcs_versions.py, generated from their own schemas.
        "apiVersion": contracts.API_VERSION,
        "kind": "DataContract",
        "id": draw(st.sampled_from([f"urn:mesh:orders:{slug}", f"{slug}-contract"])),
        "name": draw(names),
        "version": draw(versions),
        "status": "draft",
        "domain": "orders",
        "dataProduct": slug,
        "team": {"name": "orders-team"},
    }
    if draw(st.booleans()):
        doc["description"] = {"purpose": draw(names)}
        if draw(st.booleans()):
            doc["description"]["usage"] = draw(names)
    tags = draw(st.lists(slugs, max_size=3, unique=True))
    if tags:
        doc["tags"] = tags
    schema = []
    for port in draw(st.lists(slugs, max_size=3, unique=True)):
        obj = {
            "name": port,
            "physicalType": draw(st.sampled_from(sorted(contracts.PORT_KINDS))),
            "logicalType": "object",
            "properties": draw(properties()),
        }
        if draw(st.booleans()):
            obj["businessName"] = draw(names)
        if draw(st.booleans()):
            obj["physicalName"] = f"wh.{port.replace('-', '_')}"
        if draw(st.booleans()):
            obj["customProperties"] = [{"property": "format", "value": "parquet"}]
        schema.append(obj)
    if schema:
        doc["schema"] = schema
    sla = []
    if draw(st.booleans()):
        sla.append(
            {
                "property": "freshness",
                "value": draw(st.integers(1, 500)),
                "unit": draw(st.sampled_from(["h", "d"])),
            }
        )
    if draw(st.booleans()):
        value = draw(st.decimals(0, 100, places=draw(st.integers(0, 3))))
        sla.append({"property": "availability", "value": float(value), "unit": "percent"})
    if draw(st.booleans()):
        sla.append({"property": "retention", "value": draw(st.integers(1, 10)), "unit": "y"})
    if sla:
        doc["slaProperties"] = sla
    custom = []
    classification = draw(st.sampled_from([None, *DataProduct.Classification.values]))
    if classification:
        custom.append({"property": "classification", "value": classification})
    if draw(st.booleans()):
        custom.append({"property": "summary", "value": draw(names)})
    if draw(st.booleans()):
        custom.append({"property": "costCentre", "value": draw(names)})
    if custom:
        doc["customProperties"] = custom
    return doc


def _json_values():
    scalars = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=True, allow_infinity=True)
        | st.text(max_size=20)
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=20,
    )


def _valid_text(draw) -> str:
    return yaml.safe_dump(draw(contract_documents()), sort_keys=False, allow_unicode=True)


@st.composite
def garbled(draw) -> str:
    """Texts near a contract: a valid one cut, spliced or mangled, or any YAML/JSON value."""
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return draw(st.text(max_size=200))
    if kind == 1:
        text = _valid_text(draw)
        cut = draw(st.integers(0, len(text)))
        return text[:cut]
    if kind == 2:
        text = _valid_text(draw)
        at = draw(st.integers(0, len(text)))
        junk = draw(st.sampled_from(["\t", ":", "- ", "[", "}", "&a ", "*a", "!!binary ", "\n  x"]))
        return text[:at] + junk + text[at:]
    if kind == 3:
        value = draw(_json_values())
        return json.dumps(value) if draw(st.booleans()) else yaml.safe_dump(value)
    if kind == 4:
        # A valid contract with one value replaced by anything at all.
        doc = draw(contract_documents())
        key = draw(st.sampled_from(sorted(doc)))
        doc[key] = draw(_json_values())
        return json.dumps(doc, allow_nan=True)
    tag = draw(st.sampled_from(["!!binary aGk=", "!!set {a, b}", "!!timestamp 2020-01-01", ".nan"]))
    return _valid_text(draw) + f"customProperties:\n- property: x\n  value: {tag}\n"


# -- properties --------------------------------------------------------------------------------


_CONTRACT = (
    "apiVersion: v3.1.0\nkind: DataContract\nid: x\nversion: 1.0.0\nstatus: draft\n"
    "domain: orders\ndataProduct: fuzzed\nteam: {name: orders-team}\n"
)
# YAML that JSON cannot express, in places the ODCS schema leaves open; deep nesting; and
# aliases that expand exponentially ("billion laughs").
_EXOTIC = [
    _CONTRACT + f"schema:\n- name: t\n  properties:\n  - name: a\n    examples: [{value}]\n"
    for value in ("!!binary aGk=", "!!set {a, b}", "!!timestamp 2020-01-01", ".nan", "{1: 2}")
] + [
    "a: " + "[" * 5000,
    _CONTRACT + "schema:\n- name: t\n  properties:\n  - name: a\n    examples: " + "[" * 60,
    "a0: &a0 [x, x, x, x, x, x, x, x, x]\n"
    + "\n".join(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 8)),
]


def _examples(test):
    for text in _EXOTIC:
        test = example(text=text)(test)
    return test


@_examples
@given(text=garbled())
@BOUNDED
def test_parser_raises_only_its_own_validation_error_with_a_place(text):
    try:
        doc = contracts.parse(text)
        contracts.validate(doc)
        contracts._plan(doc)
    except ValidationError as e:
        assert e.message_dict, "a field path"
        for path, messages in e.message_dict.items():
            assert path and messages
            if path == "document" and "YAML syntax" in messages[0]:
                assert "line" in messages[0]


@pytest.mark.django_db
@given(doc=contract_documents())
@BOUNDED
def test_export_import_export_is_the_identity(mesh, doc):
    with transaction.atomic():
        text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
        result = contracts.contract_import(text=text, user=mesh.owner)
        assert result.created and result.applied
        product = DataProduct.objects.get(domain__slug="orders", slug=doc["dataProduct"])
        assert product.name == doc["name"]
        assert [p.slug for p in product.ports.order_by("pk")] == [
            o["name"] for o in doc.get("schema", [])
        ]
        first = contracts.export_yaml(product)
        again = contracts.contract_import(text=first, user=mesh.owner, product=product)
        assert not again.changed, [c.message for c in again.changes]
        assert contracts.export_yaml(DataProduct.objects.get(pk=product.pk)) == first
        transaction.set_rollback(True)


@pytest.mark.django_db
@_examples
@given(text=garbled())
@BOUNDED
def test_put_contract_never_answers_500(mesh, text):
    client = APIClient()
    client.force_login(mesh.owner)
    # The product the document names, so that a well-formed one gets as far as the import.
    named = re.search(r"dataProduct: ([a-z0-9-]+)$", text, re.MULTILINE)
    slug = named.group(1) if named else "fuzzed"
    json_body = text.lstrip().startswith("{")
    with transaction.atomic():
        r = client.put(
            f"/api/v1/products/orders/{slug}/contract",
            data=text.encode("utf-8", errors="replace"),
            content_type="application/json" if json_body else "application/yaml",
        )
        assert r.status_code in (200, 201, 400), (r.status_code, r.content[:300])
        if r.status_code == 400:
            body = r.json()
            assert body["errors"] and all(e["field"] and e["reason"] for e in body["errors"])
        transaction.set_rollback(True)


def _normalised(doc: dict) -> dict:
    """doc as the portal gives it back: exactly the list in docs/contracts.md."""
    doc = copy.deepcopy(doc)
    if "tags" in doc:  # a set of tags: alphabetical
        doc["tags"] = sorted(doc["tags"])
    if "schema" in doc:  # objects (output ports) in the portal's order: by name
        doc["schema"] = sorted(doc["schema"], key=lambda o: o["name"])
        for obj in doc["schema"]:  # every port has a display name: its slug when none is given
            obj.setdefault("businessName", obj["name"])
    custom = doc.get("customProperties", [])
    own = {c["property"]: c for c in custom if c["property"] in ("classification", "summary")}
    own.setdefault("classification", {"property": "classification", "value": "internal"})
    doc["customProperties"] = [
        own["classification"],
        *([own["summary"]] if "summary" in own else []),
        *(c for c in custom if c["property"] not in own),
    ]
    return doc


@pytest.mark.django_db
@given(doc=contract_documents())
@settings(BOUNDED, max_examples=20, derandomize=True)  # the suite's time: the same 20 each run
def test_import_then_export_gives_the_document_back(mesh, doc):
    with transaction.atomic():
        text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
        contracts.contract_import(text=text, user=mesh.owner)
        product = DataProduct.objects.get(domain__slug="orders", slug=doc["dataProduct"])
        assert yaml.safe_load(contracts.export_yaml(product)) == _normalised(doc)
        transaction.set_rollback(True)
