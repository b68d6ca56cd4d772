"""The ODCS v3 quality mapping: exported checks carry their rules; importing creates them."""

import pytest
import yaml

from governance.models import QualityCheck
from governance.quality import services
from governance.quality.odcs import checks_to_odcs, odcs_to_checks


def _define(port):
    for name, kind, cols, params in [
        ("rows", "row_count", [], {"min": 1, "max": 100}),
        ("names", "missing", ["name"], {"max": 20, "unit": "percent"}),
        ("ids unique", "duplicates", ["id"], {"max": 0}),
        ("pairs unique", "duplicates", ["id", "name"], {"max": 1}),
        ("status", "accepted_values", ["status"], {"values": ["ok"], "max": 0}),
        ("name form", "pattern", ["name"], {"pattern": "^[a-z]$"}),
        ("amounts", "range", ["amount"], {"min": 0, "max": 100, "max_failing": 0}),
        ("neg", "custom_sql", [], {"sql": "SELECT COUNT(*) FROM ${object} WHERE amount < 0"}),
        ("fresh", "freshness", ["created_at"], {"hours": 24}),
    ]:
        services.check_create(port=port, name=name, kind=kind, columns=cols, params=params)


def test_export_follows_odcs_v3_quality_rules(checked_port):
    _define(checked_port.port)
    out = checks_to_odcs(checked_port.port)
    by_name = {r["name"]: r for r in out["quality"]}
    assert by_name["rows"] == {
        "name": "rows",
        "type": "library",
        "metric": "rowCount",
        "mustBeBetween": [1, 100],
    }
    assert by_name["pairs unique"]["arguments"] == {"properties": ["id", "name"]}
    assert by_name["neg"] == {
        "name": "neg",
        "type": "sql",
        "mustBe": 0,
        "query": "SELECT COUNT(*) FROM ${object} WHERE amount < 0",
    }
    assert by_name["amounts"]["type"] == "sql" and '"amount" < 0' in by_name["amounts"]["query"]
    props = out["properties"]
    names = {r["name"]: r for r in props["name"]}
    assert names["names"] == {
        "name": "names",
        "type": "library",
        "metric": "nullValues",
        "mustBeLessOrEqualTo": 20,
        "unit": "percent",
    }
    assert {"metric": "invalidValues", "arguments": {"validValues": ["ok"]}}.items() <= props[
        "status"
    ][0].items()
    assert props["id"][0]["metric"] == "duplicateValues" and props["id"][0]["mustBe"] == 0
    assert out["slaProperties"] == [
        {
            "property": "freshness",
            "value": 24,
            "unit": "h",
            "element": f"{checked_port.port.slug}.created_at",
        }
    ]


def test_import_round_trips_and_is_idempotent(checked_port):
    _define(checked_port.port)
    exported = checks_to_odcs(checked_port.port)
    before = {(c.name, c.kind, tuple(c.columns)) for c in QualityCheck.objects.all()}
    QualityCheck.objects.all().delete()
    created = odcs_to_checks(
        checked_port.port,
        quality=exported["quality"],
        properties=exported["properties"],
        sla_properties=exported["slaProperties"],
    )
    assert len(created) == 9
    after = {(c.name, c.kind, tuple(c.columns)) for c in QualityCheck.objects.all()}
    # Everything comes back as it was; the SLA entry (which has no name) as a freshness check
    # named after its column.
    assert before - after == {("fresh", "freshness", ("created_at",))}
    assert ("Freshness of created_at", "freshness", ("created_at",)) in after
    assert QualityCheck.objects.get(name="amounts").params == {
        "min": 0,
        "max": 100,
        "unit": "count",
        "max_failing": 0,
    }
    names = QualityCheck.objects.get(name="names")
    assert names.params == {"max": 20, "unit": "percent"}
    assert (
        odcs_to_checks(
            checked_port.port, quality=exported["quality"], properties=exported["properties"]
        )
        == []
    )


def test_import_reads_property_lists_and_operators(checked_port):
    created = odcs_to_checks(
        checked_port.port,
        properties=[
            {
                "name": "status",
                "quality": [
                    {
                        "type": "library",
                        "metric": "invalidValues",
                        "arguments": {"validValues": ["ok"]},
                        "mustBeLessThan": 3,
                    },
                    {
                        "type": "library",
                        "metric": "missingValues",
                        "arguments": {"missingValues": [None, "", "N/A"]},
                        "mustBeLessThan": 5,
                        "unit": "percent",
                    },
                ],
            }
        ],
        quality=[
            {"type": "library", "metric": "rowCount", "mustBeGreaterThan": 0},
            {"type": "text", "description": "Reviewed by a human"},
        ],
    )
    kinds = {c.kind: c for c in created}
    # Strict operators stay strict (they used to become max - 1 and "at least 0").
    assert kinds["accepted_values"].params == {
        "values": ["ok"],
        "max": 3,
        "unit": "count",
        "max_exclusive": True,
    }
    assert kinds["missing"].params == {
        "max": 5,
        "unit": "percent",
        "max_exclusive": True,
        "missing_values": ["", "N/A"],
    }
    assert kinds["row_count"].params == {"min": 0, "max": None, "min_exclusive": True}
    assert len(created) == 3


KINDS = [
    ("row_count", [], {"min": 1, "max": 100}),
    ("missing", ["name"], {"max": 20, "unit": "percent"}),
    ("missing", ["status"], {"max": 1, "unit": "count", "missing_values": ["", "N/A"]}),
    ("duplicates", ["id"], {"max": 0}),
    ("duplicates", ["id", "name"], {"max": 1}),
    ("accepted_values", ["status"], {"values": ["ok", "late"], "max": 0}),
    ("pattern", ["name"], {"pattern": "^[a-z]$", "max": 2}),
    ("range", ["amount"], {"min": 0, "max": 100.5, "max_failing": 1}),
    ("custom_sql", [], {"sql": "SELECT COUNT(*) FROM ${object} WHERE amount < 0"}),
    ("freshness", ["created_at"], {"hours": 6}),
    ("freshness", ["created_at"], {"hours": 1.5}),
    ("schema", [], {"allow_extra": True}),
    ("schema", [], {}),
]


@pytest.mark.parametrize(("kind", "columns", "params"), KINDS, ids=lambda v: str(v)[:30])
def test_each_check_type_round_trips_through_a_valid_contract(checked_port, kind, columns, params):
    """export -> import -> export through the whole ODCS document: the same check comes back,
    the second export equals the first, and every export passes the official ODCS schema."""
    from products.contracts import services as contracts

    port, product = checked_port.port, checked_port.product
    # A draft: the fixture re-pointed the port without a contract version, which a published
    # product would refuse as a breaking change without a major version.
    product.status = "draft"
    product.save(update_fields=["status"])
    QualityCheck.objects.filter(port=port).delete()
    check = services.check_create(
        port=port, name=f"the {kind}", kind=kind, columns=columns, params=params
    )
    first = contracts.export_document(product)
    contracts.validate(first)
    text = contracts.dump(first)
    assert kind in ("freshness",) or "the " + kind in text  # rules carry the check's name
    if kind == "freshness":
        assert {
            "property": "freshness",
            "value": params["hours"],
            "unit": "h",
            "element": f"{port.slug}.created_at",
        } in first["slaProperties"]

    QualityCheck.objects.filter(port=port).delete()
    contracts.contract_import(text=text, user=checked_port.mesh.owner, product=product)
    back = QualityCheck.objects.get(port=port)
    assert (back.kind, back.columns, back.params) == (check.kind, check.columns, check.params)

    second = contracts.export_document(product)
    contracts.validate(second)
    assert yaml.safe_load(contracts.dump(second)) == yaml.safe_load(text)
    # Importing the same document again creates nothing (no second freshness check either).
    contracts.contract_import(text=text, user=checked_port.mesh.owner, product=product)
    assert QualityCheck.objects.filter(port=port).count() == 1


def test_reimporting_a_changed_rule_updates_its_check_and_says_so(checked_port):
    """Before: a changed rule answered changed: false and the old check stayed."""
    from products.contracts import services as contracts

    port, owner = checked_port.port, checked_port.mesh.owner
    product = port.product
    product.status = "draft"  # a draft: no version bump needed for the change
    product.save(update_fields=["status"])
    QualityCheck.objects.filter(port=port).delete()
    check = services.check_create(port=port, name="Rows", kind="row_count", params={"min": 1})
    doc = contracts.export_document(product)
    (rule,) = doc["schema"][0]["quality"]
    rule["mustBeGreaterOrEqualTo"] = 5  # the contract now asks for at least 5 rows
    result = contracts.contract_import(text=contracts.dump(doc), user=owner, product=product)
    check.refresh_from_db()
    assert result.changed and check.params["min"] == 5
    again = contracts.contract_import(text=contracts.dump(doc), user=owner, product=product)
    assert not again.changed and QualityCheck.objects.filter(port=port).count() == 1


def test_schema_check_is_a_custom_rule_other_tools_can_skip(checked_port):
    services.check_create(
        port=checked_port.port, name="drift", kind="schema", params={"allow_extra": True}
    )
    (rule,) = checks_to_odcs(checked_port.port)["quality"]
    assert rule["type"] == "custom" and rule["engine"] == "mesh-portal"
    assert rule["dimension"] == "conformity"
    assert rule["customProperties"] == [
        {
            "property": "meshPortalCheck",
            "value": {"kind": "schema", "columns": [], "params": {"allow_extra": True}},
        }
    ]
    # Another vendor's custom rule is not the portal's to run: it stays in the contract.
    assert (
        odcs_to_checks(
            checked_port.port,
            quality=[{"type": "custom", "engine": "soda", "implementation": "row_count > 0"}],
        )
        == []
    )
