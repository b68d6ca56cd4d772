"""Glossary terms are found by the portal's search: a product is found by the terms its
fields are linked to (and their synonyms)."""

import pytest

from governance.policies import services as policy_services
from products import services

pytestmark = pytest.mark.django_db


def test_products_are_found_by_linked_glossary_terms(client, mesh):
    term = policy_services.glossary_term_save(
        name="Lifetime value",
        slug="lifetime-value",
        definition="What a customer is worth.",
        synonyms="CLV, customer worth",
    )
    product = mesh.products[("orders", "published")]
    services.field_update(field=product.ports.get().fields.get(), glossary_term=term)
    client.force_login(mesh.consumer)
    for query in ["lifetime", "CLV"]:
        page = client.get(f"/search/?q={query}").text
        assert "Orders published" in page, query
        assert "Users published" not in page
