"""The quick schema check (jsonschema-rs) gives the Python validator's verdict.

`schema_errors` trusts the compiled copy of each ODCS and ODPS schema when it says a document
is valid, and asks the Python validator (for its messages) only otherwise. So for any document
the two must agree: drawn from each official schema, then broken at a random place (a value
replaced by any JSON, a key dropped or added), the verdicts are the same.
"""

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from products.contracts import odps
from products.contracts import services as contracts
from tests.properties.test_odcs_versions import _bounded

# Schemas and documents only, no database: once per CI run is enough, and the SQLite suite has
# the time to spare (drawing from the largest schemas takes ~1.5 s a document).
pytestmark = pytest.mark.skipif(
    connection.vendor == "postgresql", reason="no database involved: runs in the SQLite suite"
)

# One per schema file (ODCS v3.0.0 is read with v3.0.1's).
VALIDATORS = {
    **{f"ODCS {v}": contracts._validator(v) for v in contracts.SCHEMA_FILES if v != "v3.0.0"},
    **{f"ODPS {v}": odps.validator(v) for v in odps.SCHEMAS},
}
# hypothesis-jsonschema draws from the largest schemas slowly (~1.5 s a document).
EXAMPLES = {"ODCS v3.1.0": 6, "ODCS v3.2.0": 6}
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=5,
)


def _break(doc, data):
    """`doc` with one place changed: a value replaced, a key dropped or a key added."""
    node = doc
    while isinstance(node, dict | list) and node and data.draw(st.booleans()):
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        key = data.draw(st.sampled_from(keys))
        if not isinstance(node[key], dict | list) or not node[key]:
            break
        node = node[key]
    if isinstance(node, dict):
        action = data.draw(st.sampled_from(["replace", "drop", "add"] if node else ["add"]))
        if action == "add":
            node[data.draw(st.text(max_size=6))] = data.draw(JSON)
            return doc
        key = data.draw(st.sampled_from(list(node)))
        if action == "drop":
            del node[key]
        else:
            node[key] = data.draw(JSON)
    elif isinstance(node, list) and node:
        node[data.draw(st.integers(0, len(node) - 1))] = data.draw(JSON)
    return doc


@pytest.mark.parametrize("name", list(VALIDATORS))
def test_the_quick_check_gives_the_python_validators_verdict(name):
    validator = VALIDATORS[name]
    quick = contracts._quick(validator)

    @settings(
        max_examples=EXAMPLES.get(name, 15),
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,  # the same documents every run
    )
    @given(data=st.data())
    def check(data):
        doc = data.draw(from_schema(_bounded(validator.schema)))
        if data.draw(st.booleans()):
            doc = _break(doc, data)
        valid = not any(True for _ in validator.iter_errors(doc))
        assert quick.is_valid(doc) == valid, doc
        assert (contracts.schema_errors(doc, validator) == {}) == valid

    check()


def test_an_invalid_document_still_gets_the_python_validators_messages():
    doc = {"apiVersion": "v3.1.0", "kind": "DataContract", "id": 5, "status": "active"}

    errors = contracts.schema_errors(doc, contracts._validator("v3.1.0"))

    assert "id" in errors and "is not of type 'string'" in errors["id"][0]
    assert any("'version' is a required property" in m for m in errors["document"])
