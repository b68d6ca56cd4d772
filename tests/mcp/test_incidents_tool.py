"""The MCP tool `product_incidents` (issue 20): a product's incidents with their timelines, as
the token's person sees the product; a hidden draft's incidents answer like a missing product."""

import pytest

from agents import tools
from governance.quality import incidents
from tests.factories import build_mesh

DRAFT = "urn:mesh:users:draft-product"
PUBLISHED = "urn:mesh:orders:published-product"


def _breach(product):
    incidents.record_freshness_many([(product, True, 24)])


@pytest.mark.django_db
def test_the_tool_answers_with_the_timeline_and_hides_other_teams_drafts(mesh):
    published = mesh.products[("orders", "published")]
    _breach(published)
    _breach(mesh.products[("users", "draft")])
    incident = published.incidents.get()
    incidents.incident_acknowledge(incident=incident, by=mesh.owner, note="Looking at the loader")

    seen = tools.product_incidents(mesh.consumer, urn=PUBLISHED)  # a consumer, not an owner
    assert seen["total"] == 1
    row = seen["incidents"][0]
    assert (row["kind"], row["status"], row["acknowledged_by"]) == (
        "freshness",
        "acknowledged",
        "owner",
    )
    assert [e["event"] for e in row["timeline"]] == ["opened", "acknowledged"]
    assert row["timeline"][1]["note"] == "Looking at the loader"
    assert tools.product_incidents(mesh.consumer, urn=PUBLISHED, status="resolved")["total"] == 0

    with pytest.raises(tools.NotFound) as hidden:  # another team's draft: as if it did not exist
        tools.product_incidents(mesh.consumer, urn=DRAFT)
    with pytest.raises(tools.NotFound) as missing:
        tools.product_incidents(mesh.consumer, urn="urn:mesh:users:no-such")
    assert str(hidden.value).replace(DRAFT, "X") == str(missing.value).replace(
        "urn:mesh:users:no-such", "X"
    )
    assert tools.product_incidents(mesh.other_owner, urn=DRAFT)["total"] == 1  # its own team


def test_over_mcp_as_a_non_owner(agent):
    mesh = build_mesh()
    _breach(mesh.products[("orders", "published")])
    _breach(mesh.products[("users", "draft")])
    consumer = agent(mesh.consumer)
    seen, draft, bad = consumer.calls(
        ("product_incidents", {"urn": PUBLISHED}),
        ("product_incidents", {"urn": DRAFT}),
        ("product_incidents", {"urn": PUBLISHED, "status": "lost"}),
    )
    assert seen.data["incidents"][0]["status"] == "open"
    assert "may not see it" in draft.error and "Users draft" not in draft.error
    assert bad.error
