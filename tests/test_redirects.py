"""Open redirects: every ``next`` taken from a request goes through meshportal.redirects.safe_next,
so only a relative path on this site is followed; anything else lands on the page's default."""

import pytest
from django.test import RequestFactory

from meshportal.redirects import safe_next
from tests import factories

HOSTILE = [
    "//evil.example/",
    "///evil.example/",
    "////evil.example/",
    "\\\\evil.example",
    "/\\evil.example",
    "\\/evil.example",
    "https://evil.example/",
    "http://testserver@evil.example/",
    "javascript:alert(1)",
    " javascript:alert(1)",
    "/ok\r\nLocation: https://evil.example/",
    "\x00//evil.example/",
    "evil.example/path",
    "https://testserver/an-absolute-url-is-not-a-path",
]


@pytest.mark.parametrize("target", HOSTILE)
def test_safe_next_refuses_anything_but_a_local_path(target):
    for secure in (False, True):
        request = RequestFactory().get("/", secure=secure)
        assert safe_next(request, target, "/fallback/") == "/fallback/"


@pytest.mark.parametrize("target", ["/products/", "/products/?q=a&page=2", "/a/b/#tab"])
def test_safe_next_keeps_a_local_path(target):
    assert safe_next(RequestFactory().get("/"), target, "/fallback/") == target


@pytest.mark.parametrize("target", HOSTILE)
def test_watch_buttons_fall_back_to_the_product_or_domain(client, mesh, target):
    product = mesh.products[("orders", "published")]
    client.force_login(mesh.consumer)
    response = client.post(
        f"/products/orders/{product.slug}/lineage/watch/", {"on": "1", "next": target}
    )
    assert response.status_code == 302 and response.url == product.get_absolute_url()
    response = client.post("/domains/orders/watch/", {"on": "1", "next": target})
    assert response.status_code == 302 and response.url == "/domains/orders/"


@pytest.mark.parametrize("target", HOSTILE)
def test_basket_button_falls_back_to_the_product(client, mesh, target):
    product = mesh.products[("orders", "published")]
    client.force_login(mesh.consumer)
    response = client.post("/access/basket/add/", {"product": product.pk, "next": target})
    assert response.status_code == 302 and response.url == product.get_absolute_url()


def test_basket_button_follows_a_local_next(client, mesh):
    product = mesh.products[("orders", "published")]
    client.force_login(mesh.consumer)
    response = client.post("/access/basket/add/", {"product": product.pk, "next": "/search/?q=a"})
    assert response.url == "/search/?q=a"


def test_watch_button_follows_a_local_next(client, mesh):
    product = mesh.products[("orders", "published")]
    client.force_login(mesh.consumer)
    response = client.post(
        f"/products/orders/{product.slug}/lineage/watch/", {"on": "1", "next": "/products/"}
    )
    assert response.url == "/products/"


@pytest.fixture
def person(db):
    user = factories.user("olivia")
    user.set_password("a-long-enough-passphrase")
    user.save()
    return user


@pytest.mark.parametrize("target", HOSTILE)
def test_login_falls_back_to_home(client, person, target):
    # The page does not even echo the hostile target into its hidden field.
    assert "evil.example" not in client.get("/login/", {"next": target}).text
    response = client.post(
        "/login/", {"username": "olivia", "password": "a-long-enough-passphrase", "next": target}
    )
    assert response.status_code == 302 and response.url == "/"


def test_login_follows_a_local_next(client, person):
    response = client.post(
        "/login/",
        {"username": "olivia", "password": "a-long-enough-passphrase", "next": "/products/"},
    )
    assert response.url == "/products/"


@pytest.mark.parametrize("target", HOSTILE)
def test_logout_falls_back_to_its_default(client, person, target):
    client.force_login(person)
    response = client.post("/logout/", {"next": target})
    assert "evil.example" not in response.get("Location", "")
