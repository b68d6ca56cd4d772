"""Issue 20 item 4: friendly 404 and 500 pages in the portal's layout, in every environment."""

import pytest
from django.test import Client, override_settings

from meshportal.models import Notification
from products import services as product_services
from tests.factories import PASSWORD


def _client(user) -> Client:
    c = Client(raise_request_exception=False)
    assert c.login(username=user.username, password=PASSWORD)
    return c


@pytest.mark.parametrize("debug", [True, False])
def test_a_notification_to_a_deleted_product_lands_on_the_portals_404(mesh, debug):
    """The owner is told about a request; the product is deleted; the link still answers with
    the portal's page (navigation, why, where to go), not Django's yellow debug page."""
    product = mesh.products[("orders", "draft")]
    url = product.get_absolute_url()
    Notification.objects.create(user=mesh.owner, kind="test", title="Look at this", url=url)
    product_services.product_delete(product=product)
    c = _client(mesh.owner)
    with override_settings(DEBUG=debug):
        page = c.get("/notifications/")
        assert url in page.content.decode()
        response = c.get(url)
    assert response.status_code == 404
    html = response.content.decode()
    assert "This page is not here" in html
    assert 'aria-label="Main"' in html  # the portal's layout, with its navigation
    assert "deleted" in html and "/search/" in html
    assert "technical_404" not in html and "Django tried these URL patterns" not in html


@override_settings(DEBUG=True)
def test_an_unknown_address_under_debug_gets_the_portals_404(mesh):
    response = _client(mesh.consumer).get("/no-such-page/at-all/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "This page is not here" in html
    assert "Django tried these URL patterns" not in html


def test_api_404_stays_json(mesh):
    c = _client(mesh.consumer)
    with override_settings(DEBUG=True):
        response = c.get("/api/v1/products/urn:mesh:nope:nope/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")


def test_500_page_needs_neither_database_nor_request_context(mesh, django_assert_num_queries):
    from django.test import RequestFactory

    from meshportal.views import server_error

    request = RequestFactory().get("/products/")
    with django_assert_num_queries(0):
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            response = server_error(request)
    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong on our side" in html
    assert 'aria-label="Main"' in html and 'href="/"' in html


def test_the_portal_uses_its_500_handler():
    from meshportal import urls

    assert urls.handler500 == "meshportal.views.server_error"
