"""search_products finds by meaning through the MCP door too, with the same visibility."""

import pytest

from products.discovery import embedding
from tests.discovery.semantic_mesh import QUERY, add_churn_products
from tests.factories import build_mesh

pytestmark = pytest.mark.skipif(
    not embedding.available(), reason="the `semantic` extra is not installed"
)


def test_an_agent_finds_by_meaning_and_never_sees_another_teams_draft(agent):
    mesh = build_mesh()
    published, draft = add_churn_products(mesh)

    found = agent(mesh.consumer).call("search_products", query=QUERY).data
    urns = [r["urn"] for r in found["results"]]
    assert urns[0] == published.urn
    assert draft.urn not in urns and "Attrition" not in str(found)

    mine = agent(mesh.member).call("search_products", query=QUERY).data
    assert draft.urn in [r["urn"] for r in mine["results"]]
