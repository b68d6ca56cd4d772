"""Deprecation and retirement rules, with the impact shown before them."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from meshportal.models import AuditEntry
from products import services
from products.lineage import services as lineage_services
from products.models import DataProduct
from tests.lineage.conftest import make_product

pytestmark = pytest.mark.django_db


@pytest.fixture
def fed(mesh):
    """users/published-product feeds orders/published-product; nobody holds a grant on it."""
    src = mesh.products[("users", "published")]
    lineage_services.input_port_create(
        product=mesh.products[("orders", "published")], by=mesh.owner, source_port=src.ports.get()
    )
    return src


def test_deprecate_validates_sunset_and_replacement(mesh):
    p = make_product(mesh.orders, "old")
    with pytest.raises(ValidationError, match="sunset date must be in the future"):
        services.product_deprecate(product=p, sunset_date=timezone.localdate())
    with pytest.raises(ValidationError, match="replacement must be published"):
        services.product_deprecate(product=p, replacement=mesh.products[("orders", "draft")])
    new = make_product(mesh.orders, "new")
    sunset = timezone.localdate() + timedelta(days=60)
    services.product_deprecate(product=p, sunset_date=sunset, replacement=new)
    p.refresh_from_db()
    assert (p.status, p.sunset_date, p.replacement) == ("deprecated", sunset, new)


def test_deprecation_banner_on_every_page_of_the_product(client, mesh):
    p = make_product(mesh.orders, "old")
    new = make_product(mesh.orders, "new")
    services.product_deprecate(
        product=p, replacement=new, sunset_date=timezone.localdate() + timedelta(days=30)
    )
    client.force_login(mesh.owner)
    pages = [
        f"/products/orders/old/?tab={t}" for t in ("overview", "schema", "lineage", "activity")
    ]
    pages += [
        "/products/orders/old/edit/",
        "/products/orders/old/retire/",
        "/products/orders/old/lineage/inputs/add/",
    ]
    for url in pages:
        text = client.get(url).text
        assert 'data-testid="deprecation-banner"' in text and "Use <a" in text, url
    client.force_login(mesh.consumer)
    assert "deprecation-banner" in client.get("/products/orders/old/request-access/").text


def test_deprecate_confirm_page_shows_downstream_impact(client, mesh, fed):
    client.force_login(mesh.other_owner)
    text = client.get("/products/users/published-product/deprecate/").text
    assert "Downstream impact" in text
    assert "Orders published" in text and "Orders Team" in text and "<td>owner</td>" in text


def test_retirement_refused_while_downstream_products_remain(client, mesh, fed):
    client.force_login(mesh.other_owner)
    page = client.get("/products/users/published-product/retire/").text
    assert "Retirement is blocked" in page and "orders/published-product" in page
    assert 'name="force"' not in page
    r = client.post("/products/users/published-product/retire/", {"force": "1"}, follow=True)
    assert "Only platform staff can force a retirement" in r.text
    fed.refresh_from_db()
    assert fed.status == "published"


def test_retirement_refused_while_consumers_hold_grants(mesh):
    p = mesh.products[("orders", "published")]  # `approved` holds a grant
    with pytest.raises(ValidationError, match=r"consumers: approved"):
        services.product_retire(product=p, by=mesh.owner)
    with pytest.raises(ValidationError, match="Only platform staff"):
        services.product_retire(product=p, by=mesh.owner, force=True)
    assert DataProduct.objects.get(pk=p.pk).status == "published"


def test_retirement_allowed_when_nothing_depends(mesh):
    p = mesh.products[("users", "published")]
    services.product_retire(product=p, by=mesh.other_owner)
    assert DataProduct.objects.get(pk=p.pk).status == "retired"


def test_staff_force_retirement_is_audited(client, mesh, fed):
    client.force_login(mesh.staff)
    page = client.get("/products/users/published-product/retire/").text
    assert 'name="force"' in page
    r = client.post("/products/users/published-product/retire/", {"force": "1"}, follow=True)
    assert r.status_code == 200
    fed.refresh_from_db()
    assert fed.status == "retired"
    entry = AuditEntry.objects.get(changes__has_key="retirement_forced")
    assert entry.actor == mesh.staff and entry.door == "page"
    assert "orders/published-product" in entry.changes["retirement_forced"][1]
    activity = client.get("/products/users/published-product/?tab=activity").text
    assert "retirement_forced" in activity or "Retirement forced" in activity


def test_retired_source_cannot_be_consumed(mesh):
    p = mesh.products[("users", "published")]
    services.product_retire(product=p, by=mesh.other_owner)
    with pytest.raises(ValidationError, match="retired"):
        lineage_services.input_port_create(
            product=mesh.products[("orders", "published")], by=mesh.owner, source_port=p.ports.get()
        )
