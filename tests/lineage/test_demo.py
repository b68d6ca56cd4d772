"""The lineage of the demo mesh: who depends on Orders, and a deprecation reaching them. The
module shares one seeded demo (tests/conftest.py, `module_demo`)."""

import pytest
from django.contrib.auth import get_user_model

from products import services
from products.contracts import services as contracts
from products.models import DataProduct, InputPort, Watch

pytestmark = pytest.mark.django_db


def test_demo_orders_owner_sees_downstream_products_and_owners(client, demo):
    User = get_user_model()
    client.force_login(User.objects.get(username="olivia"))
    tab = client.get("/products/orders/orders/?tab=lineage").text
    assert 'hx-get="/products/orders/orders/lineage/impact/"' in tab  # loaded after the tab
    page = client.get("/products/orders/orders/lineage/impact/", HTTP_HX_REQUEST="true").text
    for name in ("Campaign Attribution", "Customer 360", "Daily Revenue"):
        assert name in page
    # Their teams and owners, in other domains.
    assert "Web Analytics" in page or "traffic" in page
    assert "tariq" in page and "mia" in page
    carl = User.objects.get(username="carl")
    assert Watch.objects.filter(user=carl, product__slug="orders").exists()
    impact = client.get("/products/orders/orders/lineage/impact.json").json()
    labels = {p["product"] for p in impact["products"]}
    assert {
        "traffic/campaign-attribution",
        "marketing/customer-360",
        "orders/daily-revenue",
        "marketing/email-campaigns",
    } <= labels
    # The demo edges from confidential sources are approved: their owners hold grants.
    assert not InputPort.objects.filter(approved=False).exists()


def test_demo_lineage_seed_is_idempotent(demo):
    from demo import lineage as lineage_demo

    before = (InputPort.objects.count(), Watch.objects.count())
    assert lineage_demo.seed() == 0
    assert (InputPort.objects.count(), Watch.objects.count()) == before


def test_demo_deprecation_reaches_watchers_and_downstream_owners(client, demo, eager_tasks):
    """Issue 8's "Done means": Olivia sees who depends on Orders, announces a new major
    version and then a deprecation; watchers and downstream owners find both in their
    notification centre (unread count in the navigation) and in their mail."""
    from django.core import mail

    from meshportal.models import Notification

    User = get_user_model()
    client.force_login(User.objects.get(username="olivia"))
    lineage_tab = client.get("/products/orders/orders/lineage/impact/").text  # no-JS page
    assert "Campaign Attribution" in lineage_tab and "Customer 360" in lineage_tab
    assert "tariq" in lineage_tab and "mia" in lineage_tab
    Notification.objects.all().delete()
    mail.outbox.clear()
    orders = DataProduct.objects.get(slug="orders")
    version = f"{contracts.major(orders.version) + 1}.0.0"
    with eager_tasks(execute=True):
        services.product_update(product=orders, version=version)
    confirm = client.get("/products/orders/orders/deprecate/").text
    assert "Customer 360" in confirm and "Campaign Attribution" in confirm
    with eager_tasks(execute=True):
        r = client.post(
            "/products/orders/orders/deprecate/", {"sunset_date": "2099-01-01"}, follow=True
        )
    assert "deprecated" in r.text
    for username in ("carl", "tariq", "mia"):
        client.force_login(User.objects.get(username=username))
        page = client.get("/notifications/").text
        assert "Orders is deprecated" in page, username
        assert "retired on 2099-01-01" in page
        assert f"Orders: new major contract version {version}" in page, username
        assert 'aria-label="2 unread"' in page, username
        address = User.objects.get(username=username).email
        subjects = [m.subject for m in mail.outbox if address in m.to]
        assert "[Mesh Portal] Orders is deprecated" in subjects, username
    assert Notification.objects.filter(kind="deprecation", user__username="uma").count() == 0
