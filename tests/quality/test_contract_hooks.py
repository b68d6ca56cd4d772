"""Quality checks travel in the ODCS contract: exported as rules, imported as checks."""

import pytest
import yaml

from governance.models import QualityCheck
from products.contracts import services as contracts
from products.models import DataProduct

pytestmark = pytest.mark.django_db


def test_contract_carries_checks_out_and_back_in(transactional_db, demo):
    # transactional: on PostgreSQL the check definition reads the warehouse over its own
    # connection, which only sees committed tables.
    from django.contrib.auth import get_user_model

    product = DataProduct.objects.get(domain__slug="orders", slug="orders")
    text = contracts.export_yaml(product)
    doc = yaml.safe_load(text)
    rules = [
        r for obj in doc["schema"] for prop in obj["properties"] for r in prop.get("quality", [])
    ]
    rules += [r for obj in doc["schema"] for r in obj.get("quality", [])]
    metrics = {r.get("metric") for r in rules}
    assert {"nullValues", "duplicateValues"} <= metrics
    contracts.validate(doc)  # still a valid ODCS document

    port = product.ports.get()
    # Every check travels: freshness as a slaProperties entry (element object.column, which
    # has no name: it comes back named after its column), the rest as quality rules.
    sla = [s for s in doc["slaProperties"] if s.get("element")]
    assert sla and all(s["property"] == "freshness" and s["unit"] == "h" for s in sla)
    kinds = {}
    for c in QualityCheck.objects.filter(port=port):
        name = f"Freshness of {c.columns[0]}" if c.kind == "freshness" else c.name
        kinds[name] = (c.kind, c.columns, c.params)
    QualityCheck.objects.filter(port=port).delete()
    olivia = get_user_model().objects.get(username="olivia")
    contracts.contract_import(text=text, user=olivia, product=product)
    assert {
        c.name: (c.kind, c.columns, c.params) for c in QualityCheck.objects.filter(port=port)
    } == kinds
    # ... and the contract it exports is the same document.
    assert yaml.safe_load(contracts.export_yaml(product)) == doc
    # The same document again changes nothing.
    before = QualityCheck.objects.count()
    contracts.contract_import(text=text, user=olivia, product=product)
    assert QualityCheck.objects.count() == before


def test_contract_export_reads_each_ports_checks_once(client, mesh):
    """The quality rules and SLAs of every port come from one read of its checks: more ports
    with checks add one query each, not one per place that lists them (rules, schema, SLAs)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from products.models import OutputPort

    product = mesh.products[("orders", "published")]
    client.force_login(mesh.owner)
    url = f"/api/v1/products/{product.domain.slug}/{product.slug}/contract"

    def add_port(i: int) -> None:
        port = OutputPort.objects.create(product=product, slug=f"extra-{i}", name=f"Extra {i}")
        for kind, columns, params in [
            ("row_count", [], {"min": 1}),
            ("missing", ["id"], {"max": 0}),
            ("freshness", ["created_at"], {"hours": 24}),
        ]:
            QualityCheck.objects.create(
                port=port, name=f"{kind} {i}", kind=kind, columns=columns, params=params
            )

    add_port(0)
    client.get(url)  # sessions, caches
    with CaptureQueriesContext(connection) as one:
        assert client.get(url).status_code == 200
    add_port(1)
    add_port(2)
    with CaptureQueriesContext(connection) as three:
        r = client.get(url)
    assert r.status_code == 200 and "freshness" in r.text
    checks = [q for q in three.captured_queries if "governance_qualitycheck" in q["sql"]]
    assert len(three.captured_queries) - len(one.captured_queries) <= 2 * 2, [
        q["sql"][:80] for q in three.captured_queries
    ]
    # One read per port for its rules and schema, one of every port's for the SLAs.
    assert len(checks) <= product.ports.count() + 1
