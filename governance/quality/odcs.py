"""Quality checks <-> the ODCS v3 contract's quality rules, so a contract exported from the
portal carries its checks and an imported one creates them: export -> import -> export gives
the same document for every check type.

Mapping (ODCS v3 `quality` entries, `type: library` unless said otherwise):
  row_count        object-level  metric rowCount        mustBeBetween / mustBeGreaterOrEqualTo / mustBeLessOrEqualTo
  missing          property      metric nullValues (or missingValues with arguments.missingValues)
  duplicates       property      metric duplicateValues (several columns: object-level, arguments.properties)
  accepted_values  property      metric invalidValues, arguments.validValues
  pattern          property      metric invalidValues, arguments.pattern
  range            object-level  type sql (COUNT of rows outside [min, max]) + portal entry (*)
  custom_sql       object-level  type sql, query with ${object}
  freshness        slaProperties {property: freshness, value: hours, unit: h, element: object.column}
  schema           object-level  type custom, engine mesh-portal, dimension conformity + portal entry (*)
(*) ODCS has no range metric and no schema-conformance rule (the declared schema is the
contract itself). Such a rule carries the portal's exact check in its `customProperties` as
{property: meshPortalCheck, value: {kind, columns, params}}; other tools still read the SQL (or
skip the custom rule), and the portal's import restores the check from that entry.
Thresholds use mustBe / mustBeLessThan / mustBeLessOrEqualTo / mustBeBetween, `unit: percent`
for percentages.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from governance.models import QualityCheck
from governance.quality import services


def _threshold(max_value, unit: str = "count") -> dict:
    rule: dict[str, Any] = {"mustBe": 0} if not max_value else {"mustBeLessOrEqualTo": max_value}
    if unit == "percent":
        rule["unit"] = "percent"
    return rule


PORTAL_PROPERTY = "meshPortalCheck"


def _portal_entry(c: QualityCheck) -> list[dict]:
    """The customProperties entry that lets the portal restore a check ODCS cannot express."""
    value = {"kind": c.kind, "columns": list(c.columns), "params": dict(c.params)}
    return [{"property": PORTAL_PROPERTY, "value": value}]


def _hours(value):
    return int(value) if float(value).is_integer() else value


def checks_to_odcs(port) -> dict:
    """-> {"quality": [object-level rules], "properties": {column: [rules]},
    "slaProperties": [freshness entries]} for the port's enabled checks."""
    out: dict = {"quality": [], "properties": {}, "slaProperties": []}
    # port.quality_checks.all() uses checks prefetched by a bulk export (backup.mesh).
    checks = sorted((c for c in port.quality_checks.all() if c.enabled), key=lambda c: c.name)
    for c in checks:
        p = c.params
        col = c.columns[0] if c.columns else None
        if c.kind == "row_count":
            if p.get("min") is not None and p.get("max") is not None:
                op = {"mustBeBetween": [p["min"], p["max"]]}
            elif p.get("min") is not None:
                op = {"mustBeGreaterOrEqualTo": p["min"]}
            else:
                op = {"mustBeLessOrEqualTo": p["max"]}
            out["quality"].append({"name": c.name, "type": "library", "metric": "rowCount", **op})
        elif c.kind == "missing":
            rule: dict[str, Any] = {"name": c.name, "type": "library", "metric": "nullValues"}
            if p.get("missing_values"):
                rule = {
                    "name": c.name,
                    "type": "library",
                    "metric": "missingValues",
                    "arguments": {"missingValues": [None, *p["missing_values"]]},
                }
            out["properties"].setdefault(col, []).append(
                rule | _threshold(p.get("max"), p.get("unit"))
            )
        elif c.kind == "duplicates":
            rule = {"name": c.name, "type": "library", "metric": "duplicateValues"}
            rule |= _threshold(p.get("max"), p.get("unit"))
            if len(c.columns) == 1:
                out["properties"].setdefault(col, []).append(rule)
            else:
                out["quality"].append(rule | {"arguments": {"properties": list(c.columns)}})
        elif c.kind in ("accepted_values", "pattern"):
            args = (
                {"validValues": p["values"]}
                if c.kind == "accepted_values"
                else {"pattern": p["pattern"]}
            )
            out["properties"].setdefault(col, []).append(
                {"name": c.name, "type": "library", "metric": "invalidValues", "arguments": args}
                | _threshold(p.get("max"), p.get("unit"))
            )
        elif c.kind == "range":
            # range checks have exactly one column (COLUMN_KINDS)
            conds, quoted = [], '"' + c.columns[0].replace('"', '""') + '"'
            if p.get("min") is not None:  # numbers, validated when the check was defined
                conds.append(f"{quoted} < {float(p['min']):g}")
            if p.get("max") is not None:
                conds.append(f"{quoted} > {float(p['max']):g}")
            out["quality"].append(
                {
                    "name": c.name,
                    "type": "sql",
                    # a quoted identifier and formatted floats only
                    "query": f"SELECT COUNT(*) FROM ${{object}} WHERE {' OR '.join(conds)}",  # noqa: S608  # nosec B608
                    "customProperties": _portal_entry(c),
                }
                | _threshold(p.get("max_failing"))
            )
        elif c.kind == "schema":
            out["quality"].append(
                {
                    "name": c.name,
                    "type": "custom",
                    "engine": "mesh-portal",
                    "implementation": "schema conformance",
                    "dimension": "conformity",
                    "description": "The table's real columns and types match the declared "
                    "properties"
                    + (" (extra columns allowed)" if p.get("allow_extra") else "")
                    + "; properties declared required have no missing values, and those "
                    "declared unique (or the primary key) no duplicates.",
                    "customProperties": _portal_entry(c),
                }
            )
        elif c.kind == "custom_sql":
            out["quality"].append(
                {"name": c.name, "type": "sql", "query": p["sql"]} | _threshold(p.get("max"))
            )
        elif c.kind == "freshness":
            out["slaProperties"].append(
                {
                    "property": "freshness",
                    "value": _hours(p["hours"]),
                    "unit": "h",
                    # The contract's object (the port) and property: ODCS's `table.column`.
                    "element": f"{port.slug}.{col}",
                }
            )
    return out


_UNIT_HOURS = {
    "h": 1,
    "hour": 1,
    "hours": 1,
    "d": 24,
    "day": 24,
    "days": 24,
    "m": 1 / 60,
    "min": 1 / 60,
    "minutes": 1 / 60,
}


def _max_from(rule: dict, percent: bool):
    """The most failing rows (or percent) a rule allows, from its operator."""
    if "mustBe" in rule:
        return rule["mustBe"]
    if "mustBeLessOrEqualTo" in rule:
        return rule["mustBeLessOrEqualTo"]
    if "mustBeLessThan" in rule:
        v = rule["mustBeLessThan"]
        return v if percent else max(v - 1, 0)
    if "mustBeBetween" in rule:
        return rule["mustBeBetween"][1]
    raise ValidationError(
        {
            "quality": f"Rule {rule.get('name') or rule.get('metric')}: use mustBe, "
            "mustBeLessThan, mustBeLessOrEqualTo or mustBeBetween."
        }
    )


def _rule_to_check(rule: dict, column: str | None) -> tuple[str, list, dict] | None:
    for prop in rule.get("customProperties") or []:
        value = prop.get("value") if isinstance(prop, dict) else None
        if prop.get("property") == PORTAL_PROPERTY and isinstance(value, dict):
            # The portal's own check, exactly (validated by check_create like any other).
            return (
                str(value.get("kind")),
                list(value.get("columns") or []),
                value.get("params") or {},
            )
    if rule.get("type") == "custom":
        return None  # another engine's rule: kept in the contract
    metric = rule.get("metric") or rule.get("rule")
    percent = rule.get("unit") == "percent"
    unit = "percent" if percent else "count"
    args = rule.get("arguments") or {}
    if rule.get("type") == "sql":
        query = rule.get("query", "")
        return "custom_sql", [], {"sql": query, "max": _max_from(rule, False)}
    if metric == "rowCount":
        if "mustBeBetween" in rule:
            lo, hi = rule["mustBeBetween"]
        else:
            lo = rule.get("mustBeGreaterOrEqualTo", rule.get("mustBeGreaterThan"))
            hi = rule.get("mustBeLessOrEqualTo", rule.get("mustBeLessThan", rule.get("mustBe")))
            lo = rule.get("mustBe", lo)
        return "row_count", [], {"min": lo, "max": hi}
    if metric in ("nullValues", "missingValues"):
        params = {"max": _max_from(rule, percent), "unit": unit}
        extra = [v for v in args.get("missingValues", []) if v is not None]
        if extra:
            params["missing_values"] = extra
        return "missing", [column], params
    if metric == "duplicateValues":
        cols = args.get("properties") or [column]
        return "duplicates", cols, {"max": _max_from(rule, percent), "unit": unit}
    if metric == "invalidValues":
        if "validValues" in args:
            return (
                "accepted_values",
                [column],
                {"values": args["validValues"], "max": _max_from(rule, percent), "unit": unit},
            )
        if "pattern" in args:
            return (
                "pattern",
                [column],
                {"pattern": args["pattern"], "max": _max_from(rule, percent), "unit": unit},
            )
    return None  # a rule the engine does not run (e.g. type text/custom): kept in the contract


def odcs_to_checks(
    port, *, quality=(), properties=None, sla_properties=(), by=None
) -> list[QualityCheck]:
    """Create the port's checks from ODCS rules: `quality` (object-level list), `properties`
    ({column: [rules]} or ODCS property dicts with a `quality` list) and `slaProperties`.
    A rule whose check exists already (same name) updates it when it says something else
    (another kind replaces it), so importing twice changes nothing and a changed rule applies.
    Returns the checks created or changed."""
    items: list[tuple[dict, str | None]] = [(r, None) for r in quality or []]
    if isinstance(properties, dict):
        items += [(r, col) for col, rules in properties.items() for r in rules]
    else:
        items += [(r, prop["name"]) for prop in properties or [] for r in prop.get("quality") or []]
    created = []
    checks = {c.name: c for c in QualityCheck.objects.filter(port=port)}
    existing = set(checks)
    for n, (rule, column) in enumerate(items, 1):
        mapped = _rule_to_check(rule, column)
        if mapped is None:
            continue
        kind, columns, params = mapped
        name = (
            rule.get("name") or f"{rule.get('metric') or kind}{' ' + column if column else ''} #{n}"
        )
        old = checks.get(name)
        if old is not None and old.kind == kind:
            columns, params = services.validate_check(
                kind=kind, columns=columns, params=params, port=port
            )
            if (list(old.columns), dict(old.params)) != (columns, params):
                created.append(
                    services.check_update(check=old, columns=columns, params=params, by=by)
                )
            continue
        if old is not None:  # the rule is now of another kind: the old check gives way
            services.check_delete(check=old, by=by)
            existing.discard(name)
        if name in existing:
            continue
        created.append(
            services.check_create(
                port=port, name=name, kind=kind, columns=columns, params=params, by=by
            )
        )
        existing.add(name)
    fresh_columns = {
        c.columns[0] for c in QualityCheck.objects.filter(port=port, kind="freshness") if c.columns
    }
    for sla in sla_properties or []:
        if not is_freshness_sla(sla):
            continue
        column = sla["element"].split(".")[-1]
        hours = float(sla["value"]) * _UNIT_HOURS.get(str(sla.get("unit", "h")).lower(), 1)
        name = f"Freshness of {column}"
        # SLA entries carry no check name: one freshness check per column is the identity.
        if name in existing or column in fresh_columns:
            continue
        created.append(
            services.check_create(
                port=port,
                name=name,
                kind="freshness",
                columns=[column],
                params={"hours": _hours(hours)},
                by=by,
            )
        )
        existing.add(name)
        fresh_columns.add(column)
    return created


def is_freshness_sla(sla) -> bool:
    return (
        isinstance(sla, dict)
        and sla.get("property") == "freshness"
        and isinstance(sla.get("element"), str)
        and "." in sla["element"]
        and isinstance(sla.get("value"), int | float)
    )


# -- hooks into products.contracts.services ---------------------------------------------------------------


def _port_rules(port) -> dict:
    # One export asks once per port and once per field: map the port's checks once.
    if not hasattr(port, "_odcs_quality"):
        port._odcs_quality = checks_to_odcs(port)
    return port._odcs_quality


def contract_exporter(product, port, field_name):
    """ODCS quality rules for a port (object level) or one of its fields, from its checks."""
    if port is None:
        return None
    rules = _port_rules(port)
    return (rules["quality"] if field_name is None else rules["properties"].get(field_name)) or None


def contract_importer(product, port, field_name, rules) -> bool:
    """Create checks from a contract's quality rules; they are then the portal's own. Rules for
    a port without a data source cannot run: they stay in the contract as they are."""
    if port is None or port.data_source_id is None:
        return False
    if field_name is None:
        created = odcs_to_checks(port, quality=rules)
    else:
        created = odcs_to_checks(port, properties={field_name: rules})
    if created:
        product._contract_hooks_changed = True  # the import must keep them, not roll back
    return True


def sla_exporter(product) -> list:
    """Freshness checks as `slaProperties` entries with an element (object.column)."""
    return [sla for port in product.ports.all() for sla in _port_rules(port)["slaProperties"]]


def sla_importer(product, sla) -> bool:
    """A freshness entry naming object.column becomes a freshness check on that port (matched
    by the object's name, i.e. the port's slug, or else its table)."""
    if not is_freshness_sla(sla):
        return False
    obj = sla["element"].rsplit(".", 1)[0]
    ports = list(product.ports.all())
    port = next((p for p in ports if p.slug == obj), None) or next(
        (p for p in ports if p.location and p.location.split(".")[-1] == obj.split(".")[-1]),
        None,
    )
    if port is None or port.data_source_id is None:
        return False
    if odcs_to_checks(port, sla_properties=[sla]):
        product._contract_hooks_changed = True
    return True


def register_contract_hooks() -> None:
    from products.contracts import services as contracts

    if contract_exporter not in contracts.QUALITY_EXPORTERS:
        contracts.QUALITY_EXPORTERS.append(contract_exporter)
    if contract_importer not in contracts.QUALITY_IMPORTERS:
        contracts.QUALITY_IMPORTERS.append(contract_importer)
    if sla_exporter not in contracts.SLA_EXPORTERS:
        contracts.SLA_EXPORTERS.append(sla_exporter)
    if sla_importer not in contracts.SLA_IMPORTERS:
        contracts.SLA_IMPORTERS.append(sla_importer)
