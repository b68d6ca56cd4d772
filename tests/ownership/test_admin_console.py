import pytest
from django.urls import reverse

from meshportal.models import AuditEntry
from products.models import DataProduct

pytestmark = pytest.mark.django_db


def test_guardian_object_permission_pages(client, mesh):
    client.force_login(mesh.staff)
    product = mesh.products[("orders", "draft")]
    r = client.get(reverse("admin:products_dataproduct_permissions", args=[product.pk]))
    assert r.status_code == 200 and "team:orders-team" in r.text
    r = client.get(reverse("admin:domains_domain_permissions", args=[mesh.orders.pk]))
    assert r.status_code == 200 and "team:orders-team" in r.text


def test_bulk_deprecate_is_all_or_nothing(client, mesh):
    client.force_login(mesh.staff)
    published = mesh.products[("orders", "published")]
    draft = mesh.products[("orders", "draft")]
    url = reverse("admin:products_dataproduct_changelist")
    r = client.post(
        url,
        {"action": "deprecate_selected", "_selected_action": [published.pk, draft.pk]},
        follow=True,
    )
    assert "Not deprecated" in r.text
    assert DataProduct.objects.get(pk=published.pk).status == "published"
    client.post(url, {"action": "deprecate_selected", "_selected_action": [published.pk]})
    assert DataProduct.objects.get(pk=published.pk).status == "deprecated"
    assert AuditEntry.objects.filter(door="admin", object_id=str(published.pk)).exists()


def test_bulk_export_csv(client, mesh):
    client.force_login(mesh.staff)
    published = mesh.products[("orders", "published")]
    r = client.post(
        reverse("admin:products_dataproduct_changelist"),
        {"action": "export_csv", "_selected_action": [published.pk]},
    )
    assert r["Content-Type"] == "text/csv"
    assert "urn:mesh:orders:published-product" in r.content.decode()


def test_staff_who_is_not_platform_only_changes_their_own(client, mesh):
    mesh.owner.is_staff = True
    mesh.owner.save()
    client.force_login(mesh.owner)
    own = mesh.products[("orders", "published")]
    other = mesh.products[("users", "published")]
    assert (
        client.get(reverse("admin:products_dataproduct_change", args=[own.pk])).status_code == 200
    )
    page = client.get(reverse("admin:products_dataproduct_change", args=[other.pk]))
    assert page.status_code == 200 and 'name="_save"' not in page.text  # view only
    r = client.post(reverse("admin:products_dataproduct_delete", args=[other.pk]), {"post": "yes"})
    assert r.status_code == 403
    assert DataProduct.objects.filter(pk=other.pk).exists()


@pytest.mark.parametrize(
    "model",
    [
        "governance/datasource",
        "governance/policy",
        "governance/qualitycheck",
        "meshportal/apitoken",
        "meshportal/pendingtask",
        "meshportal/auditentry",
    ],
)
def test_platform_records_are_for_platform_staff_only(client, mesh, model):
    url = f"/admin/{model}/"
    client.force_login(mesh.staff)
    assert client.get(url).status_code == 200
    mesh.owner.is_staff = True  # in the console, but not on the platform team
    mesh.owner.save()
    client.force_login(mesh.owner)
    assert client.get(url).status_code == 403
