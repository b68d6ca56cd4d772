import pytest

from products.lineage import services as lineage_services
from products.models import InputPort, Watch

pytestmark = pytest.mark.django_db


def test_admin_lists_inputs_and_watches_read_only_for_platform_only(client, mesh):
    inp = lineage_services.input_port_create(
        product=mesh.products[("orders", "published")],
        by=mesh.owner,
        source_port=mesh.products[("users", "published")].ports.get(),
    )
    Watch.objects.create(user=mesh.consumer, domain=mesh.orders)
    client.force_login(mesh.staff)
    page = client.get("/admin/products/inputport/")
    assert page.status_code == 200 and "Orders published" in page.text
    assert client.get(f"/admin/products/inputport/{inp.pk}/change/").status_code == 200
    assert client.get("/admin/products/inputport/add/").status_code == 403
    assert "consumer" in client.get("/admin/products/watch/").text
    client.force_login(mesh.owner)  # not staff: the admin sends them to its sign-in
    assert client.get("/admin/products/inputport/").status_code == 302
    assert InputPort.objects.count() == 1
