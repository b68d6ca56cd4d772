"""Property (issue 16, item 2): on a port with a data source, the quality rules and
slaProperties of any generated contract come back from import -> export exactly as they went
in: every operator (strict and inclusive), unit, rule type (library, sql, text, custom) and
metadata field, numbers unchanged, SLA units kept. docs/contracts.md lists the normalisations
(none applies to these sections of a document the portal accepts)."""

import string

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governance.models import DataSource, QualityCheck
from products.contracts import services as contracts
from products.models import SchemaField
from tests.quality.conftest import _sqlite_warehouse

COLUMNS = ["id", "name", "status", "amount", "created_at"]
BOUNDED = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

texts = (
    st.text(string.ascii_letters + string.digits + " .,-'é", min_size=1, max_size=20)
    .map(str.strip)
    .filter(bool)
)
numbers = st.one_of(
    st.integers(0, 10_000),
    st.decimals(0, 1000, places=4, allow_nan=False).map(float),
)
percents = st.decimals(0, 100, places=4, allow_nan=False).map(float)


@st.composite
def operators(draw, values=numbers) -> dict:
    op = draw(
        st.sampled_from(
            [
                "mustBe",
                "mustNotBe",
                "mustBeGreaterThan",
                "mustBeGreaterOrEqualTo",
                "mustBeLessThan",
                "mustBeLessOrEqualTo",
                "mustBeBetween",
                "mustNotBeBetween",
            ]
        )
    )
    if op.endswith("Between"):
        a, b = sorted(draw(st.lists(values, min_size=2, max_size=2, unique=True)))
        return {op: [a, b]}
    return {op: draw(values)}


@st.composite
def metadata(draw) -> dict:
    out = {}
    if draw(st.booleans()):
        out["id"] = draw(st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True))
    for key in ("description", "severity", "businessImpact", "method"):
        if draw(st.booleans()):
            out[key] = draw(texts)
    if draw(st.booleans()):
        out["dimension"] = draw(
            st.sampled_from(["accuracy", "completeness", "conformity", "timeliness"])
        )
    if draw(st.booleans()):
        out["schedule"] = draw(st.sampled_from(["0 6 * * *", "*/15 * * * *", "daily at six"]))
        if draw(st.booleans()):
            out["scheduler"] = draw(st.sampled_from(["cron", "airflow"]))
    if draw(st.booleans()):
        out["tags"] = draw(st.lists(texts, min_size=1, max_size=2))
    if draw(st.booleans()):
        out["customProperties"] = [
            {"property": draw(st.from_regex(r"[a-z][A-Za-z]{0,8}", fullmatch=True)), "value": v}
            for v in draw(
                st.lists(st.one_of(texts, numbers, st.booleans()), min_size=1, max_size=2)
            )
        ]
    return out


@st.composite
def rules(draw, column: str | None) -> dict:
    rule: dict = {}
    if draw(st.booleans()):
        rule["name"] = draw(texts)
    kind = draw(st.sampled_from(["library", "sql", "text", "custom"]))
    if kind == "text":
        rule |= {"type": "text", "description": draw(texts)}
    elif kind == "custom":
        rule |= {
            "type": "custom",
            "engine": draw(st.sampled_from(["soda", "great-expectations", "dbt"])),
            "implementation": draw(texts),
        }
    elif kind == "sql":
        rule |= {
            "type": "sql",
            "query": draw(
                st.sampled_from(
                    [
                        "SELECT COUNT(*) FROM ${object} WHERE amount < 0",
                        "SELECT COUNT(*) FROM ${table} WHERE amount < 0",
                        "SELECT COUNT(*) FROM ${object} WHERE status IS NULL",
                    ]
                )
            ),
        }
        rule |= draw(operators())
    else:
        metrics = ["rowCount", "duplicateValues"]
        if column:
            metrics += ["nullValues", "missingValues", "invalidValues", "duplicateValues"]
        metric = draw(st.sampled_from(metrics))
        if draw(st.booleans()):
            rule["type"] = "library"
        rule["metric"] = metric
        percent = metric != "rowCount" and draw(st.booleans())
        rule |= draw(operators(percents if percent else numbers))
        if percent:
            rule["unit"] = "percent"
        elif draw(st.booleans()):
            rule["unit"] = "rows"
        if metric == "missingValues":
            rule["arguments"] = {"missingValues": [None, *draw(st.lists(texts, max_size=2))]}
        elif metric == "invalidValues":
            rule["arguments"] = draw(
                st.sampled_from([{"validValues": ["ok", "late"]}, {"pattern": "^[a-z]+$"}])
            )
        elif metric == "duplicateValues" and column is None:
            cols = draw(st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=2, unique=True))
            rule["arguments"] = {"properties": cols}
    return rule | draw(metadata())


units = st.sampled_from(["s", "min", "minutes", "h", "hours", "d", "days", "w", "y", "years"])
sla_numbers = st.one_of(
    st.integers(1, 500), st.decimals("0.01", 500, places=3, allow_nan=False).map(float)
)


@st.composite
def sla_properties(draw, port: str) -> list:
    out = []
    if draw(st.booleans()):
        out.append(
            {
                "property": draw(st.sampled_from(["freshness", "latency"])),
                "value": draw(sla_numbers),
                "unit": draw(units),
            }
            | ({"description": draw(texts)} if draw(st.booleans()) else {})
        )
    if draw(st.booleans()):
        value = draw(st.decimals(0, 100, places=draw(st.integers(0, 6)), allow_nan=False))
        out.append({"property": "availability", "value": float(value), "unit": "percent"})
    for column in draw(st.lists(st.sampled_from(COLUMNS), max_size=2)):
        out.append(
            {
                "property": draw(st.sampled_from(["freshness", "latency"])),
                "value": draw(sla_numbers),
                "unit": draw(units),
                "element": f"{port}.{column}",
            }
            | ({"driver": "operational"} if draw(st.booleans()) else {})
        )
    if draw(st.booleans()):
        out.append({"property": "retention", "value": draw(sla_numbers), "unit": draw(units)})
    draw(st.randoms()).shuffle(out)
    return out


@st.composite
def quality_sections(draw) -> tuple:
    obj = draw(st.lists(rules(None), max_size=4))
    fields = {
        column: draw(st.lists(rules(column), min_size=1, max_size=3))
        for column in draw(st.lists(st.sampled_from(COLUMNS), max_size=3, unique=True))
    }
    return obj, fields


@pytest.fixture
def port_with_source(mesh, tmp_path):
    warehouse = _sqlite_warehouse(tmp_path / "known.sqlite3")
    src = warehouse.source
    ds = DataSource.objects.create(
        slug="known-sqlite", name="Known", kind=src.kind, database=src.database,
        default_schema=src.default_schema,
    )  # fmt: skip
    product = mesh.products[("orders", "draft")]
    port = product.ports.get()
    port.data_source, port.location = ds, warehouse.location
    port.save()
    SchemaField.objects.filter(port=port).delete()
    for n, f in enumerate(warehouse.fields):
        SchemaField.objects.create(
            port=port, name=f["name"], physical_type=f["physical_type"], ordinal=n
        )
    return product, port


@pytest.mark.django_db
@given(data=st.data())
@BOUNDED
def test_quality_rules_and_slas_round_trip_exactly(mesh, port_with_source, data):
    product, port = port_with_source
    obj_rules, field_rules = data.draw(quality_sections())
    sla = data.draw(sla_properties(port.slug))
    with transaction.atomic():
        doc = contracts.export_document(product)
        schema = doc["schema"][0]
        schema.pop("quality", None)
        if obj_rules:
            schema["quality"] = obj_rules
        for prop in schema["properties"]:
            prop.pop("quality", None)
            if prop["name"] in field_rules:
                prop["quality"] = field_rules[prop["name"]]
        doc.pop("slaProperties", None)
        if sla:
            doc["slaProperties"] = sla
        text = contracts.dump(doc)
        contracts.contract_import(text=text, user=mesh.owner, product=product)
        product.refresh_from_db()
        out = contracts.export_document(product)
        contracts.validate(out)
        obj = out["schema"][0]
        assert obj.get("quality", []) == obj_rules
        assert {p["name"]: p["quality"] for p in obj["properties"] if "quality" in p} == (
            field_rules
        )
        assert out.get("slaProperties", []) == sla
        # ... and the export imports as no change.
        again = contracts.contract_import(
            text=contracts.dump(out), user=mesh.owner, product=product
        )
        assert not again.changed, [c.message for c in again.changes]
        transaction.set_rollback(True)
    QualityCheck.objects.filter(port=port).delete()
