"""The mesh-wide "Failing quality checks" page is reachable from where a person looks: the
Governance navigation, and a product's Quality tab (issue 20, item 9). Walked as a consumer
from the home page, following links only."""

import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def _links(html: str) -> dict[str, str]:
    """{link text: href} of a page's links (text with tags and spaces squeezed)."""
    out = {}
    for href, text in re.findall(r'<a\b[^>]*href="([^"]+)"[^>]*>(.*?)</a>', html, re.S):
        out[" ".join(re.sub(r"<[^>]+>", " ", text).split())] = href
    return out


def test_a_consumer_finds_the_failing_checks_by_following_links(client, mesh):
    client.force_login(mesh.consumer)
    home = client.get(reverse("home")).text
    governance = client.get(_links(home)["Governance"]).text
    failing = _links(governance)["Failing quality checks"]
    assert failing == reverse("governance:quality")
    page = client.get(failing)
    assert page.status_code == 200 and "<h1" in page.text and "Failing quality checks" in page.text
    # ... and from there back to the rest of governance.
    assert "Policies" in _links(page.text)


def test_the_quality_tab_links_to_the_failing_checks_of_the_mesh(client, mesh):
    client.force_login(mesh.consumer)
    product = mesh.products[("orders", "published")]
    tab = client.get(product.get_absolute_url() + "?tab=quality").text
    assert reverse("governance:quality") in _links(tab).values()
