"""The MCP server as an assistant meets it: the SDK's client over Streamable HTTP, a person's
API token, the portal's rules (docs/agents.md)."""

import httpx2 as httpx
import pytest
import yaml
from django.contrib.auth import get_user_model

from meshportal.api.auth import token_create, token_revoke
from meshportal.models import AuditEntry
from products.models import AccessRequest, Watch
from tests.factories import PASSWORD, build_mesh

TOOLS = {
    "search_products",
    "get_product",
    "get_contract",
    "lineage",
    "list_policies",
    "product_compliance",
    "product_incidents",
    "glossary_lookup",
    "my_access",
    "request_access",
    "watch_product",
}
DRAFT = "urn:mesh:orders:draft-product"
PUBLISHED = "urn:mesh:orders:published-product"
LOCATION = "sales.secret_table"  # every port of build_mesh's products


def _user(name):
    return get_user_model().objects.get(username=name)


def test_lists_every_tool_with_a_description_and_argument_schema(agent):
    mesh = build_mesh()
    tools = {t.name: t for t in agent(mesh.consumer).tools()}

    assert set(tools) == TOOLS
    for tool in tools.values():
        assert len(tool.description or "") > 60, tool.name
        assert tool.input_schema["type"] == "object"
    assert set(tools["request_access"].input_schema["required"]) == {"urn", "purpose"}
    urn = tools["get_product"].input_schema["properties"]["urn"]
    assert "urn:mesh:" in urn["description"]
    page_size = tools["search_products"].input_schema["properties"]["page_size"]
    assert page_size["maximum"] == 50
    assert tools["request_access"].annotations.read_only_hint is False
    assert tools["get_product"].annotations.read_only_hint is True


def test_no_token_a_bad_one_and_a_revoked_one_are_refused(agent, mcp_url):
    mesh = build_mesh()
    hello = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"Accept": "application/json, text/event-stream"}

    bare = httpx.post(mcp_url, json=hello, headers=headers)
    wrong = httpx.post(
        mcp_url, json=hello, headers={**headers, "Authorization": "Bearer mesh_not-a-token"}
    )
    token, key = token_create(user=mesh.consumer, name="revoked soon")
    token_revoke(token=token)
    revoked = httpx.post(mcp_url, json=hello, headers={**headers, "Authorization": f"Bearer {key}"})

    assert bare.status_code == 401 and "Authorization: Bearer" in bare.json()["detail"]
    assert bare.headers["www-authenticate"].startswith("Bearer")
    assert wrong.status_code == 401 and wrong.json()["detail"] == "Invalid or revoked token."
    assert revoked.status_code == 401 and revoked.json()["detail"] == "Invalid or revoked token."
    with pytest.raises(Exception):  # noqa: B017 - the SDK client cannot even start a session
        agent(None).tools()


def test_a_consumer_sees_no_drafts_and_a_drafts_urn_answers_like_a_missing_one(agent):
    mesh = build_mesh()
    consumer = agent(mesh.consumer)

    everything = consumer.call("search_products", page_size=50).data
    drafts = consumer.call("search_products", status=["draft"]).data
    draft, missing = consumer.calls(
        ("get_product", {"urn": DRAFT}), ("get_product", {"urn": "urn:mesh:orders:no-such"})
    )
    contract, lineage = consumer.calls(
        ("get_contract", {"urn": DRAFT}), ("lineage", {"urn": DRAFT})
    )

    assert everything["total"] == 4
    assert {r["status"] for r in everything["results"]} == {"published", "deprecated"}
    assert all(r["urn"].startswith("urn:mesh:") for r in everything["results"])
    assert drafts["total"] == 0 and drafts["results"] == []
    assert draft.error and missing.error
    assert draft.error.replace(DRAFT, "X") == missing.error.replace("urn:mesh:orders:no-such", "X")
    assert "may not see it" in draft.error
    assert contract.error.replace(DRAFT, "X") == missing.error.replace(
        "urn:mesh:orders:no-such", "X"
    )
    assert lineage.error == contract.error
    # The owning team's own token sees it.
    assert agent(mesh.member).call("get_product", urn=DRAFT).data["status"] == "draft"


def test_connection_details_only_for_those_granted(agent):
    mesh = build_mesh()
    asks = [("get_product", {"urn": PUBLISHED}), ("get_contract", {"urn": PUBLISHED})]

    product, contract = agent(mesh.consumer).calls(*asks)
    granted_product, granted_contract = agent(mesh.approved).calls(*asks)

    port = product.data["ports"][0]
    assert port["fields"][0]["name"] == "order_id"
    assert "location" not in port and LOCATION not in str(product.data)
    assert product.data["your_access"] == {
        "connection_details": False,
        "may_request_access": True,
        "watching": False,
    }
    doc = yaml.safe_load(contract.data["contract"])
    assert doc["apiVersion"].startswith("v3") and "servers" not in doc
    assert LOCATION not in contract.data["contract"]
    assert contract.data["connection_details_included"] is False

    assert granted_product.data["ports"][0]["location"] == LOCATION
    assert granted_product.data["your_access"]["connection_details"] is True
    assert LOCATION in granted_contract.data["contract"]


def test_an_access_request_lands_in_the_owners_inbox_and_is_decided_there(agent, client):
    mesh = build_mesh()
    consumer = agent(mesh.consumer)
    purpose = "Weekly churn report for the retention team"

    no_purpose = consumer.call("request_access", urn=PUBLISHED, purpose="  ")
    asked = consumer.call("request_access", urn=PUBLISHED, purpose=purpose, duration_days=30)
    again = consumer.call("request_access", urn=PUBLISHED, purpose=purpose)
    draft = consumer.call("request_access", urn=DRAFT, purpose=purpose)

    assert no_purpose.error == "purpose: Say what you will use the data for."
    assert asked.data["status"] == "pending" and asked.data["product"] == PUBLISHED
    assert "Nothing is granted" in asked.data["next"]
    assert "already have a pending or approved request" in again.error
    assert "may not see it" in draft.error
    req = AccessRequest.objects.get(pk=asked.data["id"])
    assert (req.requester, req.status, req.purpose, req.duration_days) == (
        mesh.consumer,
        "pending",
        purpose,
        30,
    )
    entry = AuditEntry.objects.get(
        content_type__model="accessrequest", object_id=str(req.pk), action="create"
    )
    assert (entry.door, entry.actor, entry.actor_name) == ("mcp", mesh.consumer, "consumer")
    # Still no connection details: asking grants nothing.
    assert "location" not in consumer.call("get_product", urn=PUBLISHED).data["ports"][0]

    assert client.login(username="owner", password=PASSWORD)
    inbox = client.get("/access/inbox/")
    assert inbox.status_code == 200 and purpose in inbox.content.decode()
    decided = client.post(f"/access/{req.pk}/decide/", {"decision": "approve", "comment": "ok"})
    assert decided.status_code == 302

    mine, product = consumer.calls(("my_access", {}), ("get_product", {"urn": PUBLISHED}))
    assert mine.data["active_grants"] == 1
    assert mine.data["results"][0]["status"] == "approved"
    assert mine.data["results"][0]["decided_by"] == "owner"
    assert product.data["ports"][0]["location"] == LOCATION


def test_watch_product_follows_and_unfollows_as_the_person(agent):
    mesh = build_mesh()
    consumer = agent(mesh.consumer)

    on, seen, off = consumer.calls(
        ("watch_product", {"urn": PUBLISHED}),
        ("get_product", {"urn": PUBLISHED}),
        ("watch_product", {"urn": PUBLISHED, "watch": False}),
    )
    hidden = consumer.call("watch_product", urn=DRAFT)

    assert on.data == {"urn": PUBLISHED, "watching": True}
    assert seen.data["your_access"]["watching"] is True
    assert off.data == {"urn": PUBLISHED, "watching": False}
    assert not Watch.objects.filter(user=mesh.consumer).exists()
    assert "may not see it" in hidden.error


def test_bad_arguments_are_tool_errors_with_a_reason(agent):
    mesh = build_mesh()
    consumer = agent(mesh.consumer)

    results = consumer.calls(
        ("search_products", {"page_size": 500}),
        ("search_products", {"domain": ["no-such-domain"]}),
        ("get_product", {"urn": "not a urn"}),
        ("request_access", {"urn": PUBLISHED}),
        ("request_access", {"urn": PUBLISHED, "purpose": "x", "team": "no-such-team"}),
        ("glossary_lookup", {"query": " "}),
        ("no_such_tool", {}),
        ("request_access", {"urn": PUBLISHED, "purpose": "a\x00b"}),
        ("search_products", {"query": "orders\x00", "owner_team": ["x\x00"]}),
    )

    assert all(r.error for r in results), results
    too_big, domain, urn, no_purpose, team, glossary, unknown, nul, nuls = (
        r.error for r in results
    )
    # A NUL is refused at the door with the argument it is in, as the API does (PostgreSQL
    # cannot store one: it failed in the service with a database error).
    assert nul == "purpose: Null characters are not allowed."
    assert nuls == (
        "query: Null characters are not allowed. owner_team: Null characters are not allowed."
    )
    assert not AccessRequest.objects.filter(requester=mesh.consumer).exists()
    assert "page_size" in too_big
    assert domain.startswith("domain:")
    assert "No data product not a urn" in urn
    assert "purpose" in no_purpose
    assert team == "team: No team no-such-team."
    assert glossary == "query: Say which term to look up."
    assert "no_such_tool" in unknown
    # The session survived every refusal.
    assert consumer.call("search_products").data["total"] == 4


def test_each_token_has_the_apis_budget(agent, settings):
    mesh = build_mesh()
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "token": "3/min",
        },
    }
    consumer = agent(mesh.consumer)

    results = consumer.calls(*[("my_access", {})] * 4)
    other = agent(mesh.approved).call("my_access")

    assert [r.error is None for r in results] == [True, True, True, False]
    assert results[-1].error.startswith("Rate limit reached for this token")
    assert other.error is None


def test_sampled_values_and_locations_in_quality_results_only_for_those_granted(agent):
    from datetime import timedelta

    from django.utils import timezone

    from governance.models import QualityCheck, QualityRun

    mesh = build_mesh()
    port = mesh.products[("orders", "published")].ports.get()
    check = QualityCheck.objects.create(port=port, name="No missing ids", kind="missing")
    QualityRun.objects.create(
        quality_check=check,
        status="failed",
        observed=1,
        message=f"1 missing value in {LOCATION}.order_id",
        sample=[{"order_id": None, "email": "jane@example.com"}],
        finished_at=timezone.now(),
        deadline=timezone.now() + timedelta(minutes=5),
    )

    seen = agent(mesh.consumer).call("get_product", urn=PUBLISHED).data
    granted = agent(mesh.approved).call("get_product", urn=PUBLISHED).data

    run = seen["quality_checks"]["checks"][0]["latest_run"]
    assert run["sample"] == [] and LOCATION not in run["message"] and "(hidden)" in run["message"]
    own = granted["quality_checks"]["checks"][0]["latest_run"]
    assert own["sample"] == [{"order_id": None, "email": "jane@example.com"}]
    assert LOCATION in own["message"]


def test_a_request_for_another_host_is_refused_even_with_a_token(mcp_url):
    """DNS rebinding: a page on evil.example that resolves to the portal's address cannot
    drive the server from a browser that holds a token."""
    mesh = build_mesh()
    hello = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {
        "Accept": "application/json, text/event-stream",
        "Authorization": f"Bearer {token_create(user=mesh.consumer, name='x')[1]}",
    }

    other = httpx.post(mcp_url, json=hello, headers={**headers, "Host": "evil.example"})

    assert other.status_code in (400, 421)
    assert "Host" in other.text
