"""The ODCS v3 quality mapping: exported checks carry their rules; importing creates them."""

from governance import quality_services as services
from governance.models import QualityCheck
from governance.quality_odcs import checks_to_odcs, odcs_to_checks


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
        {"property": "freshness", "value": 24, "unit": "h", "element": "t_known.created_at"}
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
    # Everything comes back; a range check returns as the equivalent custom SQL and the SLA
    # entry as a freshness check named after its column.
    assert before - after == {
        ("amounts", "range", ("amount",)),
        ("fresh", "freshness", ("created_at",)),
    }
    assert ("amounts", "custom_sql", ()) in after and (
        "Freshness of created_at",
        "freshness",
        ("created_at",),
    ) in after
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
    assert kinds["accepted_values"].params["max"] == 2
    assert kinds["missing"].params == {"max": 5, "unit": "percent", "missing_values": ["", "N/A"]}
    assert kinds["row_count"].params["min"] == 0
    assert len(created) == 3
