"""The product picker (issue 20, forms that guide): deprecating a product, its owner names the
replacement by typing part of its name and picking from suggestions instead of scrolling a list
of every product. /products/suggest/ answers only published products the user may see: never a
draft, neither another team's nor one's own. Walked as the orders owner and a consumer."""

from datetime import timedelta

import pytest
from django.utils import timezone

pytestmark = pytest.mark.django_db

SUGGEST = "/products/suggest/"


def _options(client, typed: str) -> str:
    r = client.get(SUGGEST, {"replacement": typed}, HTTP_HX_REQUEST="true")
    assert r.status_code == 200
    return r.text


def test_typing_narrows_to_published_products_the_user_may_see(client, mesh):
    client.force_login(mesh.consumer)
    text = _options(client, "users publ")
    assert 'value="users/published-product"' in text and "Users published" in text
    assert "orders/" not in text
    everything = _options(client, "")
    assert 'value="orders/published-product"' in everything
    assert "draft-product" not in everything  # another team's draft is never suggested
    assert "Users draft" not in _options(client, "draft")
    assert "deprecated-product" not in everything  # not a valid replacement


def test_own_draft_is_not_offered_either(client, mesh):
    client.force_login(mesh.owner)
    assert "draft-product" not in _options(client, "draft")
    assert 'value="orders/published-product"' in _options(client, "orders")


def test_signed_out_is_sent_to_sign_in(client, mesh):
    assert client.get(SUGGEST, {"q": "orders"}).status_code == 302


def test_owner_deprecates_naming_the_replacement_by_its_picked_value(client, mesh):
    old = mesh.products[("orders", "deprecated")]
    old.status = "published"
    old.save()
    client.force_login(mesh.owner)
    url = f"/products/orders/{old.slug}/deprecate/"
    page = client.get(url).text
    assert 'list="product-options"' in page and '<datalist id="product-options">' in page
    assert "<select" not in page.split('id="id_replacement"')[0].rsplit("<label", 1)[-1]
    sunset = (timezone.localdate() + timedelta(days=30)).isoformat()

    # Another team's draft: refused as if it did not exist (its existence is not told).
    r = client.post(url, {"sunset_date": sunset, "replacement": "users/draft-product"})
    assert "No published product users/draft-product that you may see." in r.text
    old.refresh_from_db()
    assert old.status == "published"

    r = client.post(url, {"sunset_date": sunset, "replacement": "users/published-product"})
    assert r.status_code == 302
    old.refresh_from_db()
    assert (old.status, old.replacement) == ("deprecated", mesh.products[("users", "published")])


def test_suggestions_take_a_bounded_number_of_queries(client, mesh, django_assert_max_num_queries):
    client.force_login(mesh.consumer)
    _options(client, "")  # the session and the user's roles are cached after the first
    with django_assert_max_num_queries(6):
        _options(client, "product")
