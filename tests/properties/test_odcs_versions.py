"""Every ODCS version the portal reads, generated from its own official JSON schema.

hypothesis-jsonschema draws documents from each schema in products/contracts/schemas/ (with
recursive references cut at one level, so documents stay small); each one valid against its
schema either imports (dry run) or is refused only by one of the portal's documented rules
(docs/contracts.md, "Portal rules"), with the document path in the error; never anything else.
"""

import json
import re

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from products.contracts import services as contracts

# The portal's rules beyond the schema (docs/contracts.md, "Portal rules"): a refusal says one
# of these about a path in the document.
PORTAL_RULES = (
    "is not a port slug",
    "Duplicate schema object",
    "is not a port kind the portal knows",
    "Duplicate field",
    "The portal stores",
    "Freshness needs a positive number",
    "Freshness is too long",
    "Availability is a percentage",
    "Availability is between 0 and 100",
    "Unknown team",
    "is not a product slug",
    "Ensure this value has at most",
    "The portal needs a version",
    "not Unicode text",
    "NUL character",
)


def _bounded(schema: dict) -> dict:
    """The schema with every $ref inlined and a reference within itself cut (`false`: that
    optional nesting is left out), without the keywords hypothesis-jsonschema cannot read."""

    def walk(node, seen):
        if isinstance(node, list):
            return [walk(n, seen) for n in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            ref = node["$ref"]
            if ref in seen:
                return False
            target = schema
            for part in ref.removeprefix("#/").split("/"):
                target = target[part]
            rest = {k: v for k, v in node.items() if k != "$ref"}
            inlined = walk(target, (*seen, ref))
            return {"allOf": [inlined, walk(rest, seen)]} if rest else inlined
        skip = (
            "$defs",
            "$schema",
            "unevaluatedProperties",
            "description",
            "examples",
            "if",
            "then",
            "else",
        )
        return {k: walk(v, seen) for k, v in node.items() if k not in skip}

    return walk(schema, ())


def _documents(api_version: str):
    schema = json.loads(
        contracts.SCHEMAS.joinpath(contracts.SCHEMA_FILES[api_version]).read_text("utf-8")
    )
    return from_schema(_bounded(schema)).map(lambda doc: {**doc, "apiVersion": api_version})


@pytest.mark.parametrize("api_version", list(contracts.SCHEMA_FILES))
def test_every_valid_document_imports_or_meets_a_documented_rule(mesh, api_version):
    @settings(
        max_examples=8,  # each generated document costs ~0.5 s on a busy machine
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,  # the same documents every run: CI stays reproducible
    )
    @given(doc=_documents(api_version), slug=st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True))
    def check(doc, slug):
        # Only what the portal adds to the standard is fixed: the domain and product it names.
        doc.update(domain="orders", dataProduct=slug)
        if isinstance(doc.get("team"), dict) and "name" in doc["team"]:
            doc["team"]["name"] = mesh.orders_team.slug
        assume(not any(True for _ in contracts._validator(api_version).iter_errors(doc)))
        try:
            contracts.contract_import(text=json.dumps(doc), user=mesh.owner, dry_run=True)
        except ValidationError as e:
            for path, messages in e.message_dict.items():
                # A path into the document (keys may hold any text: "price.:" is key ":").
                assert path == "document" or re.split(r"[.\[]", path)[0] in doc, path
                for message in messages:
                    assert any(rule in message for rule in PORTAL_RULES), (path, message, doc)
        except PermissionDenied:  # rights, not the document: the same 403 as every door
            pass

    check()
