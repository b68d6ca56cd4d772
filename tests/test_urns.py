"""URNs are written and read by products/urns.py alone; every door agrees with it."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rest_framework.test import APIClient

from products import urns

slugs = st.from_regex(re.compile(rf"\A{urns.SLUG}\Z"), fullmatch=True)


@given(slugs, slugs)
def test_a_formatted_urn_parses_back(domain, product):
    assert urns.parse(urns.format_urn(domain, product)) == (domain, product)
    assert urns.parse(f"{domain}/{product}") == (domain, product)
    assert urns.parse(f"{domain}/{product}", path_form=False) is None


@pytest.mark.parametrize(
    "ref", ["", "urn:mesh:", "urn:mesh:a", "urn:mesh:a:b:c", "urn:mesh::b", "a/b/c", "urn:x:a:b"]
)
def test_malformed_references_name_nothing(ref):
    assert urns.parse(ref, path_form=False) is None
    assert urns.parse(ref) is None


@pytest.mark.django_db
def test_the_api_route_filter_and_model_use_the_same_urn(mesh):
    product = mesh.products[("orders", "published")]
    c = APIClient()
    c.force_authenticate(mesh.consumer)
    by_route = c.get(f"/api/v1/products/{product.urn}/")
    assert by_route.status_code == 200 and by_route.json()["urn"] == product.urn
    listed = c.get("/api/v1/products/", {"urn": product.urn}).json()["results"]
    assert [p["urn"] for p in listed] == [product.urn]
