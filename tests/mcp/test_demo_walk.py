"""Issue 18's walk on the demo mesh: carl's assistant finds a product, reads its contract,
quality, lineage and compliance, asks for access with a purpose, and olivia approves it in her
inbox."""

import yaml

from governance.models import QualityCheck
from governance.quality import services as quality_services
from meshportal.models import AuditEntry
from products.models import AccessRequest
from tests.mcp.test_server import _user

ORDERS = "urn:mesh:orders:orders"
REVENUE = "urn:mesh:orders:daily-revenue"
LAPSED = "urn:mesh:orders:lapsed-customers"


def _run_checks():
    runs = quality_services.run_now(checks=QualityCheck.objects.all())
    quality_services.execute_runs(run_ids=[r.pk for r in runs])


def test_carl_finds_reads_and_asks_and_olivia_decides_in_her_inbox(demo, agent, client):
    _run_checks()
    carl = agent(_user("carl"))

    found, product, contract, lineage = carl.calls(
        ("search_products", {"query": "revenue"}),
        ("get_product", {"urn": REVENUE}),
        ("get_contract", {"urn": ORDERS}),
        ("lineage", {"urn": ORDERS}),
    )
    policies, compliance, glossary = carl.calls(
        ("list_policies", {}),
        ("product_compliance", {"urn": ORDERS}),
        ("glossary_lookup", {"query": "client"}),
    )
    orders = carl.call("get_product", urn=ORDERS).data

    assert found.data["results"][0]["urn"] == REVENUE
    assert found.data["facets"]["domain"] == {"orders": 2}
    assert product.data["owners"] == ["olivia"]
    assert product.data["your_access"]["may_request_access"] is True
    # Quality, trust with its breakdown, freshness against the SLO.
    assert orders["trust"]["score"] == orders["trust_score"] and orders["trust"]["score"] > 0
    assert {"checks", "freshness", "documentation"} <= set(orders["trust"]["breakdown"])
    assert orders["freshness"]["slo_hours"] == 24 and orders["freshness"]["newest_data_at"]
    checks = {c["name"]: c for c in orders["quality_checks"]["checks"]}
    assert checks["Has orders"]["latest_run"]["status"] == "passed"
    assert orders["quality_checks"]["state"] in ("passing", "failing")
    # The contract as the export gives it to someone without a grant.
    doc = yaml.safe_load(contract.data["contract"])
    assert doc["id"] == ORDERS and doc["schema"][0]["properties"][0]["name"] == "order_id"
    assert "servers" not in doc
    # Lineage and impact, by URN.
    downstream = {n["urn"] for n in lineage.data["downstream"]}
    assert REVENUE in downstream and "urn:mesh:marketing:email-campaigns" in downstream
    impact = {p["urn"]: p for p in lineage.data["impact"]["products"]}
    assert impact["urn:mesh:marketing:email-campaigns"]["hops"] == 2
    assert impact[REVENUE]["owners"] == ["olivia"]
    # Governance and the glossary.
    assert {p["key"] for p in policies.data["results"]} >= {"snake-case-fields"}
    assert compliance.data["applicable"] == len(compliance.data["policies"]) > 0
    assert {p["state"] for p in compliance.data["policies"]} <= {
        "pass",
        "fail",
        "waived",
        "unknown",
    }
    term = glossary.data["results"][0]
    assert term["name"] == "Customer" and "client" in term["synonyms"]
    assert any(f["product"] == ORDERS and f["field"] == "customer_id" for f in term["fields"])

    # A question, not the product's words: found by meaning (and, on PostgreSQL, by the
    # typo-tolerant match of "customers" in its name).
    meaning = carl.call("search_products", query="why customers leave").data
    assert meaning["results"][0]["urn"] == LAPSED
    lapsed, lapsed_contract = carl.calls(
        ("get_product", {"urn": LAPSED}), ("get_contract", {"urn": LAPSED})
    )
    assert lapsed.data["owners"] == ["olivia"]
    assert {c["name"] for c in lapsed.data["quality_checks"]["checks"]} == {
        "Has lapsed customers",
        "One row per buyer",
    }
    lapsed_doc = yaml.safe_load(lapsed_contract.data["contract"])
    assert lapsed_doc["id"] == LAPSED and "servers" not in lapsed_doc

    asked = carl.call(
        "request_access", urn=LAPSED, purpose="Why customers leave: win-back by cohort"
    )
    assert asked.data["status"] == "pending"
    assert AuditEntry.objects.filter(
        content_type__model="accessrequest",
        object_id=str(asked.data["id"]),
        door="mcp",
        actor__username="carl",
    ).exists()

    assert client.login(username="olivia", password="mesh-demo")
    inbox = client.get("/access/inbox/").content.decode()
    assert "Why customers leave: win-back by cohort" in inbox
    client.post(f"/access/{asked.data['id']}/decide/", {"decision": "approve", "comment": "Yes"})

    assert AccessRequest.objects.get(pk=asked.data["id"]).status == "approved"
    mine = carl.call("my_access", status="approved").data
    assert [r["product"] for r in mine["results"]] == [LAPSED]
    granted = carl.call("get_product", urn=LAPSED).data
    assert granted["your_access"]["connection_details"] is True
    assert "location" in granted["ports"][0]
