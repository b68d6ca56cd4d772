"""The request basket: products collected while browsing (in the session), requested once with
one purpose through `services.access_requests_create`, page and API alike; all or nothing."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from rest_framework.test import APIClient

from products import services
from products.models import AccessRequest

pytestmark = pytest.mark.django_db

BASKET = "/api/v1/access-requests/basket/"


def _add(client, product):
    return client.post(reverse("products:basket_add"), {"product": product.pk, "next": "/search/"})


def test_consumer_fills_the_basket_from_search_and_requests_all_at_once(client, mesh):
    orders = mesh.products[("orders", "published")]
    users = mesh.products[("users", "deprecated")]
    client.force_login(mesh.consumer)
    search = client.get(reverse("products:search"))
    assert f'Add to basket<span class="visually-hidden">: {orders.name}</span>' in search.text
    assert _add(client, orders)["Location"] == "/search/"
    _add(client, users)
    _add(client, users)  # twice is once
    page = client.get(reverse("products:basket"))
    assert orders.name in page.text and users.name in page.text
    assert 'aria-label="2 in the basket"' in page.text  # the count in the navigation
    assert "Request access to 2 products" in page.text
    r = client.post(reverse("products:basket"), {"purpose": "churn study", "duration_days": 30})
    assert r.status_code == 302 and r["Location"] == reverse("products:my_requests")
    made = AccessRequest.objects.filter(requester=mesh.consumer)
    assert {(r.product_id, r.purpose, r.duration_days) for r in made} == {
        (orders.pk, "churn study", 30),
        (users.pk, "churn study", 30),
    }
    # each product's owners decide their part in their own inbox
    client.force_login(mesh.owner)
    assert "churn study" in client.get(reverse("products:inbox")).text
    client.force_login(mesh.other_owner)
    assert "churn study" in client.get(reverse("products:inbox")).text
    client.force_login(mesh.consumer)
    assert "Your request basket is empty" in client.get(reverse("products:basket")).text


def test_basket_form_errors_stay_next_to_the_field_and_keep_the_basket(client, mesh):
    client.force_login(mesh.consumer)
    _add(client, mesh.products[("orders", "published")])
    r = client.post(reverse("products:basket"), {"purpose": "", "duration_days": 90})
    assert r.status_code == 200 and 'id="id_purpose-error"' in r.text
    assert "Orders published" in r.text
    assert not AccessRequest.objects.filter(requester=mesh.consumer).exists()


def test_product_page_offers_the_basket(client, mesh):
    product = mesh.products[("orders", "published")]
    client.force_login(mesh.consumer)
    assert (
        'Add to basket<span class="visually-hidden">: Orders published</span>'
        in client.get(product.get_absolute_url()).text
    )
    client.force_login(mesh.owner)  # the owners already have it: nothing to put in a basket
    assert "Add to basket" not in client.get(product.get_absolute_url()).text


def test_search_offers_the_basket_only_for_other_teams_products(client, mesh):
    client.force_login(mesh.owner)
    page = client.get(reverse("products:search")).text
    assert 'visually-hidden">: Users published</span>' in page
    assert 'visually-hidden">: Orders published</span>' not in page  # the owner's own


def test_another_teams_draft_cannot_enter_the_basket(client, mesh):
    draft = mesh.products[("users", "draft")]
    client.force_login(mesh.consumer)
    assert _add(client, draft).status_code == 404
    assert client.session.get("access_basket", []) == []


def test_own_draft_is_refused_with_a_message(client, mesh):
    draft = mesh.products[("orders", "draft")]
    client.force_login(mesh.member)
    r = client.post(reverse("products:basket_add"), {"product": draft.pk}, follow=True)
    assert "not open for requests" in r.text
    assert client.session.get("access_basket", []) == []


def test_bad_product_id_is_a_404_not_a_500(client, mesh):
    client.force_login(mesh.consumer)
    assert client.post(reverse("products:basket_add"), {"product": "x"}).status_code == 404
    assert client.get(reverse("products:basket_add")).status_code == 405


def test_a_product_hidden_after_adding_drops_out_of_the_basket(client, mesh):
    client.force_login(mesh.consumer)
    session = client.session
    session["access_basket"] = [mesh.products[("users", "draft")].pk]  # as if published then
    session.save()
    page = client.get(reverse("products:basket"))
    assert "Users draft" not in page.text and "Your request basket is empty" in page.text


def test_service_is_all_or_nothing(mesh):
    ok = mesh.products[("orders", "published")]
    already = mesh.products[("users", "published")]
    services.access_request_create(product=already, requester=mesh.consumer, purpose="before")
    with pytest.raises(ValidationError) as e:
        services.access_requests_create(
            products=[ok, already], requester=mesh.consumer, purpose="both"
        )
    assert e.value.messages == [
        "Users published: You already have a pending or approved request for Users published."
    ]
    assert not AccessRequest.objects.filter(purpose="both").exists()  # the first one undone


def test_service_never_names_a_product_the_requester_may_not_see(mesh):
    with pytest.raises(ValidationError) as e:
        services.access_requests_create(
            products=[mesh.products[("users", "draft")]], requester=mesh.consumer, purpose="x"
        )
    assert e.value.messages == ["A product in the basket is not one you may see."]


def _api(user) -> APIClient:
    c = APIClient()
    c.force_login(user)
    return c


def test_api_basket_makes_every_request(mesh):
    body = {
        "products": ["urn:mesh:orders:published-product", "users/deprecated-product"],
        "purpose": "one go",
        "duration_days": 14,
    }
    r = _api(mesh.consumer).post(BASKET, body, format="json")
    assert r.status_code == 201, r.content
    assert sorted(x["product"] for x in r.json()) == [
        "urn:mesh:orders:published-product",
        "urn:mesh:users:deprecated-product",
    ]
    assert {x["status"] for x in r.json()} == {"pending"}


@pytest.mark.parametrize(
    ("who", "refused", "said"),
    [  # another team's draft reads like an unknown URN; one's own draft is not open
        ("consumer", "urn:mesh:users:draft-product", "No data product urn:mesh:users:draft-"),
        ("member", "urn:mesh:orders:draft-product", "not open for requests"),
    ],
)
def test_api_basket_refuses_a_draft_and_makes_nothing(mesh, who, refused, said):
    body = {"products": ["urn:mesh:users:published-product", refused], "purpose": "both"}
    r = _api(getattr(mesh, who)).post(BASKET, body, format="json")
    assert r.status_code == 400
    assert said in r.text
    assert "Users draft" not in r.text
    assert not AccessRequest.objects.filter(purpose="both").exists()


@pytest.mark.parametrize(
    "body",
    [{}, {"products": [], "purpose": "x"}, {"products": "nope", "purpose": "x"}, []],
)
def test_api_basket_bad_input_is_400(mesh, body):
    assert _api(mesh.consumer).post(BASKET, body, format="json").status_code == 400


def test_api_basket_needs_a_signed_in_user(mesh):
    assert APIClient().post(BASKET, {}, format="json").status_code in (401, 403)
