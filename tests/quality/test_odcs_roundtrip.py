"""Issue 16, items 2 and 3: a contract's quality rules and SLAs survive import -> export on a
port with a data source, exactly, and a re-import with added, changed or removed rules or SLAs
updates the checks, says `changed` and records a contract version.

Each example here was lost before: text and custom rules dropped, rule metadata dropped, strict
limits loosened, SLA values truncated, SLA units refused, removed rules kept as checks."""

import copy
from datetime import UTC, datetime

import pytest

from governance.models import QualityCheck
from governance.quality import engine
from products.contracts import services as contracts


@pytest.fixture
def port(checked_port):
    product = checked_port.product
    # A draft: the fixture re-pointed the port without a contract version, which a published
    # product would refuse as a breaking change without a major version.
    product.status = "draft"
    product.save(update_fields=["status"])
    QualityCheck.objects.filter(port=checked_port.port).delete()
    return checked_port


def _doc(cp, *, quality=None, fields=None, sla=None) -> dict:
    doc = contracts.export_document(cp.product)
    obj = doc["schema"][0]
    obj.pop("quality", None)
    for prop in obj["properties"]:
        prop.pop("quality", None)
        if fields and prop["name"] in fields:
            prop["quality"] = fields[prop["name"]]
    if quality:
        obj["quality"] = quality
    doc.pop("slaProperties", None)
    if sla:
        doc["slaProperties"] = sla
    return doc


def _import(cp, doc):
    return contracts.contract_import(
        text=contracts.dump(doc), user=cp.mesh.owner, product=cp.product
    )


def _exported(cp) -> dict:
    cp.product.refresh_from_db()
    return contracts.export_document(cp.product)


def _sections(doc) -> tuple:
    obj = doc["schema"][0]
    return obj.get("quality"), {
        p["name"]: p["quality"] for p in obj["properties"] if "quality" in p
    }


def _checks(cp) -> dict:
    return {c.name: c for c in QualityCheck.objects.filter(port=cp.port)}


# -- losses, one by one ----------------------------------------------------------------------


def test_text_and_custom_rules_are_kept_as_documentation(port):
    quality = [
        {"type": "text", "description": "Reviewed every quarter by the finance team."},
        {
            "name": "soda rows",
            "type": "custom",
            "engine": "soda",
            "implementation": "row_count > 0",
        },
        {"name": "rows", "type": "library", "metric": "rowCount", "mustBeGreaterThan": 0},
    ]
    result = _import(port, _doc(port, quality=quality))
    assert result.changed
    assert set(_checks(port)) == {"rows"}  # only the rule the portal runs is a check
    assert _sections(_exported(port))[0] == quality
    contracts.validate(_exported(port))


def test_rule_metadata_is_kept_and_the_cron_schedule_is_the_check_s(port):
    rule = {
        "id": "q_null_names",
        "name": "names present",
        "description": "Every customer has a name.",
        "type": "library",
        "metric": "nullValues",
        "mustBeLessOrEqualTo": 2,
        "unit": "rows",
        "dimension": "completeness",
        "severity": "error",
        "businessImpact": "operational",
        "schedule": "0 6 * * *",
        "scheduler": "cron",
        "tags": ["crm"],
        "customProperties": [{"property": "owner", "value": "crm-team"}],
    }
    _import(port, _doc(port, fields={"name": [rule]}))
    check = _checks(port)["names present"]
    assert (check.kind, check.columns, check.params["max"]) == ("missing", ["name"], 2)
    assert check.cron == "0 6 * * *"
    assert _sections(_exported(port))[1] == {"name": [rule]}


def test_strict_limits_stay_strict_in_the_contract_and_in_the_check(port):
    rows = {"name": "rows", "type": "library", "metric": "rowCount", "mustBeGreaterThan": 100}
    nulls = {
        "name": "nulls",
        "type": "library",
        "metric": "nullValues",
        "mustBeLessThan": 1,
        "unit": "percent",
    }
    _import(port, _doc(port, quality=[rows], fields={"name": [nulls]}))
    checks = _checks(port)
    assert checks["rows"].params == {"min": 100, "max": None, "min_exclusive": True}
    assert checks["nulls"].params == {"max": 1, "unit": "percent", "max_exclusive": True}
    quality, fields = _sections(_exported(port))
    assert quality == [rows] and fields == {"name": [nulls]}

    # The engine honours strictness: exactly 100 rows is not more than 100; exactly 1 % is not
    # less than 1 %.
    now = datetime.now(UTC)
    spec = engine.CheckSpec(id=1, kind="row_count", params=checks["rows"].params)
    assert engine.evaluate(spec, (100,), {"total": 0}, now).status == "failed"
    assert engine.evaluate(spec, (101,), {"total": 0}, now).status == "passed"
    spec = engine.CheckSpec(id=2, kind="missing", columns=["name"], params=checks["nulls"].params)
    failed = engine.evaluate(spec, (1, 100), {"bad": 0, "total": 1}, now)
    assert failed.status == "failed" and failed.threshold == "< 1%"
    assert engine.evaluate(spec, (0, 100), {"bad": 0, "total": 1}, now).status == "passed"
    # Inclusive stays inclusive.
    inclusive = engine.CheckSpec(id=3, kind="missing", columns=["name"], params={"max": 1})
    assert engine.evaluate(inclusive, (1, 100), {"bad": 0, "total": 1}, now).status == "passed"


def test_strict_limits_run_on_the_warehouse(port):
    """The known table has 6 rows: more than 6 fails, at least 6 passes."""
    from governance.quality import services

    quality = [
        {"name": "more than 6", "metric": "rowCount", "mustBeGreaterThan": 6},
        {"name": "at least 6", "metric": "rowCount", "mustBeGreaterOrEqualTo": 6},
        {"name": "under 1", "metric": "duplicateValues", "mustBeLessThan": 1,
         "arguments": {"properties": ["id"]}},
    ]  # fmt: skip
    _import(port, _doc(port, quality=quality))
    runs = services.run_now(checks=list(QualityCheck.objects.filter(port=port.port)))
    services.execute_runs(run_ids=[r.pk for r in runs])
    status = {c.name: c.last_status for c in QualityCheck.objects.filter(port=port.port)}
    assert status == {"more than 6": "failed", "at least 6": "passed", "under 1": "failed"}


def test_sla_values_stay_exact_with_their_units(port):
    sla = [
        {"property": "freshness", "value": 1.5, "unit": "h"},
        {"property": "availability", "value": 99.9999, "unit": "percent"},
        {
            "property": "latency",
            "value": 30,
            "unit": "min",
            "element": f"{port.port.slug}.created_at",
        },
        {"property": "retention", "value": 7, "unit": "y"},
    ]
    result = _import(port, _doc(port, sla=sla))
    assert result.changed
    port.product.refresh_from_db()
    # The portal judges in whole hours and never promises more than the contract.
    assert port.product.freshness_slo_hours == 2
    assert str(port.product.availability_slo) == "99.999"
    (fresh,) = QualityCheck.objects.filter(port=port.port, kind="freshness")
    assert fresh.params == {"hours": 0.5}
    exported = _exported(port)
    assert exported["slaProperties"] == sla
    contracts.validate(exported)


def test_half_an_hour_exports_what_imports_again(port):
    sla = [{"property": "freshness", "value": 0.5, "unit": "h"}]
    _import(port, _doc(port, sla=sla))
    text = contracts.dump(_exported(port))
    assert _exported(port)["slaProperties"] == sla
    again = contracts.contract_import(text=text, user=port.mesh.owner, product=port.product)
    assert not again.changed


@pytest.mark.parametrize(
    ("value", "unit", "hours"),
    [(90, "minutes", 2), (45, "min", 1), (1, "y", 8760), (2, "years", 17520), (3, "d", 72)],
)
def test_latency_in_minutes_or_years_is_accepted(port, value, unit, hours):
    sla = [{"property": "latency", "value": value, "unit": unit}]
    result = _import(port, _doc(port, sla=sla))
    assert result.applied
    port.product.refresh_from_db()
    assert port.product.freshness_slo_hours == hours
    assert _exported(port)["slaProperties"] == sla


def test_sql_the_portal_cannot_run_is_documentation(port):
    quality = [
        # another tool's placeholder: not the portal's dialect
        {"name": "other tool", "type": "sql", "query": "SELECT COUNT(*) FROM ${table}",
         "mustBeLessOrEqualTo": 0},
        # an operator the portal cannot evaluate on a count of failing rows
        {"name": "some rows", "type": "sql",
         "query": "SELECT COUNT(*) FROM ${object} WHERE amount > 0", "mustBeGreaterThan": 0},
    ]  # fmt: skip
    _import(port, _doc(port, quality=quality))
    assert not _checks(port)
    assert _sections(_exported(port))[0] == quality
    from governance.quality.odcs import documented_rules

    documented = documented_rules(port.product, contracts._extras_of(port.product))
    assert [d["rule"]["name"] for d in documented] == ["other tool", "some rows"]
    assert all(d["reason"] for d in documented)


def test_a_check_edited_on_the_quality_tab_writes_its_rule_anew_with_the_metadata(port):
    from governance.quality import services

    rule = {
        "name": "names",
        "description": "Few missing names.",
        "severity": "warning",
        "metric": "nullValues",
        "mustBeLessOrEqualTo": 2,
    }
    _import(port, _doc(port, fields={"name": [rule]}))
    check = _checks(port)["names"]
    services.check_update(check=check, params={"max": 1, "max_exclusive": True})
    (written,) = _sections(_exported(port))[1]["name"]
    assert written == {
        "name": "names",
        "type": "library",
        "metric": "nullValues",
        "mustBeLessThan": 1,
        "description": "Few missing names.",
        "severity": "warning",
    }


# -- re-imports ----------------------------------------------------------------------------


def test_reimport_adds_changes_and_removes_checks_and_records_it(port):
    a = {"name": "a", "metric": "rowCount", "mustBeGreaterOrEqualTo": 1}
    b = {"name": "b", "metric": "nullValues", "mustBe": 0, "schedule": "0 * * * *"}
    doc = _doc(port, quality=[a], fields={"name": [b]})
    first = _import(port, doc)
    assert first.changed and set(_checks(port)) == {"a", "b"}

    # Nothing new: nothing changes.
    assert not _import(port, copy.deepcopy(doc)).changed

    # Add one.
    c = {"name": "c", "metric": "duplicateValues", "mustBe": 0}
    doc["schema"][0]["properties"][0]["quality"] = [c]
    added = _import(port, doc)
    assert added.changed and set(_checks(port)) == {"a", "b", "c"}
    assert "quality_changed" in {ch.kind for ch in added.changes}

    # Change one (threshold and schedule).
    b2 = b | {"mustBeLessThan": 5, "schedule": "30 2 * * *"}
    del b2["mustBe"]
    name_field = next(p for p in doc["schema"][0]["properties"] if p["name"] == "name")
    name_field["quality"] = [b2]
    changed = _import(port, doc)
    check = _checks(port)["b"]
    assert changed.changed and changed.version is not None
    assert check.params == {"max": 5, "unit": "count", "max_exclusive": True}
    assert check.cron == "30 2 * * *"

    # Remove one: its check goes.
    del doc["schema"][0]["quality"]
    removed = _import(port, doc)
    assert removed.changed and set(_checks(port)) == {"b", "c"}
    assert any(ch.path == f"ports.{port.port.slug}.quality" for ch in removed.changes)
    assert _sections(_exported(port)) == (None, {"id": [c], "name": [b2]})

    # A rule that becomes text: its check goes, the text stays.
    name_field["quality"] = [{"name": "b", "type": "text", "description": "b, by hand"}]
    _import(port, doc)
    assert set(_checks(port)) == {"c"}


def test_reimport_keeps_checks_defined_on_the_quality_tab(port):
    from governance.quality import services

    services.check_create(port=port.port, name="mine", kind="row_count", params={"min": 1})
    doc = _doc(port, quality=[{"name": "theirs", "metric": "rowCount", "mustBe": 6}])
    _import(port, doc)
    doc["schema"][0]["quality"] = []
    del doc["schema"][0]["quality"]
    _import(port, doc)
    assert set(_checks(port)) == {"mine"}


def test_reimport_with_changed_added_and_removed_slas(port):
    slug = port.port.slug
    fresh = {"property": "freshness", "value": 2, "unit": "h", "element": f"{slug}.created_at"}
    sla = [{"property": "freshness", "value": 24, "unit": "h"}, fresh]
    doc = _doc(port, sla=sla)
    assert _import(port, doc).changed
    (check,) = QualityCheck.objects.filter(port=port.port, kind="freshness")
    assert check.params == {"hours": 2}

    # Change the column's freshness (in days now) and the product's.
    doc["slaProperties"] = [
        {"property": "freshness", "value": 36, "unit": "h"},
        fresh | {"value": 1, "unit": "d"},
    ]
    result = _import(port, doc)
    assert result.changed and result.version is not None
    check.refresh_from_db()
    port.product.refresh_from_db()
    assert check.params == {"hours": 24} and port.product.freshness_slo_hours == 36
    assert _exported(port)["slaProperties"] == doc["slaProperties"]

    # An SLA entry of another kind added: kept, recorded.
    doc["slaProperties"].append({"property": "retention", "value": 1, "unit": "y"})
    added = _import(port, doc)
    assert added.changed and "sla_changed" in {c.kind for c in added.changes}

    # Remove the column's freshness: its check goes.
    doc["slaProperties"] = [doc["slaProperties"][0], doc["slaProperties"][2]]
    removed = _import(port, doc)
    assert removed.changed
    assert not QualityCheck.objects.filter(port=port.port, kind="freshness").exists()
    assert _exported(port)["slaProperties"] == doc["slaProperties"]


def test_the_quality_tab_lists_the_rules_the_portal_does_not_run(port, client):
    quality = [
        {"name": "reviewed", "type": "text", "description": "Reviewed every quarter."},
        {"name": "soda rows", "type": "custom", "engine": "soda", "implementation": "x > 0"},
    ]
    _import(port, _doc(port, quality=quality))
    client.force_login(port.mesh.owner)
    page = client.get(port.product.get_absolute_url() + "?tab=quality").content.decode()
    assert "not run by the portal" in page
    assert "Reviewed every quarter." in page and "soda" in page


def test_the_import_answer_names_the_rules_it_will_not_run(port, client):
    """A pipeline that sends a rule the portal keeps as documentation learns it from the
    answer (API, dry run and apply alike), with the reason; the runnable rule is not listed."""
    quality = [
        {"name": "writes", "type": "sql", "query": "DELETE FROM ${object}", "mustBe": 0},
        {"type": "text", "description": "Reviewed every quarter."},
        {"name": "rows", "type": "library", "metric": "rowCount", "mustBeGreaterThan": 0},
    ]
    client.force_login(port.mesh.owner)
    url = f"/api/v1/products/{port.product.domain.slug}/{port.product.slug}/contract"
    body = contracts.dump(_doc(port, quality=quality))
    for query in ("?dry_run=true", ""):
        r = client.put(url + query, body, content_type="application/yaml")
        assert r.status_code == 200, r.content
        not_run = r.json()["not_run"]
        assert [(n["port"], n["rule"]) for n in not_run] == [
            (port.port.slug, "writes"),
            (port.port.slug, "text"),
        ]
        assert all(n["reason"] for n in not_run)
    assert list(_checks(port)) == ["rows"]
