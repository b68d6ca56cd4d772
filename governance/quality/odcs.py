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
Thresholds use mustBe / mustBeLessThan (strict: params max_exclusive) / mustBeLessOrEqualTo /
mustBeBetween, `unit: percent` for percentages; row counts also mustBeGreaterThan (min_exclusive).

Lossless: the contract keeps its quality sections and slaProperties exactly as they came
(products.contracts.services, the version's extras). `plan_rules` reads a section the same way on
import and on export: each rule the portal can run names a check (its `name`, or
`<metric> <column> #<n>`); the export writes the rule as it came while the check says the same
(kind, columns, params, cron from `schedule`), anew from the check when it was edited, not at
all when it was deleted; rules the portal cannot run (text, other engines, operators or SQL it
cannot evaluate) are documentation, written back as they came. Re-importing deletes the checks
whose rules the previous contract had and the new one has not.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import prefetch_related_objects

from governance.models import QualityCheck
from governance.quality import services

OPERATORS = (
    "mustBe",
    "mustNotBe",
    "mustBeGreaterThan",
    "mustBeGreaterOrEqualTo",
    "mustBeLessThan",
    "mustBeLessOrEqualTo",
    "mustBeBetween",
    "mustNotBeBetween",
)
# What a rule says beyond its check: kept when the portal writes a check's rule anew (after the
# check was edited on the Quality tab).
RULE_META = (
    "id",
    "description",
    "dimension",
    "severity",
    "businessImpact",
    "tags",
    "authoritativeDefinitions",
    "method",
    "scheduler",
    "schedule",
    "customProperties",
)
PORTAL_PROPERTY = "meshPortalCheck"


def _threshold(max_value, unit: str = "count", strict: bool = False) -> dict:
    if strict:
        rule: dict[str, Any] = {"mustBeLessThan": max_value}
    else:
        rule = {"mustBe": 0} if not max_value else {"mustBeLessOrEqualTo": max_value}
    if unit == "percent":
        rule["unit"] = "percent"
    return rule


def _portal_entry(c: QualityCheck) -> list[dict]:
    """The customProperties entry that lets the portal restore a check ODCS cannot express."""
    value = {"kind": c.kind, "columns": list(c.columns), "params": dict(c.params)}
    return [{"property": PORTAL_PROPERTY, "value": value}]


def _hours(value):
    return int(value) if float(value).is_integer() else value


def _row_count_operator(p: dict) -> dict | None:
    lo, hi = p.get("min"), p.get("max")
    lo_x, hi_x = bool(p.get("min_exclusive")), bool(p.get("max_exclusive"))
    if lo is not None and hi is not None:
        if lo_x or hi_x:
            return None  # one ODCS operator cannot say it: the portal entry does
        return {"mustBe": lo} if lo == hi else {"mustBeBetween": [lo, hi]}
    if lo is not None:
        return {"mustBeGreaterThan" if lo_x else "mustBeGreaterOrEqualTo": lo}
    return {"mustBeLessThan" if hi_x else "mustBeLessOrEqualTo": hi}


def check_rule(c: QualityCheck) -> tuple[str | None, dict]:
    """One check as an ODCS rule: (column for a property-level rule or None, rule). Freshness
    checks are `slaProperties` entries (freshness_sla); here they are a portal rule."""
    p = c.params
    col = c.columns[0] if c.columns else None
    strict = bool(p.get("max_exclusive"))
    rule: dict[str, Any]
    if c.kind == "row_count":
        op = _row_count_operator(p)
        if op is None:
            rule = {"name": c.name, "type": "library", "metric": "rowCount"}
            rule |= {"mustBeGreaterOrEqualTo": p["min"], "customProperties": _portal_entry(c)}
            return None, rule
        return None, {"name": c.name, "type": "library", "metric": "rowCount", **op}
    if c.kind == "missing":
        rule = {"name": c.name, "type": "library", "metric": "nullValues"}
        if p.get("missing_values"):
            rule = {
                "name": c.name,
                "type": "library",
                "metric": "missingValues",
                "arguments": {"missingValues": [None, *p["missing_values"]]},
            }
        return col, rule | _threshold(p.get("max"), p.get("unit"), strict)
    if c.kind == "duplicates":
        rule = {"name": c.name, "type": "library", "metric": "duplicateValues"}
        rule |= _threshold(p.get("max"), p.get("unit"), strict)
        if len(c.columns) == 1:
            return col, rule
        return None, rule | {"arguments": {"properties": list(c.columns)}}
    if c.kind in ("accepted_values", "pattern"):
        args = (
            {"validValues": p["values"]}
            if c.kind == "accepted_values"
            else {"pattern": p["pattern"]}
        )
        rule = {"name": c.name, "type": "library", "metric": "invalidValues", "arguments": args}
        return col, rule | _threshold(p.get("max"), p.get("unit"), strict)
    if c.kind == "range":
        # range checks have exactly one column (COLUMN_KINDS)
        conds, quoted = [], '"' + c.columns[0].replace('"', '""') + '"'
        if p.get("min") is not None:  # numbers, validated when the check was defined
            conds.append(f"{quoted} < {float(p['min']):g}")
        if p.get("max") is not None:
            conds.append(f"{quoted} > {float(p['max']):g}")
        return None, {
            "name": c.name,
            "type": "sql",
            # a quoted identifier and formatted floats only
            "query": f"SELECT COUNT(*) FROM ${{object}} WHERE {' OR '.join(conds)}",  # noqa: S608  # nosec B608
            "customProperties": _portal_entry(c),
        } | _threshold(p.get("max_failing"), "count", strict)
    if c.kind == "schema":
        return None, {
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
    if c.kind == "custom_sql":
        return None, {"name": c.name, "type": "sql", "query": p["sql"]} | _threshold(
            p.get("max"), "count", strict
        )
    # freshness (or any other kind) claimed by a rule: the portal's own entry says it exactly
    return None, {
        "name": c.name,
        "type": "custom",
        "engine": "mesh-portal",
        "implementation": c.kind,
        "customProperties": _portal_entry(c),
    }


def _with_schedule(c: QualityCheck, rule: dict) -> dict:
    if c.cron:
        rule = rule | {"scheduler": "cron", "schedule": c.cron}
    return rule


def freshness_sla(port, c: QualityCheck) -> dict:
    return {
        "property": "freshness",
        "value": _hours(c.params["hours"]),
        "unit": "h",
        # The contract's object (the port) and property: ODCS's `table.column`.
        "element": f"{port.slug}.{c.columns[0]}",
    }


def checks_to_odcs(port, *, exclude=()) -> dict:
    """-> {"quality": [object-level rules], "properties": {column: [rules]},
    "slaProperties": [freshness entries]} for the port's enabled checks (not those named in
    `exclude`: their rules come from the contract)."""
    out: dict = {"quality": [], "properties": {}, "slaProperties": []}
    # port.quality_checks.all() uses checks prefetched by a bulk export (backup.mesh).
    checks = sorted(
        (c for c in port.quality_checks.all() if c.enabled and c.name not in exclude),
        key=lambda c: c.name,
    )
    for c in checks:
        if c.kind == "freshness":
            if c.columns:
                out["slaProperties"].append(freshness_sla(port, c))
            continue
        col, rule = check_rule(c)
        rule = _with_schedule(c, rule)
        if col is None:
            out["quality"].append(rule)
        else:
            out["properties"].setdefault(col, []).append(rule)
    return out


# -- ODCS rules -> checks --------------------------------------------------------------------------


class NotRun(Exception):  # noqa: N818 - a reason, not an error
    """Why the portal keeps a rule as documentation instead of running it."""


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _operator(rule: dict) -> tuple[str, Any]:
    ops = [k for k in OPERATORS if k in rule]
    if len(ops) != 1:
        raise NotRun("it has no comparison operator" if not ops else "it has several operators")
    return ops[0], rule[ops[0]]


def _limit(rule: dict) -> tuple[Any, bool]:
    """(most failing rows or percent allowed, strict) from a rule's operator."""
    op, v = _operator(rule)
    if op == "mustBe" and _is_number(v) and v == 0:
        return 0, False
    if op in ("mustBeLessOrEqualTo", "mustBeLessThan") and _is_number(v):
        return v, op == "mustBeLessThan"
    if (
        op == "mustBeBetween"
        and isinstance(v, list)
        and len(v) == 2
        and all(map(_is_number, v))
        and v[0] <= 0
    ):
        return v[1], False
    raise NotRun(f"the portal counts failing rows up to a limit; {op} {v!r} is not one")


def _bounds(rule: dict) -> dict:
    op, v = _operator(rule)
    if op == "mustBeBetween" and isinstance(v, list) and len(v) == 2 and all(map(_is_number, v)):
        return {"min": v[0], "max": v[1]}
    if _is_number(v):
        return {
            "mustBe": {"min": v, "max": v},
            "mustBeGreaterThan": {"min": v, "min_exclusive": True},
            "mustBeGreaterOrEqualTo": {"min": v},
            "mustBeLessThan": {"max": v, "max_exclusive": True},
            "mustBeLessOrEqualTo": {"max": v},
        }.get(op) or {}
    return {}


def _unit(rule: dict) -> str:
    unit = rule.get("unit")
    if unit is None or str(unit).lower() in ("rows", "row", "count"):
        return "count"
    if str(unit).lower() in ("percent", "%"):
        return "percent"
    raise NotRun(f"unit {unit!r} is not rows or percent")


def _mapping(rule: dict, column: str | None) -> tuple[str, list, dict]:
    """(kind, columns, params) of the check a rule asks for; NotRun says why there is none."""
    for prop in rule.get("customProperties") or []:
        value = prop.get("value") if isinstance(prop, dict) else None
        if isinstance(prop, dict) and prop.get("property") == PORTAL_PROPERTY:
            if isinstance(value, dict):
                # The portal's own check, exactly (validated like any other).
                return (
                    str(value.get("kind")),
                    list(value.get("columns") or []),
                    dict(value.get("params") or {}),
                )
    metric = rule.get("metric") or rule.get("rule")
    kind = rule.get("type") or ("library" if metric else "text")
    if kind == "text":
        raise NotRun("a text rule is read by people")
    if kind == "custom":
        raise NotRun(f"a rule for the engine {rule.get('engine')!r}")
    if kind == "sql":
        if _unit(rule) == "percent":
            raise NotRun("the portal's SQL checks count rows, not percent")
        most, strict = _limit(rule)
        params = {"sql": rule.get("query", ""), "max": most}
        return "custom_sql", [], params | ({"max_exclusive": True} if strict else {})
    if kind != "library":
        raise NotRun(f"type {kind!r}")
    args = rule.get("arguments") or {}
    if not isinstance(args, dict):
        raise NotRun("its arguments are not a mapping")
    if metric == "rowCount":
        bounds = _bounds(rule)
        if not bounds:
            raise NotRun(f"row count {_operator(rule)[0]} is not a range")
        return "row_count", [], bounds
    if column is None and metric != "duplicateValues":
        raise NotRun(f"{metric} needs a property")
    unit = _unit(rule)
    most, strict = _limit(rule)
    limit = {"max": most, "unit": unit} | ({"max_exclusive": True} if strict else {})
    if metric in ("nullValues", "missingValues"):
        extra = args.get("missingValues") or []
        if not isinstance(extra, list):
            raise NotRun("missingValues is not a list")
        extra = [v for v in extra if v is not None]
        return "missing", [column], limit | ({"missing_values": extra} if extra else {})
    if metric == "duplicateValues":
        cols = args.get("properties") or [column]
        if not isinstance(cols, list) or None in cols:
            raise NotRun("duplicateValues needs its properties")
        return "duplicates", cols, limit
    if metric == "invalidValues":
        if "validValues" in args:
            return "accepted_values", [column], {"values": args["validValues"]} | limit
        if "pattern" in args:
            return "pattern", [column], {"pattern": args["pattern"]} | limit
    raise NotRun(f"metric {metric!r} with these arguments")


def _cron(rule: dict) -> str:
    """A rule's `schedule` is the check's cron when it is a five-field cron expression (and its
    scheduler, if named, is cron); otherwise the check keeps its interval."""
    schedule, scheduler = rule.get("schedule"), rule.get("scheduler")
    if not isinstance(schedule, str) or len(schedule) > 100:
        return ""
    if scheduler is not None and str(scheduler).lower() != "cron":
        return ""
    try:
        services.cron_schedule(schedule)
    except (ValueError, KeyError, TypeError):
        return ""
    return schedule


def assess(rule, column: str | None, port, *, strict: bool = False):
    """(kind, columns, params, cron) of the check the portal runs for a rule, or a NotRun
    saying why the rule is documentation only. `strict`: an invalid check is an error."""
    if not isinstance(rule, dict):
        return NotRun("not a rule")
    try:
        kind, columns, params = _mapping(rule, column)
    except NotRun as e:
        return e
    try:
        columns, params = services.validate_check(
            kind=kind, columns=columns, params=params, port=port
        )
    except ValidationError as e:
        if strict:
            raise
        return NotRun("; ".join(m for ms in e.message_dict.values() for m in ms))
    return kind, columns, params, _cron(rule)


def _rule_name(rule: dict, column: str | None, n: int, kind: str) -> str:
    name = rule.get("name")
    if isinstance(name, str) and name.strip():
        return name.strip()
    return f"{rule.get('metric') or kind}{' ' + column if column else ''} #{n}"


def plan_rules(port, sections, *, strict: bool = False) -> list[tuple[str | None, list[tuple]]]:
    """[(column or None, [(rule, check name or None, (kind, columns, params, cron) or a
    NotRun)])] for a port's quality sections in document order (object first, then its
    properties). Import and export read the same plan: a rule names a check, the first rule of
    a name has it, and a rule the portal cannot run is kept as documentation."""
    claimed: set[str] = set()
    out = []
    for column, rules in sections:
        entries: list[tuple[Any, str | None, Any]] = []
        for n, rule in enumerate(rules or [], 1):
            if port.data_source_id is None:
                entries.append((rule, None, NotRun("the port has no data source")))
                continue
            mapped = assess(rule, column, port, strict=strict)
            name = None
            if not isinstance(mapped, NotRun):
                name = _rule_name(rule, column, n, mapped[0])
                if name in claimed:
                    mapped = NotRun(f"another rule of this object is named {name!r}")
                    name = None
                else:
                    claimed.add(name)
            entries.append((rule, name, mapped))
        out.append((column, entries))
    return out


def _signature(c: QualityCheck) -> tuple:
    return c.kind, list(c.columns), dict(c.params), c.cron


def apply_rules(port, sections, previous=(), *, by=None, strict: bool = False) -> list:
    """Make the port's checks what its quality sections say: a rule's check is created, or
    updated when the rule says something else (another kind replaces it); a check whose rule
    was in `previous` (the last contract) and is gone now is deleted. Checks defined on the
    Quality tab that no contract named are left alone. Returns the checks created, changed or
    deleted."""
    touched: list[QualityCheck] = []
    checks = {c.name: c for c in QualityCheck.objects.filter(port=port)}
    wanted = set()
    for _column, entries in plan_rules(port, sections, strict=strict):
        for _rule, name, mapped in entries:
            if isinstance(mapped, NotRun):
                continue
            wanted.add(name)
            kind, columns, params, cron = mapped
            old = checks.get(name)
            if old is not None and old.kind == kind:
                if _signature(old) != mapped:
                    touched.append(
                        services.check_update(
                            check=old, columns=columns, params=params, cron=cron, by=by
                        )
                    )
                continue
            if old is not None:  # the rule is now of another kind: the old check gives way
                services.check_delete(check=old, by=by)
            checks[name] = services.check_create(
                port=port, name=name, kind=kind, columns=columns, params=params, cron=cron, by=by
            )
            touched.append(checks[name])
    before = {name for _c, es in plan_rules(port, previous) for _r, name, _m in es if name}
    for name in sorted(before - wanted):
        gone = checks.pop(name, None)
        if gone is not None:
            services.check_delete(check=gone, by=by)
            touched.append(gone)
    return touched


def _rewritten(c: QualityCheck, rule: dict) -> dict:
    """A check edited since its rule came: its rule anew, with what else the rule said."""
    meta = {k: rule[k] for k in RULE_META if k in rule}
    if _cron(rule):  # the check's own schedule says it now
        meta.pop("schedule", None)
        meta.pop("scheduler", None)
    fresh = _with_schedule(c, check_rule(c)[1])
    custom = [
        p
        for p in meta.pop("customProperties", [])
        if not (isinstance(p, dict) and p.get("property") == PORTAL_PROPERTY)
    ] + fresh.pop("customProperties", [])
    out = fresh | meta
    if custom:
        out["customProperties"] = custom
    return out


def export_rules(port, sections) -> dict:
    """{column or None: rules} for the port: the contract's rules in their order, each as it
    came while its check says the same, written anew from the check when it was edited since,
    left out when its check was deleted; rules the portal does not run as they came; then
    the port's other checks (defined on the Quality tab)."""
    # Read once here: plan_rules and checks_to_odcs read the same checks again.
    prefetch_related_objects([port], "quality_checks")
    checks = {c.name: c for c in port.quality_checks.all()}
    claimed: set[str] = set()
    out: dict[str | None, list] = {}
    for column, entries in plan_rules(port, sections):
        rules = out.setdefault(column, [])
        for rule, name, mapped in entries:
            if isinstance(mapped, NotRun):
                rules.append(rule)
                continue
            c = checks.get(name)
            if c is None:
                continue  # deleted since: the contract no longer promises it
            claimed.add(name)
            if _signature(c) == mapped:
                rules.append(rule)
            else:
                rules.append(_rewritten(c, rule))
    rest = checks_to_odcs(port, exclude=claimed)
    out.setdefault(None, []).extend(rest["quality"])
    for column, rules in rest["properties"].items():
        out.setdefault(column, []).extend(rules)
    return {k: v for k, v in out.items() if v}


# -- freshness slaProperties <-> freshness checks ---------------------------------------------


def is_freshness_sla(sla) -> bool:
    return (
        isinstance(sla, dict)
        and sla.get("property") in ("freshness", "latency")
        and isinstance(sla.get("element"), str)
        and "." in sla["element"]
        and _is_number(sla.get("value"))
    )


def _sla_port(ports, obj: str):
    return next((p for p in ports if p.slug == obj), None) or next(
        (p for p in ports if p.location and p.location.split(".")[-1] == obj.split(".")[-1]),
        None,
    )


def plan_slas(ports, entries) -> list[tuple[dict, Any]]:
    """[(entry, (port, column, hours) or None)]: a freshness entry naming object.column of a
    port with a data source is that column's freshness check (one per column: the first entry
    has it); every other entry is the contract's own."""
    from products.contracts.services import sla_hours

    seen = set()
    out = []
    for sla in entries or []:
        target = None
        if is_freshness_sla(sla):
            obj, column = sla["element"].rsplit(".", 1)
            port = _sla_port(ports, obj)
            hours = sla_hours(sla["value"], sla.get("unit", "h"))
            if port is not None and port.data_source_id is not None and hours is not None:
                if (port.pk, column) not in seen and hours >= 0:
                    seen.add((port.pk, column))
                    target = (port, column, _hours(float(hours)))
        out.append((sla, target))
    return out


def _freshness_checks(port) -> dict[str, QualityCheck]:
    out: dict[str, QualityCheck] = {}
    for c in sorted(port.quality_checks.all(), key=lambda c: c.name):
        if c.kind == "freshness" and c.columns:
            out.setdefault(c.columns[0], c)
    return out


def apply_slas(product, entries, previous=(), *, by=None) -> list:
    ports = list(product.ports.all())
    touched = []
    wanted = set()
    for _sla, target in plan_slas(ports, entries):
        if target is None:
            continue
        port, column, hours = target
        wanted.add((port.pk, column))
        old = _freshness_checks(port).get(column)
        if old is not None:
            if old.params.get("hours") != hours:
                touched.append(services.check_update(check=old, params={"hours": hours}, by=by))
            continue
        name = f"Freshness of {column}"
        if QualityCheck.objects.filter(port=port, name=name).exists():
            continue  # the name is another kind of check's
        touched.append(
            services.check_create(
                port=port,
                name=name,
                kind="freshness",
                columns=[column],
                params={"hours": hours},
                by=by,
            )
        )
    for _sla, target in plan_slas(ports, previous):
        if target is not None and (target[0].pk, target[1]) not in wanted:
            gone = _freshness_checks(target[0]).get(target[1])
            if gone is not None:
                services.check_delete(check=gone, by=by)
                touched.append(gone)
    return touched


def export_slas(product, entries) -> list:
    """The document's slaProperties with its freshness entries following their checks (as
    they came while the check says the same), then the freshness checks no entry names."""
    ports = list(product.ports.all())
    prefetch_related_objects(ports, "quality_checks")  # one query for every port's checks
    checks = {p.pk: _freshness_checks(p) for p in ports}
    claimed = set()
    out: list = []
    last_ours = -1
    for sla, target in plan_slas(ports, entries):
        if target is None:
            out.append(sla)
            if isinstance(sla, dict) and "element" not in sla:
                if sla.get("property") in ("freshness", "latency", "availability"):
                    last_ours = len(out) - 1  # the product's own SLOs
            continue
        port, column, hours = target
        c = checks[port.pk].get(column)
        if c is None:
            continue  # deleted since
        claimed.add(c.pk)
        if c.params.get("hours") == hours:
            out.append(sla)
        else:
            out.append(sla | {"value": _hours(c.params["hours"]), "unit": "h"})
        last_ours = len(out) - 1
    rest = [
        freshness_sla(port, c)
        for port in ports
        for c in sorted(port.quality_checks.all(), key=lambda c: c.name)
        if c.kind == "freshness" and c.enabled and c.columns and c.pk not in claimed
    ]
    return out[: last_ours + 1] + rest + out[last_ours + 1 :]


def odcs_to_checks(
    port, *, quality=(), properties=None, sla_properties=(), by=None
) -> list[QualityCheck]:
    """Create or update the port's checks from ODCS rules: `quality` (object-level list),
    `properties` ({column: [rules]} or ODCS property dicts with a `quality` list) and
    `slaProperties`. Strict: a rule whose check is invalid (e.g. SQL the portal refuses) is an
    error here; the contract import keeps such rules as documentation instead."""
    sections: list[tuple[str | None, list]] = [(None, list(quality or []))]
    if isinstance(properties, dict):
        sections += [(col, rules) for col, rules in properties.items()]
    else:
        sections += [(prop["name"], prop.get("quality") or []) for prop in properties or []]
    touched = apply_rules(port, sections, by=by, strict=True)
    if sla_properties:
        touched += apply_slas(port.product, sla_properties, by=by)
    return touched


# -- what products.contracts asks (through governance/extension.py) ----------------------------


def contract_importer(product, port, sections, previous) -> bool:
    """Create, update and delete checks from a port's quality sections (the contract keeps the
    rules as they came). Rules for a port without a data source cannot run: nothing to do."""
    product._contract_rules_not_run = getattr(product, "_contract_rules_not_run", []) + [
        {"port": port.slug, "column": column, "rule": _label(rule), "reason": str(mapped)}
        for column, entries in plan_rules(port, sections)
        for rule, _name, mapped in entries
        if isinstance(mapped, NotRun)
    ]
    if port.data_source_id is None:
        return False
    if apply_rules(port, sections, previous):
        product._contract_hooks_changed = True  # the import must keep them, not roll back
    return True


def _label(rule) -> str:
    if not isinstance(rule, dict):
        return "rule"
    return str(rule.get("name") or rule.get("metric") or rule.get("type") or "rule")


def sla_importer(product, entries, previous) -> None:
    if apply_slas(product, entries, previous):
        product._contract_hooks_changed = True


def documented_rules(product, extras: dict) -> list[dict]:
    """The contract's quality rules the portal keeps but does not run, with the reason: shown
    on the Quality tab as documentation."""
    from products.contracts.services import quality_sections

    out = []
    for port in product.ports.all():
        sections = quality_sections(extras, port.slug)
        for column, entries in plan_rules(port, sections):
            for rule, _name, mapped in entries:
                if isinstance(mapped, NotRun) and isinstance(rule, dict):
                    out.append(
                        {
                            "port": port,
                            "column": column,
                            "rule": rule,
                            "label": _label(rule),
                            "about": ", ".join(
                                str(rule[k])
                                for k in ("type", "engine", "dimension", "severity")
                                if rule.get(k)
                            ),
                            "description": str(rule.get("description") or ""),
                            "reason": str(mapped)
                            if port.data_source_id
                            else "the port has no data source",
                        }
                    )
    return out
