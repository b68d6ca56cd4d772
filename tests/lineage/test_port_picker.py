"""The input form's port picker: /lineage/ports/suggest/ answers <option>s for what is typed,
only ports the user may see and may declare (no drafts), in a bounded number of queries."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

SUGGEST = "/lineage/ports/suggest/"


def _options(client, typed: str) -> str:
    r = client.get(SUGGEST, {"source": typed}, HTTP_HX_REQUEST="true")
    assert r.status_code == 200
    return r.text


def test_typing_narrows_to_matching_ports(client, mesh):
    client.force_login(mesh.consumer)
    text = _options(client, "users publ")
    assert 'value="users/published-product/main"' in text
    assert "orders/" not in text
    assert 'value="orders/deprecated-product/main"' in _options(client, "orders/depr")


def test_only_ports_the_user_may_see(client, mesh):
    client.force_login(mesh.consumer)
    everything = _options(client, "")
    assert "draft-product" not in everything  # another team's draft is never suggested
    assert "Users draft" not in _options(client, "draft")
    assert 'value="orders/published-product/main"' in everything


def test_own_draft_is_not_offered_as_an_input_either(client, mesh):
    client.force_login(mesh.owner)
    assert "draft-product" not in _options(client, "draft")


def test_signed_out_is_sent_to_sign_in(client, mesh):
    assert client.get(SUGGEST, {"source": "orders"}).status_code == 302


def test_form_wires_the_picker(client, mesh):
    product = mesh.products[("orders", "published")]
    client.force_login(mesh.owner)
    page = client.get(
        reverse("lineage:input_add", args=["orders", product.slug]), HTTP_ACCEPT="text/html"
    )
    assert page.status_code == 200
    assert f'hx-get="{SUGGEST}"' in page.text
    assert '<datalist id="lineage-ports">' in page.text


def test_suggestions_cost_few_queries(client, mesh, django_assert_max_num_queries):
    client.force_login(mesh.consumer)
    with django_assert_max_num_queries(8):
        _options(client, "a b c d e f g")  # at most five words are used
