"""Data contracts in the Open Data Contract Standard (ODCS) v3, and their versions.

* `export_yaml(product)`: the product as an ODCS v3.2.0 document.
* `contract_import(text=..., user=...)`: validate (YAML, the official ODCS JSON schema of the
  document's own apiVersion, shipped in schemas/, the portal's rules) and upsert a product from a
  document; `dry_run=True` only says what would change. A rejected document changes nothing.
* `record_version(product)`: called by the services after every change to a product's
  metadata, ports, fields or SLOs; stores a `ContractVersion` with a classified changelog and
  refuses a breaking change to a published product without a major version bump.

ODCS content the portal does not map is kept (per product, object and property) in the latest
version's `extras` and merged back on export, so a round trip loses nothing.
"""

import contextvars
import json
import math
import os
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from dataclasses import field as dataclass_field
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from functools import cache
from importlib.resources import files
from math import ceil
from typing import Any

import yaml
from django.core.exceptions import ValidationError
from django.db import transaction
from jsonschema import Draft201909Validator
from jsonschema.exceptions import best_match

from domains.models import Domain, Team
from meshportal import audit, bulk, parallel
from meshportal.notifications import notify
from meshportal.permissions import CREATE_PRODUCT, EDIT, VIEW, can, require, require_transfer
from products import extensions, urns
from products.locations import file_format, is_file_location
from products.models import ContractVersion, DataProduct, OutputPort

API_VERSION = "v3.2.0"
ACCEPTED_VERSIONS = ("v3.0.0", "v3.0.1", "v3.0.2", "v3.1.0", "v3.2.0")  # SCHEMA_FILES
PORT_KINDS = {k: k for k in OutputPort.Kind.values} | {"topic": "stream"}
LOGICAL_TYPES = {
    "string", "integer", "number", "boolean", "date", "timestamp", "object", "array", "map"
}  # fmt: skip
FRESHNESS_NAMES = ("freshness", "latency")
# Time units of SLA values (ODCS: "d, day, days for days; y, yr, years for years, etc."), in
# hours, exact. A month is a twelfth of a 365-day year.
_UNITS = {
    ("s", "sec", "secs", "second", "seconds"): Decimal(1) / 3600,
    ("m", "min", "mins", "minute", "minutes"): Decimal(1) / 60,
    ("h", "hr", "hrs", "hour", "hours"): Decimal(1),
    ("d", "day", "days"): Decimal(24),
    ("w", "wk", "week", "weeks"): Decimal(168),
    ("mo", "mon", "month", "months"): Decimal(730),
    ("y", "yr", "yrs", "year", "years"): Decimal(8760),
}
HOURS_PER_UNIT = {name: factor for names, factor in _UNITS.items() for name in names}
FRESHNESS_MAX_HOURS = 2**31 - 1  # the product's freshness SLO field


def sla_hours(value, unit) -> Decimal | None:
    """An SLA value in hours (Decimal), or None when it is not a number with a time unit."""
    factor = HOURS_PER_UNIT.get(str("h" if unit is None else unit).strip().lower())
    if factor is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return Decimal(str(value)) * factor


def _availability(value) -> Decimal | None:
    """The product's availability SLO (3 decimals, never rounded up) from an SLA value."""
    if isinstance(value, bool):
        return None
    try:
        exact = Decimal(str(value))
        if not exact.is_finite():
            return None
        return exact.quantize(Decimal("0.001"), rounding=ROUND_DOWN)
    except InvalidOperation:
        return None


def _slo_entry(sla) -> bool:
    """An slaProperties entry about the whole product (no element): freshness/latency and
    availability of the first such entry are the product's SLOs."""
    return isinstance(sla, dict) and not ({"element", "valueExt"} & set(sla))


# The contract keeps every ODCS `quality` section and `slaProperties` entry as it came (extras);
# what runs them (governance's checks and SLAs) is asked through `products.extensions`
# (`import_quality`, `export_quality`, `import_slas`, `export_slas`).


# -- parsing and validation ----------------------------------------------------------------------


# libyaml's parser, when PyYAML has it (its wheels do), with the same safe constructor: the same
# documents, the same error positions (in libyaml's words), five to ten times faster (a restore
# of 10,000 products spent a sixth of its time parsing). It refuses nesting beyond 1,000 levels
# itself (below Python's recursion limit, which the pure-Python parser ran into instead).
class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe YAML without implicit timestamps: ODCS wants dates as strings."""


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


# libyaml's emitter, when PyYAML has it, writes the same text as the pure-Python one (compared on
# 1,500 generated and all demo contracts) about four times faster: exports of a whole mesh.
class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    pass


# Model choices (str enums) are written as their plain values.
_Dumper.add_multi_representer(str, lambda dumper, value: dumper.represent_str(str(value)))


MAX_DEPTH = 50  # far deeper than any ODCS document
MAX_NODES = 1_000_000  # more than a request body can hold without YAML aliases (&a, *a)


_NOT_UNICODE = "Contains a lone surrogate (such as \\ud800): not Unicode text."


def _unicode(text: str) -> bool:
    """False for a string with a lone surrogate, which JSON's and YAML's \\u escapes can
    spell but no database or UTF-8 file can store."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _json_only(doc: dict) -> None:
    """Refuse what YAML can express but JSON (and so ODCS) cannot: explicit tags such as
    !!binary, !!set or !!timestamp, non-text keys, NaN and infinities, absurd nesting, and
    aliases that expand into more values than any contract has (a "billion laughs")."""
    stack: list[tuple[Any, tuple]] = [(doc, ())]
    nodes = 0
    while stack:
        value, parts = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise ValidationError({"document": f"More than {MAX_NODES:,} values."})
        if len(parts) > MAX_DEPTH:
            raise ValidationError({path_of(parts): f"Nested deeper than {MAX_DEPTH} levels."})
        if isinstance(value, dict):
            for k, v in value.items():
                if not isinstance(k, str):
                    raise ValidationError({path_of(parts): f"Key {k!r} is not text."})
                if "\x00" in k:
                    raise ValidationError({path_of(parts): "A key contains a NUL character."})
                if not _unicode(k):
                    raise ValidationError({path_of(parts): _NOT_UNICODE})
                stack.append((v, (*parts, k)))
        elif isinstance(value, list):
            stack.extend((v, (*parts, i)) for i, v in enumerate(value))
        elif isinstance(value, str) and "\x00" in value:
            # YAML's "\0" escape: PostgreSQL cannot store it in text, and no contract needs it.
            raise ValidationError({path_of(parts): "Contains a NUL character."})
        elif isinstance(value, str) and not _unicode(value):
            raise ValidationError({path_of(parts): _NOT_UNICODE})
        elif isinstance(value, float) and not math.isfinite(value):
            raise ValidationError({path_of(parts): f"{value} is not a JSON number."})
        elif value is not None and not isinstance(value, str | int | float):
            raise ValidationError({path_of(parts): f"A {type(value).__name__} is not JSON data."})


def max_bytes() -> int:
    """The largest contract document accepted (settings.MESH_CONTRACT_MAX_BYTES), checked by
    every door before it reads the document: API, upload page, import_contract."""
    from django.conf import settings

    return settings.MESH_CONTRACT_MAX_BYTES


def too_large_message(size: int | None = None) -> str:
    limit = max_bytes()
    has = f" (it has {size:,} bytes)" if size is not None else ""
    return f"The document is larger than {limit:,} bytes{has}; split the product or trim it."


def decode(data: bytes) -> str:
    """A document's bytes as text: UTF-8 (with or without a byte-order mark), nothing else."""
    if len(data) > max_bytes():
        raise ValidationError({"document": too_large_message(len(data))})
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValidationError(
            {"document": f"The document is not UTF-8 text (byte {e.start + 1} is not UTF-8)."}
        ) from None
    return text


def parse(text: str) -> dict:
    if "\x00" in text:
        # PostgreSQL cannot store it and no YAML needs it: refuse before parsing.
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise ValidationError({"document": f"The document contains a NUL byte (line {line})."})
    if len(text) > max_bytes():
        raise ValidationError({"document": too_large_message(len(text.encode()))})
    try:
        doc = yaml.load(text, Loader=_Loader)  # a (C)SafeLoader subclass  # noqa: S506  # nosec B506
    except RecursionError as e:
        raise ValidationError({"document": f"Nested deeper than {MAX_DEPTH} levels."}) from e
    except yaml.MarkedYAMLError as e:
        if "nesting depth" in str(e.problem):  # libyaml's own limit
            raise ValidationError({"document": f"Nested deeper than {MAX_DEPTH} levels."}) from e
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown place"
        if "Unicode character escape" in str(e.problem):  # libyaml refuses "\ud800" itself
            raise ValidationError({"document": f"At {where}: {_NOT_UNICODE}"}) from e
        raise ValidationError(
            {"document": f"YAML syntax error at {where}: {e.problem or e.context}."}
        ) from e
    except yaml.YAMLError as e:
        raise ValidationError({"document": f"Not valid YAML: {e}"}) from e
    if not isinstance(doc, dict):
        raise ValidationError({"document": "An ODCS contract is a YAML mapping (key: value)."})
    _json_only(doc)
    return doc


SCHEMAS = files("products.contracts").joinpath("schemas")
# Each apiVersion is checked against the official JSON schema of its own version (schemas/,
# see the README there): v3.0.0 and v3.0.1 share the v3.0.1 schema, which declares both.
SCHEMA_FILES = {
    "v3.0.0": "odcs-3.0.1.schema.json",
    "v3.0.1": "odcs-3.0.1.schema.json",
    "v3.0.2": "odcs-3.0.2.schema.json",
    "v3.1.0": "odcs-3.1.0.schema.json",
    "v3.2.0": "odcs-3.2.0.schema.json",
}


@cache
def _validator(api_version: str = API_VERSION) -> Draft201909Validator:
    schema = json.loads(SCHEMAS.joinpath(SCHEMA_FILES[api_version]).read_text(encoding="utf-8"))
    return Draft201909Validator(schema)


# id() of a Python validator: (that validator, its compiled copy). The validator is kept, so
# its id is never reused for another schema while the entry lives.
_QUICK: dict[int, tuple[Draft201909Validator, Any]] = {}


def _quick(validator: Draft201909Validator) -> Any:
    """The same schema compiled by jsonschema-rs (Rust): whether a document is valid, in
    about 0.3 ms where the Python validator takes 50 (a restore of 10,000 products spent a
    third of its time here). Format checks only if the Python validator has them, so it is
    never more lenient than the Python one (tests/contracts/test_schema_check.py)."""
    entry = _QUICK.get(id(validator))
    if entry is None:
        import jsonschema_rs

        entry = _QUICK[id(validator)] = (
            validator,
            jsonschema_rs.Draft201909Validator(
                validator.schema, validate_formats=validator.format_checker is not None
            ),
        )
    return entry[1]


def schema_errors(doc: dict, validator: Draft201909Validator) -> dict[str, list[str]]:
    """{document path: messages} of `doc` against `validator`'s schema, at most 20 paths;
    empty when valid. A valid document (nearly every one) is answered by the compiled copy;
    only an invalid one pays for the Python validator's messages, which say what and where."""
    if _quick(validator).is_valid(doc):
        return {}
    errors: dict[str, list[str]] = {}
    for err in validator.iter_errors(doc):
        deepest = best_match([err])
        errors.setdefault(path_of(deepest.absolute_path), []).append(deepest.message)
        if len(errors) >= 20:
            break
    return errors


def path_of(parts) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "document"


def validate(doc: dict) -> None:
    """Check doc against the official ODCS JSON schema of its own apiVersion."""
    api_version = doc.get("apiVersion")
    if not isinstance(api_version, str) or api_version not in SCHEMA_FILES:
        raise ValidationError(
            {
                "apiVersion": (
                    f"The portal reads ODCS {', '.join(ACCEPTED_VERSIONS)}; "
                    f"this document is {api_version!r}."
                )
            }
        )
    errors = schema_errors(doc, _validator(api_version))
    if errors:
        raise ValidationError(errors)


def upgrade(doc: dict) -> dict:
    """A valid document of an older ODCS version in v3.2.0's shapes (the portal's model and
    its exports are v3.2.0); nothing is dropped:

    * v3.0.x `logicalTypeOptions` `exclusiveMaximum`/`exclusiveMinimum: true` (with
      `maximum`/`minimum`) become the number (`exclusiveMaximum: 10`); `false` is dropped
      (the bound is inclusive, as `maximum` says);
    * v3.0.x SLA `column` is `element`;
    * v3.0.x `team` (a list of members) becomes `team: {members: [...]}`, a member's `comment`
      its `description` (when it has none);
    * v3.0.x quality `rule` is `metric` (`nullCheck` → `nullValues`, `duplicateCount` →
      `duplicateValues`, `validValues` → `invalidValues` with `arguments.validValues`).
    """
    if doc.get("apiVersion") not in ("v3.0.0", "v3.0.1", "v3.0.2"):
        return doc
    doc = json.loads(json.dumps(doc))  # a copy: the caller's document is not changed
    doc["apiVersion"] = API_VERSION

    def options(prop: dict) -> None:
        opts = prop.get("logicalTypeOptions")
        if isinstance(opts, dict):
            for excl, bound in (("exclusiveMaximum", "maximum"), ("exclusiveMinimum", "minimum")):
                if isinstance(opts.get(excl), bool):
                    if opts.pop(excl) and bound in opts:
                        opts[excl] = opts.pop(bound)
        for rule in prop.get("quality") or []:
            _upgrade_rule(rule)
        for child in prop.get("properties") or []:
            if isinstance(child, dict):
                options(child)
        if isinstance(prop.get("items"), dict):
            options(prop["items"])

    for obj in doc.get("schema") or []:
        if isinstance(obj, dict):
            options(obj)
    for sla in doc.get("slaProperties") or []:
        if isinstance(sla, dict) and "column" in sla:
            _move(sla, "column", "element")
    team = doc.get("team")
    if isinstance(team, list):
        for member in team:
            if isinstance(member, dict) and "comment" in member:
                _move(member, "comment", "description")
        doc["team"] = {"members": team}
    return doc


def _move(obj: dict, old: str, new: str) -> None:
    """Rename an older version's key; when the new key is taken too, the old value travels as
    a custom property of the same name rather than being dropped."""
    value = obj.pop(old)
    if new not in obj:
        obj[new] = value
    else:
        props = obj.setdefault("customProperties", [])
        if isinstance(props, list):
            props.append({"property": old, "value": value})


_V30_METRICS = {
    "nullCheck": "nullValues",
    "duplicateCount": "duplicateValues",
    "validValues": "invalidValues",
    "rowCount": "rowCount",
}


def _upgrade_rule(rule) -> None:
    if not isinstance(rule, dict) or "rule" not in rule or "metric" in rule:
        return
    name = rule.pop("rule")
    rule["metric"] = _V30_METRICS.get(str(name), name)
    if name == "validValues" and "validValues" in rule:
        rule.setdefault("arguments", {})["validValues"] = rule.pop("validValues")


# -- document <-> plan -----------------------------------------------------------------------------

TOP_KEYS = (
    "apiVersion",
    "kind",
    "id",
    "name",
    "version",
    "status",
    "domain",
    "dataProduct",
    "description",
    "tags",
    "team",
    "schema",
    "slaProperties",
    "customProperties",
)
OBJECT_KEYS = (
    "name",
    "businessName",
    "physicalType",
    "physicalName",
    "description",
    "logicalType",
    "properties",
    "customProperties",
)
PROPERTY_KEYS = (
    "name",
    "logicalType",
    "physicalType",
    "description",
    "required",
    "unique",
    "primaryKey",
    "classification",
)


def _custom(items, known: tuple[str, ...]) -> tuple[dict, list]:
    mapped, rest = {}, []
    for item in items or []:
        if item.get("property") in known and item["property"] not in mapped:
            mapped[item["property"]] = item.get("value")
        else:
            rest.append(item)
    return mapped, rest


def _text(value) -> str:
    return "" if value is None else str(value)


def _plan(doc: dict) -> dict:
    """The document as the portal's terms: product fields, ports with fields, and extras."""
    errors: dict[str, str] = {}
    extras: dict[str, Any] = {"top": {}, "objects": {}}
    for key, value in doc.items():
        if key not in TOP_KEYS:
            extras["top"][key] = value
    product: dict[str, Any] = {"version": _text(doc["version"])}
    if not product["version"].strip():
        errors["version"] = "The portal needs a version to compare contracts by, e.g. 1.0.0."
    if doc.get("name") is not None:  # optional in ODCS: a new product is named by its slug
        product["name"] = _text(doc["name"])
    if doc.get("id") is not None and doc["id"] != urns.format_urn(
        str(doc.get("domain")), str(doc.get("dataProduct"))
    ):
        extras["id"] = doc["id"]  # a document's own id; the portal's default is the URN
    desc = doc.get("description") or {}
    product["description"] = _text(desc.get("purpose"))
    rest = {k: v for k, v in desc.items() if k != "purpose"}
    if rest:
        extras["description"] = rest
    product["tags"] = [str(t) for t in doc.get("tags") or []]
    custom, custom_rest = _custom(doc.get("customProperties"), ("classification", "summary"))
    product["summary"] = _text(custom.get("summary"))
    if "classification" in custom:
        product["classification"] = _text(custom["classification"])
    if custom_rest:
        extras["customProperties"] = custom_rest
    team = doc.get("team")
    if isinstance(team, dict):
        if team.get("name"):
            product["owner_team"] = str(team["name"])
        rest = {k: v for k, v in team.items() if k != "name"}
        if rest:
            extras["team"] = rest
    elif team is not None:
        extras["team_members"] = team  # ODCS v3.0.x: a list of members
    product["freshness_slo_hours"] = None
    product["availability_slo"] = None
    # Every entry is kept as it came (export writes it back while the product's SLO says the
    # same); the first freshness/latency and availability entries are the product's SLOs.
    seen_slo = set()
    for i, sla in enumerate(doc.get("slaProperties") or []):
        name, value = sla.get("property"), sla.get("value")
        if not _slo_entry(sla) or name not in (*FRESHNESS_NAMES, "availability"):
            continue
        slo = "freshness" if name in FRESHNESS_NAMES else "availability"
        if slo in seen_slo:
            continue
        seen_slo.add(slo)
        if slo == "freshness":
            hours = sla_hours(value, sla.get("unit"))
            if hours is None or hours <= 0:
                errors[f"slaProperties[{i}]"] = (
                    "Freshness needs a positive number with a time unit: "
                    "s, min, h, d, w, mo or y (e.g. value: 24, unit: h)."
                )
            elif ceil(hours) > FRESHNESS_MAX_HOURS:
                errors[f"slaProperties[{i}].value"] = "Freshness is too long."
            else:
                # The portal judges freshness in whole hours: a finer SLA (30 min, 1.5 h) is
                # kept exactly in the contract and judged at the next whole hour.
                product["freshness_slo_hours"] = ceil(hours)
        else:
            availability = _availability(value)
            if availability is None:
                errors[f"slaProperties[{i}].value"] = "Availability is a percentage, e.g. 99.9."
            elif not 0 <= Decimal(str(value)) <= 100:
                errors[f"slaProperties[{i}].value"] = "Availability is between 0 and 100."
            else:
                product["availability_slo"] = availability
    if doc.get("slaProperties"):
        extras["slaProperties"] = list(doc["slaProperties"])

    ports, seen_ports = [], set()
    for i, obj in enumerate(doc.get("schema") or []):
        at = f"schema[{i}]"
        slug = str(obj["name"])
        if not slug.replace("-", "").replace("_", "").isalnum():
            errors[f"{at}.name"] = f"“{slug}” is not a port slug (letters, digits, - and _)."
        if slug in seen_ports:
            errors[f"{at}.name"] = f"Duplicate schema object “{slug}”."
        seen_ports.add(slug)
        kind = PORT_KINDS.get(str(obj.get("physicalType", "table")).lower())
        if kind is None:
            errors[f"{at}.physicalType"] = (
                f"“{obj['physicalType']}” is not a port kind the portal knows: "
                f"{', '.join(sorted(PORT_KINDS))}."
            )
        custom, rest_custom = _custom(obj.get("customProperties"), ("format",))
        port: dict[str, Any] = {
            "slug": slug,
            "name": _text(obj.get("businessName")) or slug,
            "kind": kind or "table",
            "location": _location(_text(obj.get("physicalName")), doc.get("servers")),
            "format": _text(custom.get("format")),
            "description": _text(obj.get("description")),
            "fields": [],
        }
        o_extras: dict[str, Any] = {
            "object": {k: v for k, v in obj.items() if k not in OBJECT_KEYS},
            "properties": {},
        }
        if obj.get("physicalType") and obj["physicalType"] != kind:
            o_extras["object"]["physicalType"] = obj["physicalType"]
        if rest_custom:
            o_extras["object"]["customProperties"] = rest_custom
        seen_fields = set()
        for j, prop in enumerate(obj.get("properties") or []):
            fat = f"{at}.properties[{j}]"
            name = str(prop["name"])
            if name in seen_fields:
                errors[f"{fat}.name"] = f"Duplicate field “{name}” in {at} ({slug})."
            seen_fields.add(name)
            logical = prop.get("logicalType", "string")
            if logical not in LOGICAL_TYPES:
                errors[f"{fat}.logicalType"] = (
                    f"The portal stores {', '.join(sorted(LOGICAL_TYPES))}; not “{logical}”."
                )
            classification = prop.get("classification")
            port["fields"].append(
                {
                    "name": name,
                    "logical_type": logical,
                    "physical_type": _text(prop.get("physicalType")),
                    "description": _text(prop.get("description")),
                    "required": bool(prop.get("required", False)),
                    "unique": bool(prop.get("unique", False)),
                    "primary_key": bool(prop.get("primaryKey", False)),
                    "pii": classification == "pii",
                }
            )
            p_extras = {k: v for k, v in prop.items() if k not in PROPERTY_KEYS}
            if classification is not None and classification != "pii":
                p_extras["classification"] = classification
            if p_extras:
                o_extras["properties"][name] = p_extras
        if o_extras["object"] or o_extras["properties"]:
            extras["objects"][slug] = o_extras
        ports.append(port)
    if errors:
        raise ValidationError(errors)
    # Files (a `local` server: DuckDB over Parquet/CSV) and tables are matched apart, so that a
    # product with both keeps each port on its own data source.
    servers = [s for s in doc.get("servers") or [] if isinstance(s, dict)]
    by_kind = {
        True: _data_source_for([s for s in servers if s.get("type") == "local"]),
        False: _data_source_for([s for s in servers if s.get("type") != "local"]),
    }
    sources = {s for s in by_kind.values() if s is not None}
    if sources:
        for port in ports:
            source = by_kind[is_file_location(port["location"])] if port["location"] else None
            if source is not None:
                port["data_source"] = source  # the registered data source the server names

        # Its servers are written from the data source on export: not kept as extras too.
        def ours(srv) -> bool:
            return _data_source_for([srv]) in sources

        kept = [
            srv
            for srv in extras["top"].get("servers") or []
            if not (isinstance(srv, dict) and ours(srv))
        ]
        if kept:
            extras["top"]["servers"] = kept
        else:
            extras["top"].pop("servers", None)
    return {
        "domain": str(doc["domain"]) if doc.get("domain") else None,
        "slug": str(doc.get("dataProduct") or ""),
        "product": product,
        "ports": ports,
        "extras": _prune(extras),
    }


def _prune(extras: dict) -> dict:
    return {k: v for k, v in extras.items() if v not in ({}, [], None)}


def current_extras(product: DataProduct) -> dict:
    """The ODCS content the product's contract keeps (latest version), e.g. its quality rules."""
    return _extras_of(product)


def _extras_of(product: DataProduct) -> dict:
    latest = latest_version(product)
    return json.loads(latest.extras) if latest and latest.extras else {}


# The portal's data-source kinds as ODCS `servers` types, and the server fields that say where
# the data is (ODCS key -> the data source's attribute; `options.x` is a key of its options).
# The schema comes from the port's location (BigQuery calls it the dataset). A DuckDB file
# port (Parquet/CSV by path or glob under the source's file_root) is a `local` server of its own.
SERVER_TYPES = {
    "postgresql": "postgres",
    "mysql": "mysql",
    "duckdb": "duckdb",
    "redshift": "redshift",
    "snowflake": "snowflake",
    "bigquery": "bigquery",
    "databricks": "databricks",
    "trino": "trino",
}
SERVER_FIELDS: dict[str, dict[str, str]] = {
    "postgresql": {"host": "host", "port": "port", "database": "database"},
    "mysql": {"host": "host", "port": "port", "database": "database"},
    "redshift": {"host": "host", "database": "database"},
    "duckdb": {"database": "database"},
    "snowflake": {"account": "host", "database": "database"},
    "bigquery": {"project": "database"},
    "databricks": {"host": "host", "catalog": "options.catalog"},
    "trino": {"host": "host", "port": "port", "catalog": "database"},
}
SCHEMA_KEYS = {"bigquery": "dataset", "mysql": ""}  # MySQL: the database is the schema
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "trino": 8080}


def _source_value(ds, attribute: str):
    if attribute.startswith("options."):
        return (ds.options or {}).get(attribute.removeprefix("options."))
    return getattr(ds, attribute)


def _server_for(ds, port: OutputPort) -> tuple[tuple, dict, str]:
    """(grouping key, the server, the object's physicalName) of a port's data source."""
    if ds.kind == "duckdb" and is_file_location(port.location):
        root = str((ds.options or {}).get("file_root") or "")
        fmt = file_format(port.location)
        path = os.path.join(root, port.location) if root else port.location
        local = {"server": f"{ds.slug}-{port.slug}", "type": "local", "path": path, "format": fmt}
        return (ds.pk, "file", port.pk), local, port.location
    schema, _, name = port.location.rpartition(".")
    if ds.kind == "postgresql":
        schema = schema or ds.default_schema or "public"
    elif ds.kind == "mysql":
        schema = schema or ds.default_schema or ds.database
    else:
        schema = schema or ds.default_schema
    server: dict[str, Any] = {"server": ds.slug, "type": SERVER_TYPES[ds.kind]}
    for key, attribute in SERVER_FIELDS[ds.kind].items():
        value = _source_value(ds, attribute)
        if key == "port":
            value = value or DEFAULT_PORTS.get(ds.kind)
        elif key == "host" and ds.kind == "postgresql":
            value = value or "localhost"
        if value not in (None, ""):
            server[key] = value
    schema_key = SCHEMA_KEYS.get(ds.kind, "schema")
    if schema and schema_key:
        server[schema_key] = schema
    return (ds.pk, schema), server, name


def _servers(ports: list[OutputPort]) -> tuple[list[dict], dict[int, str]]:
    """ODCS `servers` from the ports' data sources (type and where: host, port, database,
    schema and their equivalents per engine; never a user or a secret), and the object name
    (`physicalName`) of each port they serve: the standard puts the schema in the server and
    the table's own name in the schema object."""
    by_key: dict[tuple, dict] = {}
    names: dict[int, str] = {}
    for port in ports:
        ds = port.data_source
        if ds is None or ds.kind not in SERVER_TYPES or not port.location:
            continue
        key, server, name = _server_for(ds, port)
        by_key.setdefault(key, server)
        names[port.pk] = name
    servers = list(by_key.values())
    slugs = [s["server"] for s in servers]
    for s in servers:  # one data source, several schemas: one server each
        if slugs.count(s["server"]) > 1:
            s["server"] = f"{s['server']}-{s.get('schema') or s.get('dataset')}"
    return servers, names


def _location(physical_name: str, servers: Any) -> str:
    """A port's location from an ODCS object name and the document's servers: a bare name is
    qualified by the servers' schema (BigQuery: dataset) when they agree on one. A path or URL
    (`s3://bucket/dir/`) is no table name: it stays as it is."""
    if (
        not physical_name
        or "." in physical_name
        or "/" in physical_name
        or not isinstance(servers, list)
    ):
        return physical_name
    schemas = {
        s.get("schema") or s.get("dataset")
        for s in servers
        if isinstance(s, dict) and (s.get("schema") or s.get("dataset"))
    }
    return f"{schemas.pop()}.{physical_name}" if len(schemas) == 1 else physical_name


# Inside lookups_remembered(): {(kind, key): what it names} (data sources, domains, teams).
_seen: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "contract_lookups_seen", default=None
)


@contextmanager
def lookups_remembered() -> Iterator[None]:
    """Many documents in a row (a backup restore): the same servers, domains and teams are
    looked up once, not once per document (none of them changes meanwhile)."""
    token = _seen.set({})
    try:
        yield
    finally:
        _seen.reset(token)


def _remembered(kind: str, key: str, find):
    seen = _seen.get()
    if seen is None:
        return find()
    if (kind, key) not in seen:
        seen[(kind, key)] = find()
    return seen[(kind, key)]


def _data_source_for(servers: Any):
    """The registered data source the document's servers name (by slug, or by type and where
    the data is), if exactly one matches; None otherwise. Never creates one."""
    if not isinstance(servers, list):
        return None
    key = json.dumps(servers, sort_keys=True, default=str)
    return _remembered("servers", key, lambda: _match_data_source(servers))


def _match_data_source(servers: list):
    data_source = OutputPort._meta.get_field("data_source").related_model
    kinds = {v: k for k, v in SERVER_TYPES.items()} | {"postgresql": "postgresql"}
    found = set()
    for s in servers:
        if not isinstance(s, dict):
            continue
        if s.get("type") == "local":
            match = _file_source_for(data_source, str(s.get("path") or ""))
        elif s.get("type") in kinds:
            kind = kinds[s["type"]]
            match = (
                data_source._default_manager.filter(slug=str(s.get("server", "")), kind=kind)
                .prefetch_related("teams")  # the port's clean asks whom it is open to
                .first()
            )
            if match is None:
                where: dict[str, Any] = {}
                for key, attribute in SERVER_FIELDS[kind].items():
                    value = s.get(key)
                    if attribute.startswith("options."):
                        if value:
                            where[f"options__{attribute.removeprefix('options.')}"] = value
                    elif attribute == "port":
                        where["port__in"] = (
                            [value or None, None]
                            if value
                            in (
                                None,
                                DEFAULT_PORTS.get(kind),
                            )
                            else [value]
                        )
                    else:
                        where[attribute] = value or ""
                same = data_source._default_manager.filter(kind=kind, **where)
                match = same.first() if same.count() == 1 else None
        else:
            continue
        if match is not None:
            found.add(match)
    return found.pop() if len(found) == 1 else None


def _file_source_for(data_source, path: str):
    """The DuckDB source whose file_root holds `path`, if exactly one does."""
    if not path:
        return None
    target = os.path.normpath(path)
    matches = [
        ds
        for ds in data_source._default_manager.filter(kind="duckdb")
        if (root := str((ds.options or {}).get("file_root") or ""))
        and os.path.commonpath([os.path.normpath(root), target]) == os.path.normpath(root)
    ]
    return matches[0] if len(matches) == 1 else None


def export_document(product: DataProduct, extras: dict | None = None) -> dict:
    extras = _extras_of(product) if extras is None else extras
    if "ports" in getattr(product, "_prefetched_objects_cache", {}):
        ports = list(product.ports.all())  # record_first_versions: with their data sources
    else:
        ports = list(product.ports.select_related("data_source"))
    servers, object_names = _servers(ports)
    doc: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "DataContract",
        "id": extras.get("id", product.urn),
        "name": product.name,
        "version": product.version,
        "status": product.status,
        "domain": product.domain.slug,
        "dataProduct": product.slug,
    }
    desc = {"purpose": product.description} if product.description else {}
    desc.update(extras.get("description", {}))
    if desc:
        doc["description"] = desc
    tags = [t.name for t in product.tags.all()]
    if tags:
        doc["tags"] = tags
    if "team_members" in extras:
        doc["team"] = extras["team_members"]
    else:
        doc["team"] = {"name": product.owner_team.slug, **extras.get("team", {})}
    schema = []
    for port in ports:
        o_extras = extras.get("objects", {}).get(port.slug, {})
        quality = extensions.export_quality(product, port, quality_sections(extras, port.slug))
        obj: dict[str, Any] = {
            "name": port.slug,
            "businessName": port.name,
            "physicalType": port.kind,
            "logicalType": "object",
        }
        if port.location:
            obj["physicalName"] = object_names.get(port.pk, port.location)
        if port.description:
            obj["description"] = port.description
        props = []
        for f in sorted(port.fields.all(), key=lambda f: (f.ordinal, f.name)):
            prop: dict[str, Any] = {"name": f.name, "logicalType": f.logical_type}
            if f.physical_type:
                prop["physicalType"] = f.physical_type
            if f.description:
                prop["description"] = f.description
            prop.update(required=f.required, unique=f.unique, primaryKey=f.primary_key)
            if f.pii:
                prop["classification"] = "pii"
            prop.update(o_extras.get("properties", {}).get(f.name, {}))
            if f.logical_type == "map" and "map" not in prop:
                # A map made in the portal: ODCS requires its key and value types.
                text = {"logicalType": "string"}
                prop["map"] = {"key": {"name": "key", **text}, "value": {"name": "value", **text}}
            if quality is not None:
                prop.pop("quality", None)
                if quality.get(f.name):
                    prop["quality"] = quality[f.name]
            props.append(prop)
        obj["properties"] = props
        custom = [{"property": "format", "value": port.format}] if port.format else []
        obj_extra = dict(o_extras.get("object", {}))
        custom += obj_extra.pop("customProperties", [])
        if custom:
            obj["customProperties"] = custom
        obj.update(obj_extra)
        if quality is not None:
            obj.pop("quality", None)
            if quality.get(None):
                obj["quality"] = quality[None]
        schema.append(obj)
    if schema:
        doc["schema"] = schema
    sla = _export_slas(product, extras.get("slaProperties", []))
    sla = extensions.export_slas(product, sla)
    if sla:
        doc["slaProperties"] = sla
    custom = [{"property": "classification", "value": product.classification}]
    if product.summary:
        custom.append({"property": "summary", "value": product.summary})
    doc["customProperties"] = custom + extras.get("customProperties", [])
    top = dict(extras.get("top", {}))
    if servers:  # the data sources' servers, then the document's own others, as they came
        ours = {s["server"] for s in servers}
        kept = top.pop("servers", None)
        kept = kept if isinstance(kept, list) else []
        doc["servers"] = servers + [
            s for s in kept if not (isinstance(s, dict) and s.get("server") in ours)
        ]
    doc.update(top)
    return doc


def _export_slas(product: DataProduct, kept: list) -> list:
    """The kept slaProperties with the product's SLOs in their places: an entry as it came while
    the SLO says the same, its value anew (in hours, percent) when the SLO was edited since,
    left out when it was removed; an SLO no entry carries comes first."""
    hours, availability = product.freshness_slo_hours, product.availability_slo
    out, done = [], set()
    for sla in kept:
        name = sla.get("property") if isinstance(sla, dict) else None
        slo = "freshness" if name in FRESHNESS_NAMES else name
        if not _slo_entry(sla) or slo not in ("freshness", "availability") or slo in done:
            out.append(sla)
            continue
        done.add(slo)
        if slo == "freshness" and hours is not None:
            exact = sla_hours(sla.get("value"), sla.get("unit"))
            same = exact is not None and exact > 0 and ceil(exact) == hours
            out.append(sla if same else sla | {"value": hours, "unit": "h"})
        elif slo == "availability" and availability is not None:
            same = _availability(sla.get("value")) == availability
            out.append(sla if same else sla | {"value": float(availability), "unit": "percent"})
    first = []
    if hours is not None and "freshness" not in done:
        first.append({"property": "freshness", "value": hours, "unit": "h"})
    if availability is not None and "availability" not in done:
        first.append({"property": "availability", "value": float(availability), "unit": "percent"})
    return first + out


def quality_sections(extras: dict, slug: str) -> list[tuple[str | None, list]]:
    """A port's kept `quality` sections in document order: [(None, object rules), (field name,
    rules), ...]."""
    obj = extras.get("objects", {}).get(slug) or {}
    out: list[tuple[str | None, list]] = []
    if obj.get("object", {}).get("quality"):
        out.append((None, obj["object"]["quality"]))
    for name, prop in (obj.get("properties") or {}).items():
        if isinstance(prop, dict) and prop.get("quality"):
            out.append((name, prop["quality"]))
    return out


def dump(doc: dict) -> str:
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def export_yaml(product: DataProduct) -> str:
    return dump(export_document(product))


# -- snapshots, changes and versions ---------------------------------------------------------


def snapshot(product: DataProduct, extras: dict) -> dict:
    """What the contract promises, as plain JSON (compared to detect and classify changes)."""
    return {
        "product": {
            "name": product.name,
            "summary": product.summary,
            "description": product.description,
            "version": product.version,
            "classification": product.classification,
            "owner_team": product.owner_team.slug,
            "tags": sorted(t.name for t in product.tags.all()),
        },
        "slo": {
            "freshness_hours": product.freshness_slo_hours,
            "availability": None
            if product.availability_slo is None
            else str(Decimal(product.availability_slo).quantize(Decimal("0.001"))),
        },
        "ports": {
            p.slug: {
                "name": p.name,
                "kind": p.kind,
                "location": p.location,
                "format": p.format,
                "description": p.description,
                "fields": {
                    f.name: {
                        "logical_type": f.logical_type,
                        "physical_type": f.physical_type,
                        "description": f.description,
                        "required": f.required,
                        "unique": f.unique,
                        "primary_key": f.primary_key,
                        "pii": f.pii,
                        "ordinal": f.ordinal,
                    }
                    for f in p.fields.all()
                },
            }
            for p in product.ports.all()
        },
        "extras": extras,
    }


@dataclass
class Change:
    path: str
    kind: str
    breaking: bool
    message: str


BREAKING_FIELD_KEYS = {"logical_type", "physical_type", "unique", "primary_key"}
BREAKING_EXTRA_KEYS = {"enum", "logicalTypeOptions"}  # accepted values and type constraints


def _fmt(v) -> str:
    return "—" if v in (None, "") else str(v)


def classify(old: dict | None, new: dict) -> list[Change]:
    """Changes from old to new, judged from the consumer's side."""
    if old is None:
        return [Change("", "created", False, "First version of the contract.")]
    changes: list[Change] = []
    for key, value in new["product"].items():
        before = old["product"].get(key)
        if before != value:
            changes.append(
                Change(
                    key, "changed", False, f"{key} changed from {_fmt(before)} to {_fmt(value)}."
                )
            )
    o_slo, n_slo = old["slo"], new["slo"]
    if o_slo["freshness_hours"] != n_slo["freshness_hours"]:
        weaker = n_slo["freshness_hours"] is None or (
            o_slo["freshness_hours"] is not None
            and n_slo["freshness_hours"] > o_slo["freshness_hours"]
        )
        changes.append(
            Change(
                "slo.freshness",
                "slo_weakened" if weaker else "slo_changed",
                weaker,
                f"Freshness SLO {_fmt(o_slo['freshness_hours'])} h → "
                f"{_fmt(n_slo['freshness_hours'])} h.",
            )
        )
    if o_slo["availability"] != n_slo["availability"]:
        weaker = n_slo["availability"] is None or (
            o_slo["availability"] is not None
            and Decimal(n_slo["availability"]) < Decimal(o_slo["availability"])
        )
        changes.append(
            Change(
                "slo.availability",
                "slo_weakened" if weaker else "slo_changed",
                weaker,
                f"Availability SLO {_fmt(o_slo['availability'])} % → "
                f"{_fmt(n_slo['availability'])} %.",
            )
        )
    for slug in old["ports"]:
        if slug not in new["ports"]:
            changes.append(Change(f"ports.{slug}", "port_removed", True, f"Port {slug} removed."))
    for slug, port in new["ports"].items():
        if slug not in old["ports"]:
            changes.append(Change(f"ports.{slug}", "port_added", False, f"Port {slug} added."))
            continue
        before = old["ports"][slug]
        for key in ("name", "kind", "location", "format", "description"):
            if before[key] != port[key]:
                breaking = key in ("kind", "location", "format")
                changes.append(
                    Change(
                        f"ports.{slug}.{key}",
                        "port_changed",
                        breaking,
                        f"Port {slug}: {key} {_fmt(before[key])} → {_fmt(port[key])}.",
                    )
                )
        for name in before["fields"]:
            if name not in port["fields"]:
                changes.append(
                    Change(
                        f"ports.{slug}.fields.{name}",
                        "field_removed",
                        True,
                        f"Field {slug}.{name} removed.",
                    )
                )
        for name, f in port["fields"].items():
            at = f"ports.{slug}.fields.{name}"
            if name not in before["fields"]:
                changes.append(
                    Change(
                        at,
                        "field_added",
                        f["required"],
                        f"{'Required' if f['required'] else 'Optional'} field {slug}.{name} added.",
                    )
                )
                continue
            was = before["fields"][name]
            for key, value in f.items():
                if was.get(key) == value:
                    continue
                if key == "required":
                    breaking, kind = True, ("made_required" if value else "made_optional")
                elif key in BREAKING_FIELD_KEYS:
                    breaking, kind = True, f"{key}_changed"
                else:
                    breaking, kind = False, f"{key}_changed"
                changes.append(
                    Change(
                        f"{at}.{key}",
                        kind,
                        breaking,
                        f"Field {slug}.{name}: {key} {_fmt(was.get(key))} → {_fmt(value)}.",
                    )
                )
    o_ex, n_ex = old.get("extras", {}), new.get("extras", {})
    changes += _quality_changes(o_ex, n_ex)
    if o_ex.get("slaProperties", []) != n_ex.get("slaProperties", []) and not any(
        c.path.startswith("slo.") for c in changes
    ):
        changes.append(Change("slaProperties", "sla_changed", False, "SLA properties changed."))
    o_ex, n_ex = _without_quality(o_ex), _without_quality(n_ex)
    if o_ex != n_ex:
        for slug, obj in n_ex.get("objects", {}).items():
            for name, props in obj.get("properties", {}).items():
                was = o_ex.get("objects", {}).get(slug, {}).get("properties", {}).get(name, {})
                for key in BREAKING_EXTRA_KEYS:
                    if (
                        key in was
                        and was.get(key) != props.get(key)
                        and name in new["ports"].get(slug, {}).get("fields", {})
                    ):
                        changes.append(
                            Change(
                                f"ports.{slug}.fields.{name}.{key}",
                                "accepted_values_changed",
                                True,
                                f"Field {slug}.{name}: {key} changed.",
                            )
                        )
        changes.append(
            Change("extras", "odcs_changed", False, "Other ODCS content (kept as is) changed.")
        )
    return changes


def _without_quality(extras: dict) -> dict:
    """Extras without slaProperties and quality sections (_quality_changes says those)."""
    extras = json.loads(json.dumps(extras))
    extras.pop("slaProperties", None)
    for obj in extras.get("objects", {}).values():
        obj.get("object", {}).pop("quality", None)
        for prop in obj.get("properties", {}).values():
            prop.pop("quality", None)
        obj["properties"] = {k: v for k, v in obj.get("properties", {}).items() if v}
    for slug, obj in list(extras.get("objects", {}).items()):
        extras["objects"][slug] = _prune({k: _prune(v) for k, v in obj.items()})
    extras["objects"] = {k: v for k, v in extras.get("objects", {}).items() if v}
    return _prune(extras)


def _quality_changes(old: dict, new: dict) -> list[Change]:
    out = []
    slugs = list(dict.fromkeys([*new.get("objects", {}), *old.get("objects", {})]))
    for slug in slugs:
        before, after = dict(quality_sections(old, slug)), dict(quality_sections(new, slug))
        for name in dict.fromkeys([*after, *before]):
            was, now = before.get(name, []), after.get(name, [])
            if was == now:
                continue
            where = f"{slug}.{name}" if name else slug
            out.append(
                Change(
                    f"ports.{slug}" + (f".fields.{name}" if name else "") + ".quality",
                    "quality_changed",
                    False,
                    f"Quality rules of {where}: {len(was)} → {len(now)} rules"
                    + (" (changed)." if len(was) == len(now) else "."),
                )
            )
    return out


def latest_version(product: DataProduct) -> ContractVersion | None:
    return product.contract_versions.order_by("-number").first()


def major(version: str) -> int:
    head = str(version).lstrip("vV").split(".")[0]
    return int(head) if head.isdigit() else 0


# Refusing unannounced breaking changes applies to the doors people and automation use
# (contract imports, API writes and the product edit page, which run inside enforcing()); the
# admin (a staff override) and tasks are recorded as breaking versions and announced to
# consumers but not refused.
_enforce: contextvars.ContextVar[bool] = contextvars.ContextVar("contract_enforce", default=False)


@contextmanager
def enforcing() -> Iterator[None]:
    token = _enforce.set(True)
    try:
        yield
    finally:
        _enforce.reset(token)


def _breaking_refusal(
    product: DataProduct, latest: ContractVersion | None, changes: list[Change]
) -> None:
    breaking = [c for c in changes if c.breaking]
    if (
        not _enforce.get()
        or not breaking
        or latest is None
        or product.status != DataProduct.Status.PUBLISHED
    ):
        return
    # One major version per breaking release: the current major must be new (some earlier
    # version has a lower one) and not yet have carried a breaking change.
    history = list(product.contract_versions.values_list("version", "breaking"))
    current = major(product.version)
    if any(major(v) < current for v, _ in history) and not any(
        b and major(v) == current for v, b in history
    ):
        return
    needed = max([major(v) for v, _ in history] + [current]) + 1
    raise ValidationError(
        {
            "version": (
                f"Breaking change to published product {product.urn} "
                f"({'; '.join(c.message for c in breaking)}) needs a major version bump: "
                f"set version to {needed}.0.0 or higher (it is {product.version})."
            )
        }
    )


def _carry_extras(product: DataProduct) -> dict:
    """The latest extras, without objects and properties that no longer exist."""
    extras = _extras_of(product)
    objects = extras.get("objects")
    if objects:
        ports = {p.slug: {f.name for f in p.fields.all()} for p in product.ports.all()}
        kept = {}
        for slug, obj in objects.items():
            if slug in ports:
                obj = dict(obj)
                obj["properties"] = {
                    k: v for k, v in obj.get("properties", {}).items() if k in ports[slug]
                }
                kept[slug] = _prune(obj)
        extras["objects"] = {k: v for k, v in kept.items() if v}
    return _prune(extras)


def _fresh(product: DataProduct) -> DataProduct:
    return (
        DataProduct.objects.select_related("domain", "owner_team")
        .prefetch_related("tags", "ports__fields")
        .get(pk=product.pk)
    )


def record_version(
    product: DataProduct, *, extras: dict | None = None, document_before: str | None = None
) -> ContractVersion | None:
    """Store a new contract version if the contract changed; refuse unannounced breaking ones.
    `document_before` (an import's): the document the portal exported before it; when the
    product exports the very same document, nothing changed (the kept ODCS content may only
    have been stored differently, e.g. by an older release)."""
    product = _fresh(product)
    extras = _carry_extras(product) if extras is None else extras
    snap = json.loads(json.dumps(snapshot(product, extras)))
    latest = latest_version(product)
    if latest is not None and latest.snapshot == snap:
        return None
    document = dump(export_document(product, extras))
    if (
        latest is not None
        and document == document_before
        and {k: v for k, v in snap.items() if k != "extras"}
        == {k: v for k, v in latest.snapshot.items() if k != "extras"}
    ):
        return None
    changes = classify(latest.snapshot if latest else None, snap)
    _breaking_refusal(product, latest, changes)
    version = _version(product, latest, snap, extras, document, changes)
    version.save()
    breaking = version.breaking
    if latest is not None and product.status == DataProduct.Status.PUBLISHED:
        if breaking:
            _notify_consumers(product, version, changes)
        elif major(product.version) > major(latest.version):
            # A breaking change already announces its (required) new major version: tell
            # people of a major version on its own only when nothing in it breaks.
            _announce_major_version(product, version, changes)
    return version


def _version(product, latest, snap, extras, document, changes) -> ContractVersion:
    who = audit.current_context()["actor"]
    if hasattr(who, "resolve"):
        who = who.resolve()
    return ContractVersion(
        product=product,
        number=(latest.number + 1) if latest else 1,
        version=product.version,
        snapshot=snap,
        extras=json.dumps(extras) if extras else "",
        document=document,
        changelog=[asdict(c) for c in changes],
        breaking=any(c.breaking for c in changes),
        created_by=who if getattr(who, "is_authenticated", False) else None,
    )


# Inside versions_overlapped(): the writes of the last record_first_versions call, not yet done.
_later: contextvars.ContextVar[list | None] = contextvars.ContextVar("versions_later", default=None)


@contextmanager
def versions_overlapped() -> Iterator[None]:
    """Inside the block, record_first_versions hands its documents to meshportal.parallel's
    workers and writes the versions at its next call, or when the block ends without an error,
    so the documents are written while the caller goes on (a restore checks its next batch of
    contracts meanwhile). Nothing inside may read those new products' versions before."""
    pending: list = []
    token = _later.set(pending)
    try:
        yield
        while pending:
            pending.pop(0)()
    finally:
        _later.reset(token)


def record_first_versions(
    products: list[DataProduct], extras: list[dict | None], *, batch_size: int = 500
) -> None:
    """Version 1 of many new products' contracts, as record_version stores it for each (extras:
    each one's kept ODCS content, or None), read with a few queries per batch. The documents
    are written as YAML by meshportal.parallel's workers when a bulk job opened them (a
    restore), while this process builds the next ones (and, in versions_overlapped(), goes on
    with its caller's work)."""
    from django.db.models import Prefetch

    extras_of = {p.pk: e for p, e in zip(products, extras, strict=True)}
    ids = list(extras_of)
    ports = OutputPort.objects.select_related("data_source").prefetch_related(
        "fields", "quality_checks"
    )
    built: deque[tuple[DataProduct, dict, dict]] = deque()

    def documents() -> Iterator[dict]:
        for start in range(0, len(ids), batch_size):
            for product in (
                DataProduct.objects.filter(pk__in=ids[start : start + batch_size])
                .select_related("domain", "owner_team")
                .prefetch_related("tags", Prefetch("ports", queryset=ports))
            ):
                extra = extras_of[product.pk] or {}  # a new product carries no earlier extras
                built.append((product, extra, json.loads(json.dumps(snapshot(product, extra)))))
                yield export_document(product, extra)

    texts = parallel.ordered_map(dump, documents())  # the first documents handed out now

    def write() -> None:
        rows = []
        for document in texts:
            product, extra, snap = built.popleft()
            rows.append(_version(product, None, snap, extra, document, classify(None, snap)))
            if len(rows) >= batch_size:
                bulk.insert(rows)
                rows = []
        bulk.insert(rows)

    later = _later.get()
    if later is None:
        write()
        return
    while later:  # the last call's, whose documents the workers wrote meanwhile
        later.pop(0)()
    later.append(write)


def _announce_major_version(product: DataProduct, version: ContractVersion, changes) -> None:
    """Watchers, consumers and downstream owners hear of a new major version (after commit)."""
    from products.lineage.services import product_event_announce

    product_event_announce(
        product=product,
        kind="major_version",
        title=f"{product}: new major contract version {version.version}",
        url=f"{product.get_absolute_url()}?tab=contract",
        body="\n".join(f"- {_public_message(c)}" for c in changes)
        or "No breaking change: nothing to do unless you rely on the version number.",
    )


def _notify_consumers(product: DataProduct, version: ContractVersion, changes) -> None:
    """Consumers, watchers and the owners of downstream products hear of a breaking change."""
    from products.lineage.services import product_event_recipients

    notify(
        product_event_recipients(product, "breaking_change"),
        kind="contract_breaking",
        title=f"Breaking change to {product} (v{version.version})",
        url=f"{product.get_absolute_url()}?tab=contract",
        body="\n".join(f"- {_public_message(c)}" for c in changes if c.breaking),
        about=product,
    )


def _public_message(change: Change) -> str:
    # Watchers and downstream owners may not read the data: no locations in the message.
    from products.connection import redact_change

    return redact_change(asdict(change))["message"]


# Services call changed(product) after every write; inside batch() the versions are recorded
# once per product when the batch ends (a product created with ten fields is one version).
_batch: contextvars.ContextVar[dict | None] = contextvars.ContextVar("contract_batch", default=None)


def changed(product: DataProduct) -> None:
    pending = _batch.get()
    if pending is not None:
        pending.setdefault(product.pk, product)
    else:
        record_version(product)


def changed_many(products) -> None:
    """changed() for many new products: inside batch() they join it; else their first versions
    are recorded together."""
    pending = _batch.get()
    if pending is not None:
        for product in products:
            pending.setdefault(product.pk, product)
    else:
        record_first_versions(products, [None] * len(products))


@contextmanager
def batch() -> Iterator[None]:
    if _batch.get() is not None:
        yield
        return
    pending: dict = {}
    token = _batch.set(pending)
    try:
        yield
    finally:
        _batch.reset(token)
    for product in pending.values():
        if DataProduct.objects.filter(pk=product.pk).exists():
            record_version(product)


def versions_diff(a: ContractVersion, b: ContractVersion) -> list[Change]:
    return classify(a.snapshot, b.snapshot)


# -- import -----------------------------------------------------------------------------------


@dataclass
class ImportResult:
    product: DataProduct | None
    created: bool
    changed: bool
    applied: bool
    changes: list[Change]
    version: ContractVersion | None = None
    # Quality rules kept as documentation, not run: [{port, column, rule, reason}] (the
    # importers say which), so a pipeline learns that a rule it sent will not be checked.
    not_run: list[dict] = dataclass_field(default_factory=list)

    @property
    def breaking(self) -> bool:
        return any(c.breaking for c in self.changes)


def _team(ref: str) -> Team:
    team = _remembered(
        "team",
        ref,
        lambda: Team.objects.filter(slug=ref).first() or Team.objects.filter(name=ref).first(),
    )
    if team is None:
        raise ValidationError({"team.name": f"Unknown team “{ref}”."})
    return team


def contract_import(
    *,
    text: str,
    user,
    product: DataProduct | None = None,
    expected_urn: str | None = None,
    domain_slug: str | None = None,
    dry_run: bool = False,
    make_checks: bool = True,
    doc: dict | None = None,
) -> ImportResult:
    """Create or update a product from an ODCS document; all or nothing.

    `product` (from the URL) must be the product the document names. With dry_run the changes
    are computed by applying them and rolling back, so the preview is exactly what would happen.
    `make_checks=False` keeps the quality rules and SLAs in the contract without making checks
    of them (a restore brings the checks back from its own state file). `doc`: `parse(text)`
    when the caller has already parsed it (a restore reads each file once); it is validated
    here all the same.
    """
    prepared = contract_prepare(
        text=text,
        user=user,
        product=product,
        expected_urn=expected_urn,
        domain_slug=domain_slug,
        doc=doc,
    )
    plan, domain, slug, existing, team = (
        prepared.plan,
        prepared.domain,
        prepared.slug,
        prepared.existing,
        prepared.team,
    )
    try:
        with transaction.atomic(), enforcing():
            result = _apply(
                plan, domain, slug, existing, team=team, user=user, make_checks=make_checks
            )
            if dry_run or not result.changed:
                raise _Rollback(result)
    except _Rollback as r:
        result = r.result
        result.applied = False
        if existing is not None:
            result.product = existing
        elif dry_run:
            result.product = None
    return result


@dataclass
class Prepared:
    """A contract document checked against every rule an import asks before it writes."""

    plan: dict
    domain: Domain
    slug: str
    existing: DataProduct | None
    team: Team | None
    new: Any = None  # contract_build's product, once built


def contract_prepare(
    *,
    text: str,
    user,
    product: DataProduct | None = None,
    expected_urn: str | None = None,
    domain_slug: str | None = None,
    doc: dict | None = None,
) -> Prepared:
    """What contract_import checks before it writes: the document (YAML, schema, the portal's
    rules), its domain and name, and the user's rights (403). Also the first step of
    contracts_create_many."""
    doc = parse(text) if doc is None else doc
    validate(doc)
    plan = _plan(upgrade(doc))
    # `domain` is the portal's addition to ODCS: a document without it goes into the domain the
    # upload names (the form's choice, the API route, --domain), else it is asked for.
    plan["domain"] = plan["domain"] or domain_slug or (product.domain.slug if product else None)
    if not plan["domain"]:
        raise ValidationError(
            {
                "domain": "Choose the portal domain: `domain` in the document, or the upload's domain."
            }
        )
    domain = _remembered(
        "domain",
        plan["domain"],
        lambda: Domain.objects.select_related("owner_team").filter(slug=plan["domain"]).first(),
    )
    if domain is None:
        raise ValidationError({"domain": f"Unknown domain “{plan['domain']}”."})
    slug = plan["slug"] or (product.slug if product else "")
    expected = urns.parse(expected_urn, path_form=False) if expected_urn else None
    if not slug and expected:
        slug = expected[1]
    if not slug:
        raise ValidationError({"dataProduct": "Name the product (its slug) in `dataProduct`."})
    if product is not None and (product.domain_id != domain.pk or product.slug != slug):
        raise ValidationError(
            {
                "dataProduct": (
                    f"This document describes {urns.format_urn(domain.slug, slug)}, "
                    f"not {product.urn}."
                )
            }
        )
    if expected_urn and urns.format_urn(domain.slug, slug) != expected_urn:
        raise ValidationError(
            {
                "dataProduct": (
                    f"This document describes {urns.format_urn(domain.slug, slug)}, "
                    f"not {expected_urn}."
                )
            }
        )
    existing = product or DataProduct.objects.filter(domain=domain, slug=slug).first()
    taken = existing is not None and not can(user, VIEW, existing)
    if taken:
        # Another team's draft the user may not see: answered exactly as a name that does not
        # exist, so that the import tells nobody it is there.
        existing = None
    if existing is None:
        require(user, CREATE_PRODUCT, domain)  # 403, as at every other door
    if taken:
        # Only someone who may create products in the domain gets here; the name is unique
        # within it, so the creation cannot happen — said without naming whose it is.
        raise ValidationError(
            {"dataProduct": f"The name {slug} is not available in domain {domain.slug}."}
        )
    if existing is not None:
        require(user, EDIT, existing)
    team = _team(plan["product"]["owner_team"]) if "owner_team" in plan["product"] else None
    current = existing or DataProduct(domain=domain, owner_team=domain.owner_team)
    if team is not None and team.pk != current.owner_team_id:
        # A `team.name` naming another team moves the product: the same rule (and 403) as
        # every other door, checked before the preview too.
        require_transfer(user, current, team)
    return Prepared(plan=plan, domain=domain, slug=slug, existing=existing, team=team)


def contract_build(prepared: Prepared):
    """The new product a prepared contract describes, validated and not saved
    (products.services.product_build); kept on `prepared`."""
    from products import services

    if prepared.existing is not None:
        raise ValueError(
            f"{prepared.existing.urn} exists: import its contract with contract_import"
        )
    if prepared.new is None:
        data = {k: v for k, v in prepared.plan["product"].items() if k != "owner_team"}
        data.setdefault("name", prepared.slug)
        prepared.new = services.product_build(
            domain=prepared.domain,
            slug=prepared.slug,
            owner_team=prepared.team,
            ports=prepared.plan["ports"],
            **data,
        )
    return prepared.new


@transaction.atomic
def contracts_create_many(prepared: list[Prepared]) -> list[DataProduct]:
    """New products from many prepared contracts at once (a backup restore): the products,
    ports and fields as contract_import creates them (products.services.products_create_many)
    and each one's first contract version, keeping its ODCS extras. Quality rules and SLAs stay
    in the contract without becoming checks (the restore brings its checks back itself).
    `prepared` must name no existing product."""
    from products import services

    built = [contract_build(p) for p in prepared]
    with batch():
        products = services.products_create_many(built)
        pending = _batch.get()
        if pending is not None:
            for product in products:
                pending.pop(product.pk, None)  # recorded below with the documents' extras
    record_first_versions(products, [p.plan["extras"] for p in prepared])
    return products


class _Rollback(Exception):  # noqa: N818 - control flow, not an error
    def __init__(self, result: ImportResult):
        self.result = result


def _apply(
    plan: dict,
    domain: Domain,
    slug: str,
    existing: DataProduct | None,
    *,
    team,
    user,
    make_checks: bool = True,
) -> ImportResult:
    from products import services

    data = {k: v for k, v in plan["product"].items() if k != "owner_team"}
    before = dump(export_document(existing)) if existing is not None else None
    with batch():
        if existing is None:
            data.setdefault("name", slug)
            # Created in its team (the transfer was allowed above): no move after the fact.
            product = services.product_create(domain=domain, slug=slug, owner_team=team, **data)
            created = True
        else:
            product = DataProduct.objects.select_for_update().get(pk=existing.pk)
            current = {k: getattr(product, k) for k in data if k != "tags"}
            updates = {k: v for k, v in data.items() if k != "tags" and current[k] != v}
            tags = (
                data["tags"]
                if sorted(data["tags"]) != sorted(t.name for t in product.tags.all())
                else None
            )
            if updates or tags is not None:
                product = services.product_update(product=product, tags=tags, **updates)
            created = False
        if team is not None and team.pk != product.owner_team_id:
            product = services.product_transfer(product=product, team=team, by=user)
        _sync_ports(product, plan["ports"])
        pending = _batch.get()
        if pending is not None:
            pending.pop(product.pk, None)  # recorded below with the document's extras
    extras = _hand_over_quality(product, plan["extras"]) if make_checks else plan["extras"]
    version = record_version(product, extras=extras, document_before=before)
    changes = [Change(**c) for c in version.changelog] if version else []
    # Importers that created something of their own (quality checks) made a change too.
    touched = getattr(product, "_contract_hooks_changed", False)
    return ImportResult(
        product=product,
        created=created,
        changed=version is not None or touched,
        applied=True,
        changes=changes,
        version=version,
        not_run=list(getattr(product, "_contract_rules_not_run", [])),
    )


def _hand_over_quality(product: DataProduct, extras: dict) -> dict:
    """Hand each port's `quality` sections and the `slaProperties` to the importers, with the
    last version's (so that they see what was removed). The contract keeps them as they came."""
    if not extensions.imports_contract_rules():
        return extras
    previous = _extras_of(product)  # the latest version: this import is not recorded yet
    extensions.import_slas(
        product, extras.get("slaProperties", []), previous.get("slaProperties", [])
    )
    for port in product.ports.all():
        sections = quality_sections(extras, port.slug)
        before = quality_sections(previous, port.slug)
        if sections or before:
            extensions.import_quality(product, port, sections, before)
    return extras


def _sync_ports(product: DataProduct, ports: list[dict]) -> None:
    from products import services

    existing = {p.slug: p for p in product.ports.prefetch_related("fields")}
    wanted = {p["slug"] for p in ports}
    for slug, stale in existing.items():
        if slug not in wanted:
            services.port_delete(port=stale)
    for spec in ports:
        spec = dict(spec)
        fields = spec.pop("fields")
        port = existing.get(spec["slug"])
        if port is None:
            port = services.port_create(product=product, **spec)
            current = {}
        else:
            updates = {k: v for k, v in spec.items() if getattr(port, k) != v}
            if updates:
                services.port_update(port=port, **updates)
            current = {f.name: f for f in port.fields.all()}
        names = {f["name"] for f in fields}
        for name, old in current.items():
            if name not in names:
                services.field_delete(field=old)
        new = []
        for i, f in enumerate(fields):
            f = {**f, "ordinal": i}
            field = current.get(f["name"])
            if field is None:
                new.append(f)
            else:
                updates = {k: v for k, v in f.items() if getattr(field, k) != v}
                if updates:
                    services.field_update(field=field, **updates)
        services.fields_create(port=port, fields=new)
