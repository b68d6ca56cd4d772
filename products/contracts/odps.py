"""The data product itself in the Open Data Product Standard (ODPS) v1.1.0.

* `export_document(product, user=...)`: the product as an ODPS v1.1.0 document: identity,
  status, domain, team, support, tags, and its input and output ports, each referring to the
  ODCS contract that describes it by `contractId` and `version`. Portal-only values travel in
  `customProperties`; a port's location and data source only for users who may see where the
  data lives (products.connection).
* `odps_import(text=..., user=...)`: validate a document (YAML, the official ODPS JSON schema of
  its own `apiVersion`, shipped in `schemas/`) and create or update the product it describes
  through products.services and products.lineage.services; all or nothing, `dry_run=True` only
  says what would change. The rights are the contract upload's: EDIT on an existing product,
  CREATE_PRODUCT in its domain for a new one, require_transfer to move it to another team.
* What the portal has no field for (`tenant`, `managementPorts`, other custom properties, a
  port's `sbom`, …) is kept as it came — `odps_kept` on the product, each output port and each
  input port: the document without what the portal owns (`_rest`, the one rule for both ways)
  — and merged back in its place on export; the portal's own values always win. For users
  who may not see where the data lives, anything connection-like in it is left out
  (products.connection.strip_kept).

What the import maps, what it derives and what it normalises is listed in docs/contracts.md
(section "The product in ODPS").
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import OuterRef, Prefetch, Subquery
from jsonschema import Draft201909Validator

from domains.models import Domain, Membership, Team
from meshportal.permissions import (
    CREATE_PRODUCT,
    EDIT,
    VIEW,
    can,
    require,
    require_transfer,
    visible,
)
from products import connection, urns
from products.contracts import services as contracts
from products.models import ContractVersion, DataProduct, InputPort, OutputPort

API_VERSION = "v1.1.0"
# The document's apiVersion -> the official schema it is checked against.
SCHEMAS = {"v1.0.0": "odps-1.0.0.schema.json", "v1.1.0": "odps-1.1.0.schema.json"}
SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"

STATUS_OUT = {
    DataProduct.Status.DRAFT: "draft",
    DataProduct.Status.PUBLISHED: "active",
    DataProduct.Status.DEPRECATED: "deprecated",
    DataProduct.Status.RETIRED: "retired",
}
# Portal-only values, as customProperties of the document, a port and an input port.
PRODUCT_PROPERTIES = ("classification", "summary", "sunsetDate", "replacement")
PORT_PROPERTIES = ("businessName", "format", "location", "dataSource")
INPUT_PROPERTIES = ("description", "externalKind")
# What the portal owns at each level of a document: read into its fields on import, or written
# from its data on export (`support` in part: the entries _portal_support() recognises). The
# rest of each level is kept as it came and merged back (`_rest`); a kept value never takes
# the place of one of these.
OWNED_TOP = frozenset(
    {"apiVersion", "kind", "id", "name", "version", "status", "domain", "description", "tags"}
    | {"customProperties", "team", "inputPorts", "outputPorts", "support", "productCreatedTs"}
)
OWNED_DESCRIPTION = frozenset({"purpose"})
OWNED_TEAM = frozenset({"name", "description", "members"})
OWNED_OUTPUT = frozenset(
    {"name", "description", "type", "version", "contractId", "customProperties"}
)
OWNED_INPUT = frozenset({"name", "version", "contractId", "customProperties"})
PORTAL_CHANNEL = "mesh-portal"
KEPT = "Kept as it came; written back on export."


# -- validation ----------------------------------------------------------------------------------


@cache
def validator(api_version: str = API_VERSION) -> Draft201909Validator:
    schema = json.loads((SCHEMA_DIR / SCHEMAS[api_version]).read_text(encoding="utf-8"))
    return Draft201909Validator(schema, format_checker=Draft201909Validator.FORMAT_CHECKER)


def parse(text: str) -> dict:
    """YAML or JSON text as a document (the contracts' safe, JSON-only reading)."""
    try:
        return contracts.parse(text)
    except ValidationError as e:
        messages = getattr(e, "message_dict", {})
        if any("ODCS" in m for m in messages.get("document", [])):
            raise ValidationError(
                {"document": "An ODPS document is a YAML mapping (key: value)."}
            ) from None
        raise


def validate(doc: dict) -> None:
    """Check doc against the official ODPS JSON schema of its own apiVersion."""
    version = doc.get("apiVersion")
    if version not in SCHEMAS:
        raise ValidationError(
            {
                "apiVersion": (
                    f"The portal reads ODPS {', '.join(SCHEMAS)}; this document is "
                    f"{version if version is not None else 'without apiVersion'}."
                )
            }
        )
    errors = contracts.schema_errors(doc, validator(version))
    if errors:
        raise ValidationError(errors)


# -- what is kept --------------------------------------------------------------------------------


def _rest(obj: Any, owned: frozenset[str], known: tuple[str, ...] | None = None) -> dict:
    """obj without what the portal owns: its keys in `owned` and, when `known` names the
    custom properties the portal reads at this level, those (its other custom properties are
    kept). The one rule for what an import keeps and what an export may merge back."""
    if not isinstance(obj, dict):
        return {}
    rest = {k: v for k, v in obj.items() if k not in owned}
    if known is not None:
        custom = [
            c
            for c in obj.get("customProperties") or []
            if not (isinstance(c, dict) and c.get("property") in known)
        ]
        if custom:
            rest["customProperties"] = custom
    return rest


def _portal_support(entry: Any, team_slug: str) -> bool:
    """A support entry the portal writes from its own data (the team's e-mail, the product's
    page): written anew on export, never kept."""
    return isinstance(entry, dict) and entry.get("channel") in (PORTAL_CHANNEL, team_slug)


def _kept_product(doc: dict, team_slug: str) -> dict:
    kept = _rest(doc, OWNED_TOP, PRODUCT_PROPERTIES)
    description = _rest(doc.get("description"), OWNED_DESCRIPTION)
    if description:
        kept["description"] = description
    team = _rest(doc.get("team"), OWNED_TEAM)
    if team:
        kept["team"] = team
    support = [s for s in doc.get("support") or [] if not _portal_support(s, team_slug)]
    if support:
        kept["support"] = support
    return kept


def _kept_output(out: dict, kind: str | None) -> dict:
    kept = _rest(out, OWNED_OUTPUT, PORT_PROPERTIES)
    spelled = out.get("type")
    if isinstance(spelled, str) and spelled != kind and _port_kind(spelled) == kind:
        kept["type"] = spelled  # another name of the same kind (`tables`, `topic`)
    return kept


def _port_kind(spelled: Any) -> str | None:
    """The port kind a document's output port `type` names; the standard's own examples write
    the plural (`tables`), which is kept as written."""
    name = _text(spelled).lower()
    return contracts.PORT_KINDS.get(name) or contracts.PORT_KINDS.get(name.removesuffix("s"))


def _ordered(value: Any, node: dict | None = None) -> Any:
    """value with the keys of every object in the order the ODPS schema lists them (the
    standard's own order, whatever order a database keeps JSON keys in); keys the schema does
    not name (inside a custom property's value) keep theirs."""
    schema = validator(API_VERSION).schema
    node = schema if node is None else node
    while "$ref" in node:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    if isinstance(value, dict):
        props = node.get("properties") or {}
        rank = {k: i for i, k in enumerate(props)}
        return {
            k: _ordered(v, props.get(k, {}))
            for k, v in sorted(value.items(), key=lambda kv: rank.get(kv[0], len(rank)))
        }
    if isinstance(value, list):
        return [_ordered(v, node.get("items") or {}) for v in value]
    return value


def _merged(ours: dict, kept: dict, owned: frozenset[str], known: tuple[str, ...] | None):
    """ours (the portal's values) with the kept content of the same level merged in; the
    portal's values win."""
    rest = _rest(kept, owned, known)
    if known is None:  # the portal writes no custom properties at this level
        return {**rest, **ours}
    custom = rest.pop("customProperties", None)
    out = {**rest, **ours}
    if custom:
        out["customProperties"] = [*(ours.get("customProperties") or []), *custom]
    return out


# -- export --------------------------------------------------------------------------------------


def _latest_extras():
    return Subquery(
        ContractVersion.objects.filter(product=OuterRef("pk"))
        .order_by("-number")
        .values("extras")[:1]
    )


def _contract_id(product: DataProduct) -> str:
    """The id of the product's ODCS contract: its document's own id if it had one, else the URN
    (products.contracts.services.export_document writes the same)."""
    raw = getattr(product, "latest_extras", None)
    extras = json.loads(raw) if raw else {}
    return str(extras.get("id", product.urn))


def load(product: DataProduct | int) -> DataProduct:
    """The product with everything an export reads, in a fixed number of queries."""
    pk = product.pk if isinstance(product, DataProduct) else product
    return (
        DataProduct.objects.select_related("domain", "owner_team", "replacement__domain")
        .annotate(latest_extras=_latest_extras())
        .prefetch_related(
            "tags",
            Prefetch("ports", OutputPort.objects.order_by("slug").select_related("data_source")),
            Prefetch(
                "input_ports",
                InputPort.objects.order_by("id").select_related("source_port"),
            ),
            Prefetch(
                "owner_team__memberships",
                Membership.objects.select_related("user").order_by("user__username"),
            ),
        )
        .get(pk=pk)
    )


def _sources(user, product: DataProduct) -> dict[int, DataProduct]:
    """The products the input ports read from that user may see (all of them without a user),
    with their contract ids; one query."""
    ids = {i.source_product_id for i in product.input_ports.all() if i.source_product_id}
    if not ids:
        return {}
    qs = DataProduct.objects.filter(pk__in=ids).select_related("domain")
    if user is not None:
        qs = visible(user, qs)
    return {p.pk: p for p in qs.annotate(latest_extras=_latest_extras())}


def _custom(pairs: list[tuple[str, Any]]) -> list[dict]:
    return [{"property": k, "value": v} for k, v in pairs if v not in (None, "")]


def export_document(
    product: DataProduct, *, user=None, connection_details: bool | None = None
) -> dict:
    """The product as an ODPS v1.1.0 document, as `user` may read it: without a user (the
    backup) everything; otherwise a port's location and data source only when the user may see
    where the data lives, and only the inputs whose source product the user may see."""
    if not hasattr(product, "latest_extras"):
        product = load(product)
    if connection_details is None:
        connection_details = user is None or connection.sees_connection(user, product)

    def kept(obj) -> dict:
        value = obj.odps_kept or {}
        return value if connection_details else connection.strip_kept(value)

    contract_id = _contract_id(product)
    doc: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "DataProduct",
        "id": product.urn,
        "name": product.name,
        "version": product.version,
        "status": STATUS_OUT[DataProduct.Status(product.status)],
        "domain": product.domain.slug,
    }
    description = _merged(
        {"purpose": product.description} if product.description else {},
        kept(product).get("description") or {},
        OWNED_DESCRIPTION,
        None,
    )
    if description:
        doc["description"] = description
    tags = sorted(t.name for t in product.tags.all())
    if tags:
        doc["tags"] = tags
    replacement = product.replacement
    if replacement is not None and user is not None and not can(user, VIEW, replacement):
        replacement = None
    doc["customProperties"] = _custom(
        [
            ("classification", product.classification),
            ("summary", product.summary),
            ("sunsetDate", product.sunset_date.isoformat() if product.sunset_date else None),
            ("replacement", replacement.urn if replacement else None),
        ]
    )
    sources = _sources(user, product)
    inputs = []
    for inp in product.input_ports.all():
        if inp.source_port_id:
            source = sources.get(inp.source_product_id or 0)
            if source is None or inp.source_port is None:
                continue  # a product the reader may not see is not named
            item: dict[str, Any] = {
                "name": inp.source_port.slug,
                "version": source.version,
                "contractId": _contract_id(source),
            }
            custom = _custom([("description", inp.description)])
        else:
            item = {"name": inp.external_name}
            custom = _custom(
                [("externalKind", inp.external_kind), ("description", inp.description)]
            )
        if custom:
            item["customProperties"] = custom
        item = _merged(item, kept(inp), OWNED_INPUT, INPUT_PROPERTIES)
        inputs.append(item)
    if inputs:
        # In a natural order (not the order they were declared in), so a restored mesh
        # exports the same document.
        doc["inputPorts"] = sorted(
            inputs, key=lambda i: (i.get("contractId", ""), i["name"], json.dumps(i))
        )
    outputs = []
    for port in product.ports.all():
        out: dict[str, Any] = {"name": port.slug}
        if port.description:
            out["description"] = port.description
        port_kept = kept(port)
        spelled = port_kept.get("type")  # the document's name for the kind, if it had another
        out.update(
            type=spelled if _port_kind(spelled) == port.kind else port.kind,
            version=product.version,
            contractId=contract_id,
        )
        pairs: list[tuple[str, Any]] = [("businessName", port.name), ("format", port.format)]
        if connection_details:
            pairs += [
                ("location", port.location),
                ("dataSource", port.data_source.slug if port.data_source else None),
            ]
        out["customProperties"] = _custom(pairs)
        out = _merged(out, port_kept, OWNED_OUTPUT, PORT_PROPERTIES)
        outputs.append(out)
    if outputs:
        doc["outputPorts"] = outputs
    team = product.owner_team
    product_kept = kept(product)
    support = []
    if team.contact_email:
        support.append(
            {
                "channel": team.slug,
                "url": f"mailto:{team.contact_email}",
                "tool": "email",
                "scope": "interactive",
            }
        )
    support.append(
        {
            "channel": "mesh-portal",
            "url": settings.PORTAL_BASE_URL.rstrip("/") + product.get_absolute_url(),
            "description": "The product's page: access requests, quality, lineage.",
            "tool": "other",
            "scope": "issues",
        }
    )
    support += [s for s in product_kept.get("support") or [] if not _portal_support(s, team.slug)]
    doc["support"] = support
    team_doc: dict[str, Any] = {"name": team.slug}
    if team.description:
        team_doc["description"] = team.description
    members = []
    for m in team.memberships.all():
        member = {"username": m.user.get_username()}
        full = m.user.get_full_name()
        if full:
            member["name"] = full
        member["role"] = m.role
        members.append(member)
    if members:
        team_doc["members"] = members
    doc["team"] = _merged(team_doc, product_kept.get("team") or {}, OWNED_TEAM, None)
    doc["productCreatedTs"] = product.created_at.isoformat().replace("+00:00", "Z")
    return _ordered(_merged(doc, product_kept, OWNED_TOP, PRODUCT_PROPERTIES))


def export_yaml(product: DataProduct, *, user=None) -> str:
    return contracts.dump(export_document(product, user=user))


def kept_restore(*, product: DataProduct, doc: dict) -> None:
    """Put back what a (valid) ODPS document of product keeps: the restore of a backup
    (backup.mesh, import_mesh), whose documents carry the kept content and nothing else the
    rest of the backup does not. Ports and inputs are matched as export_document names them."""
    kept_restore_many([(product, doc)])


def kept_restore_many(
    items: list[tuple[DataProduct, dict]], *, created: dict | None = None
) -> None:
    """kept_restore for many products, with a few statements for all of them. `created`:
    {product id: when it was created}, put back too (the documents' productCreatedTs)."""
    from meshportal import bulk

    docs = {p.pk: doc for p, doc in items}
    created = created or {}
    products, ports, inputs = [], [], []
    for chunk in bulk.chunks(list(docs), 1000):
        loaded = list(
            DataProduct.objects.filter(pk__in=chunk)
            .select_related("owner_team")
            .prefetch_related(
                "ports", Prefetch("input_ports", InputPort.objects.select_related("source_port"))
            )
        )
        source_ids = {
            i.source_product_id for p in loaded for i in p.input_ports.all() if i.source_product_id
        }
        sources = {
            p.pk: p
            for p in DataProduct.objects.filter(pk__in=source_ids)
            .select_related("domain")
            .annotate(latest_extras=_latest_extras())
        }
        for product in loaded:
            doc = docs[product.pk]
            product.odps_kept = _kept_product(doc, product.owner_team.slug)
            if product.pk in created:
                product.created_at = created[product.pk]
            products.append(product)
            by_slug = {p.slug: p for p in product.ports.all()}
            for out in doc.get("outputPorts") or []:
                port = by_slug.get(_text(out.get("name")))
                if port is not None:
                    port.odps_kept = _kept_output(out, port.kind)
                    ports.append(port)
            matches: dict[tuple[str, str], InputPort] = {}
            for inp in product.input_ports.all():
                source = sources.get(inp.source_product_id or 0)
                if source is not None and inp.source_port is not None:
                    matches[(_contract_id(source), inp.source_port.slug)] = inp
                elif inp.source_port_id is None:
                    matches[("", inp.external_name)] = inp
            for item in doc.get("inputPorts") or []:
                match = matches.get((_text(item.get("contractId")), _text(item.get("name"))))
                if match is not None:
                    match.odps_kept = _rest(item, OWNED_INPUT, INPUT_PROPERTIES)
                    inputs.append(match)
    columns = ["odps_kept", "created_at"] if created else ["odps_kept"]
    bulk.update(products, columns)
    bulk.update(ports, ["odps_kept"])
    bulk.update(inputs, ["odps_kept"])


# -- import --------------------------------------------------------------------------------------


@dataclass
class ImportResult:
    product: DataProduct | None
    created: bool
    changed: bool
    applied: bool
    changes: list[str] = field(default_factory=list)
    # What the import did not take from the document, each {"path", "reason"}.
    ignored: list[dict] = field(default_factory=list)
    # What it keeps as it came (no portal field holds it) and writes back on export, alike.
    kept: list[dict] = field(default_factory=list)


class _Rollback(Exception):  # noqa: N818 - control flow, not an error
    def __init__(self, result: ImportResult):
        self.result = result


def _join(at: str, key: str) -> str:
    return f"{at}.{key}" if at else key


def _props(items, known: tuple[str, ...], at: str, report: dict[str, list]) -> dict:
    """The custom properties the portal reads here (the first of each name); the others are
    kept (`_rest`), a second one of a name the portal reads is not."""
    found: dict[str, Any] = {}
    for i, item in enumerate(items or []):
        name = item.get("property")
        path = _join(at, f"customProperties[{i}]")
        if name not in known:
            report["kept"].append({"path": path, "reason": KEPT})
        elif name in found:
            report["ignored"].append(
                {"path": path, "reason": f"The portal reads the first “{name}” only."}
            )
        else:
            found[name] = item.get("value")
    return found


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _report_rest(obj: Any, owned: frozenset[str], at: str, report: dict[str, list]) -> None:
    for key in obj if isinstance(obj, dict) else ():
        if key not in owned:
            report["kept"].append({"path": _join(at, key), "reason": KEPT})


def _product_by_contract_id(user, contract_id: str) -> DataProduct | None:
    """The product (visible to user) whose ODCS contract has this id: its URN, or the document
    id an ODCS import kept."""
    qs = visible(user, DataProduct.objects.select_related("domain"))
    ref = urns.parse(contract_id, path_form=False)
    if ref is not None:
        return qs.filter(domain__slug=ref[0], slug=ref[1]).first()
    needle = json.dumps(contract_id)[1:-1]
    for p in qs.filter(contract_versions__extras__contains=needle).annotate(
        latest_extras=_latest_extras()
    ):
        if _contract_id(p) == contract_id:
            return p
    return None


def _plan(doc: dict, user, report: dict[str, list], team_slug: str) -> dict:
    """The document in the portal's terms, or a ValidationError naming each bad path.
    `team_slug`: the team the product will belong to (whose support channel is the portal's)."""
    errors: dict[str, str] = {}
    _report_rest(doc, OWNED_TOP, "", report)
    product: dict[str, Any] = {"odps_kept": _kept_product(doc, team_slug)}
    if doc.get("name") is not None:
        product["name"] = _text(doc["name"])
    if doc.get("version") is not None:
        product["version"] = _text(doc["version"])
    desc = doc.get("description") or {}
    product["description"] = _text(desc.get("purpose"))
    _report_rest(desc, OWNED_DESCRIPTION, "description", report)
    product["tags"] = [str(t) for t in doc.get("tags") or []]
    custom = _props(doc.get("customProperties"), PRODUCT_PROPERTIES, "", report)
    product["summary"] = _text(custom.get("summary"))
    if "classification" in custom:
        product["classification"] = _text(custom["classification"])
    team = doc.get("team") or {}
    _report_rest(team, OWNED_TEAM, "team", report)
    for i, entry in enumerate(doc.get("support") or []):
        if not _portal_support(entry, team_slug):
            report["kept"].append({"path": f"support[{i}]", "reason": KEPT})

    outputs, seen = [], set()
    for i, out in enumerate(doc.get("outputPorts") or []):
        at = f"outputPorts[{i}]"
        slug = _text(out.get("name"))
        if not slug or not slug.replace("-", "").replace("_", "").isalnum():
            errors[f"{at}.name"] = f"“{slug}” is not a port slug (letters, digits, - and _)."
        elif slug in seen:
            errors[f"{at}.name"] = f"Duplicate output port “{slug}”."
        seen.add(slug)
        kind = _port_kind(out.get("type", "table"))
        if kind is None:
            errors[f"{at}.type"] = (
                f"“{out.get('type')}” is not a port type the portal knows: "
                f"{', '.join(sorted(contracts.PORT_KINDS))} (or their plurals)."
            )
        _report_rest(out, OWNED_OUTPUT, at, report)
        props = _props(out.get("customProperties"), PORT_PROPERTIES, at, report)
        spec: dict[str, Any] = {
            "slug": slug,
            "name": _text(props.get("businessName")) or slug,
            "kind": kind or "table",
            "format": _text(props.get("format")),
            "description": _text(out.get("description")),
            "odps_kept": _kept_output(out, kind),
        }
        if "location" in props:
            spec["location"] = _text(props["location"])
        if "dataSource" in props:
            ref = _text(props["dataSource"])
            model = OutputPort._meta.get_field("data_source").related_model
            source = model._default_manager.filter(slug=ref).first() if ref else None
            if ref and source is None:
                errors[f"{at}.customProperties"] = f"Unknown data source “{ref}”."
            spec["data_source"] = source
        outputs.append(spec)

    inputs = []
    kinds = set(InputPort.ExternalKind.values)
    for i, inp in enumerate(doc.get("inputPorts") or []):
        at = f"inputPorts[{i}]"
        _report_rest(inp, OWNED_INPUT, at, report)
        props = _props(inp.get("customProperties"), INPUT_PROPERTIES, at, report)
        spec = {
            "description": _text(props.get("description")),
            "odps_kept": _rest(inp, OWNED_INPUT, INPUT_PROPERTIES),
        }
        name = _text(inp.get("name"))
        if inp.get("contractId"):
            source = _product_by_contract_id(user, str(inp["contractId"]))
            if source is None:
                errors[f"{at}.contractId"] = (
                    f"No data product has the contract “{inp['contractId']}”, "
                    "or you may not see it."
                )
                continue
            port = source.ports.filter(slug=name).first()
            if port is None:
                errors[f"{at}.name"] = f"{source.urn} has no output port “{name}”."
                continue
            spec["source_port"] = port
        else:
            kind = _text(props.get("externalKind")) or InputPort.ExternalKind.OTHER
            if kind not in kinds:
                errors[f"{at}.customProperties"] = (
                    f"externalKind “{kind}” is not one of {', '.join(sorted(kinds))}."
                )
            if not name.strip():
                errors[f"{at}.name"] = "Name the external source."
            spec.update(external_name=name.strip(), external_kind=kind)
        inputs.append(spec)
    if errors:
        raise ValidationError(errors)
    return {"product": product, "team": team.get("name"), "outputs": outputs, "inputs": inputs}


def _target(doc: dict, product: DataProduct | None, domain_slug: str | None, slug: str | None):
    """(domain slug, product slug) the document is imported into, and whether its id is kept."""
    named = urns.parse(_text(doc.get("id")), path_form=False)
    if product is not None:
        domain_slug, slug = product.domain.slug, product.slug
    elif not (domain_slug and slug):
        if named is None:
            raise ValidationError(
                {"id": "Name the product: its URN (urn:mesh:<domain>:<product>) as `id`."}
            )
        domain_slug, slug = named
    urn = urns.format_urn(domain_slug, slug)
    if named is not None and named != (domain_slug, slug):
        raise ValidationError({"id": f"This document describes {doc['id']}, not {urn}."})
    if doc.get("domain") is not None and doc["domain"] != domain_slug:
        raise ValidationError(
            {"domain": f"This document is in domain “{doc['domain']}”, not {domain_slug}."}
        )
    return domain_slug, slug


def odps_import(
    *,
    text: str,
    user,
    product: DataProduct | None = None,
    domain_slug: str | None = None,
    product_slug: str | None = None,
    dry_run: bool = False,
) -> ImportResult:
    """Create or update the product an ODPS document describes; all or nothing.

    The product is the one given (the URL names it), else the one `domain_slug`/`product_slug`
    name, else the one the document's `id` (a URN) names.
    """
    doc = parse(text)
    validate(doc)
    report: dict[str, list] = {"ignored": [], "kept": []}
    ignored = report["ignored"]
    if urns.parse(_text(doc.get("id")), path_form=False) is None:
        ignored.append({"path": "id", "reason": "The portal identifies a product by its URN."})
    domain_ref, slug = _target(doc, product, domain_slug, product_slug)
    domain = Domain.objects.filter(slug=domain_ref).first()
    if domain is None:
        raise ValidationError({"domain": f"Unknown domain “{domain_ref}”."})
    existing = product or DataProduct.objects.filter(domain=domain, slug=slug).first()
    taken = existing is not None and not can(user, VIEW, existing)
    if taken:
        existing = None  # answered exactly as a name that does not exist
    if existing is None:
        require(user, CREATE_PRODUCT, domain)
    if taken:
        raise ValidationError({"id": f"The name {slug} is not available in domain {domain.slug}."})
    if existing is not None:
        require(user, EDIT, existing)
    team_ref = _text((doc.get("team") or {}).get("name"))
    plan = _plan(doc, user, report, team_ref or (existing or domain).owner_team.slug)
    team = None
    if plan["team"]:
        ref = str(plan["team"])
        team = Team.objects.filter(slug=ref).first() or Team.objects.filter(name=ref).first()
        if team is None:
            raise ValidationError({"team.name": f"Unknown team “{ref}”."})
        current = existing or DataProduct(domain=domain, owner_team=domain.owner_team)
        if team.pk != current.owner_team_id:
            require_transfer(user, current, team)
    status = doc.get("status")
    now = STATUS_OUT[DataProduct.Status(existing.status if existing else "draft")]
    if status is not None and status != now:
        ignored.append(
            {
                "path": "status",
                "reason": (
                    f"The product stays {now}: its status changes by the publish, deprecate "
                    "and retire actions."
                ),
            }
        )
    try:
        with transaction.atomic(), contracts.enforcing():
            result = _apply(plan, domain, slug, existing, team=team, user=user)
            result.ignored, result.kept = ignored, report["kept"]
            if dry_run or not result.changed:
                raise _Rollback(result)
    except _Rollback as r:
        result = r.result
        result.applied = False
        result.product = existing
    return result


def _prefixed(e: ValidationError, paths: dict[str, str], default: str) -> ValidationError:
    errors = getattr(e, "message_dict", None) or {default: e.messages}
    return ValidationError({paths.get(k, default): v for k, v in errors.items()})


KEPT_LABEL = "kept ODPS content changed"


def _label(name: str) -> str:
    return "kept ODPS content" if name == "odps_kept" else name


PRODUCT_PATHS = {
    "name": "name",
    "version": "version",
    "description": "description.purpose",
    "summary": "customProperties",
    "classification": "customProperties",
    "tags": "tags",
}


def _apply(plan: dict, domain: Domain, slug: str, existing, *, team, user) -> ImportResult:
    from products import services
    from products.lineage import services as lineage

    changes: list[str] = []
    data = dict(plan["product"])
    # One contract version for the whole import; a breaking change to a published product
    # without a major version bump is refused when it ends (an error at `version`).
    with contracts.batch():
        try:
            if existing is None:
                data.setdefault("name", slug)
                product = services.product_create(domain=domain, slug=slug, **data)
                changes.append(f"Created {product.urn}.")
                created = True
            else:
                product = DataProduct.objects.select_for_update().get(pk=existing.pk)
                updates = {
                    k: v for k, v in data.items() if k != "tags" and getattr(product, k) != v
                }
                tags = data["tags"]
                if sorted(tags) == sorted(t.name for t in product.tags.all()):
                    tags = None
                if updates or tags is not None:
                    product = services.product_update(product=product, tags=tags, **updates)
                changes += [f"{_label(k)} changed." for k in sorted(updates)]
                if tags is not None:
                    changes.append("tags changed.")
                created = False
            if team is not None and team.pk != product.owner_team_id:
                product = services.product_transfer(product=product, team=team, by=user)
                changes.append(f"Moved to team {team.slug}.")
        except ValidationError as e:
            raise _prefixed(e, PRODUCT_PATHS, "document") from None
        _sync_outputs(product, plan["outputs"], changes)
        _sync_inputs(product, plan["inputs"], user, changes, lineage)
    return ImportResult(
        product=product, created=created, changed=bool(changes), applied=True, changes=changes
    )


def _sync_outputs(product: DataProduct, ports: list[dict], changes: list[str]) -> None:
    from products import services

    existing = {p.slug: p for p in product.ports.all()}
    wanted = {p["slug"] for p in ports}
    for slug, stale in existing.items():
        if slug not in wanted:
            services.port_delete(port=stale)
            changes.append(f"Output port {slug} removed.")
    for i, spec in enumerate(ports):
        at = f"outputPorts[{i}]"
        paths = {
            "slug": f"{at}.name",
            "kind": f"{at}.type",
            "description": f"{at}.description",
        }
        try:
            port = existing.get(spec["slug"])
            if port is None:
                services.port_create(product=product, **spec)
                changes.append(f"Output port {spec['slug']} added.")
                continue
            updates = {k: v for k, v in spec.items() if getattr(port, k) != v}
            if updates:
                services.port_update(port=port, **updates)
                names = ", ".join(_label(k) for k in sorted(updates))
                changes.append(f"Output port {port.slug}: {names} changed.")
        except ValidationError as e:
            raise _prefixed(e, paths, f"{at}.customProperties") from None


def _sync_inputs(product: DataProduct, inputs: list[dict], user, changes, lineage) -> None:
    def key(x) -> tuple:
        if x.get("source_port") is not None:
            return ("port", x["source_port"].pk, x["description"])
        return ("external", x["external_name"], x["external_kind"], x["description"])

    current = list(product.input_ports.select_related("source_port__product"))
    have = {}
    for inp in current:
        spec: dict[str, Any] = {"description": inp.description}
        if inp.source_port is not None:
            if not can(user, VIEW, inp.source_port.product):
                continue  # an input from a product the importer may not see stays as it is
            spec["source_port"] = inp.source_port
        else:
            spec.update(external_name=inp.external_name, external_kind=inp.external_kind)
        have[key(spec)] = inp
    wanted = {key(s) for s in inputs}
    for k, inp in have.items():
        if k not in wanted:
            lineage.input_port_delete(input_port=inp, by=user)
            changes.append(f"Input {inp.source_port or inp.external_name} removed.")
    for i, spec in enumerate(inputs):
        same = have.get(key(spec))
        if same is not None:
            if same.odps_kept != spec["odps_kept"]:
                # Content no portal field holds: no rule to check, no lineage change.
                InputPort.objects.filter(pk=same.pk).update(odps_kept=spec["odps_kept"])
                changes.append(f"Input {same.source_port or same.external_name}: {KEPT_LABEL}.")
            continue
        try:
            lineage.input_port_create(product=product, by=user, **spec)
        except ValidationError as e:
            raise _prefixed(e, {}, f"inputPorts[{i}]") from None
        changes.append(f"Input {spec.get('source_port') or spec['external_name']} added.")
