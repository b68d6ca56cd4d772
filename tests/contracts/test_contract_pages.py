"""The Contract tab, the import form (preview, then apply), the diff page, import_contract."""

import pytest
import yaml
from django.core.management import CommandError, call_command

from products.contracts import services as contracts
from products.models import DataProduct, SchemaField

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_contract_tab_shows_document_versions_and_download(mesh, client):
    client.force_login(mesh.consumer)
    r = client.get("/products/orders/published-product/?tab=contract")
    assert r.status_code == 200
    assert "apiVersion: v3.2.0" in r.text and "Download ODCS YAML" in r.text
    assert "Import / update" not in r.text  # not theirs
    dl = client.get("/api/v1/products/orders/published-product/contract?download=1")
    assert dl["Content-Disposition"].startswith("attachment")
    assert yaml.safe_load(dl.content)["dataProduct"] == "published-product"
    client.force_login(mesh.member)
    assert "Import / update" in client.get("/products/orders/published-product/?tab=contract").text


def _edited(product, **changes):
    doc = yaml.safe_load(contracts.export_yaml(product))
    doc.update(changes)
    return yaml.safe_dump(doc, sort_keys=False)


def test_import_form_previews_then_applies(mesh, client):
    product = mesh.products[("orders", "draft")]
    text = _edited(product, name="Orders v2")
    client.force_login(mesh.member)
    r = client.post("/contracts/import/", {"document": text})
    assert "name changed from Orders draft to Orders v2" in r.text
    assert DataProduct.objects.get(pk=product.pk).name == "Orders draft"  # preview only
    r = client.post("/contracts/import/", {"document": text, "apply": "1"})
    assert r.status_code == 302
    assert DataProduct.objects.get(pk=product.pk).name == "Orders v2"


def test_import_form_refuses_someone_elses_product(mesh, client):
    # (Another team's draft answers as a missing name: tests/ownership/test_draft_existence.py.)
    product = mesh.products[("orders", "published")]
    client.force_login(mesh.other_owner)
    r = client.post(
        "/contracts/import/", {"document": _edited(product, name="Hijack"), "apply": "1"}
    )
    assert r.status_code == 403 and "You may not edit" in r.text  # refused, as by the API
    assert DataProduct.objects.get(pk=product.pk).name == "Orders published"


def test_diff_page_between_two_versions(mesh, client):
    from products import services

    product = mesh.products[("orders", "draft")]
    services.field_create(port=product.ports.get(), name="note", logical_type="string")
    services.field_delete(field=SchemaField.objects.get(port__product=product, name="order_id"))
    client.force_login(mesh.member)
    r = client.get("/products/orders/draft-product/contract/diff/", {"from": 1, "to": 3})
    assert "Field main.order_id removed." in r.text and "breaking" in r.text
    assert "Optional field main.note added." in r.text
    client.force_login(mesh.consumer)
    assert (
        client.get("/products/orders/draft-product/contract/diff/", {"from": 1}).status_code == 404
    )


def test_import_contract_command(mesh, tmp_path, capsys):
    product = mesh.products[("orders", "draft")]
    good = tmp_path / "good.yaml"
    good.write_text(_edited(product, version="1.1.0"))
    bad = tmp_path / "bad.yaml"
    bad.write_text(_edited(product, domain="nowhere"))
    call_command("import_contract", str(good), "--user", "member")
    assert DataProduct.objects.get(pk=product.pk).version == "1.1.0"
    call_command("import_contract", str(good), "--user", "member")
    assert "unchanged" in capsys.readouterr().out
    with pytest.raises(CommandError, match="1 of 1 documents rejected"):
        call_command("import_contract", str(bad), "--user", "member")
    assert "Unknown domain" in capsys.readouterr().err


# -- breaking changes in the browser: refused without a major bump, as in the API ---------------


def _edit_form(product, version, fields):
    from tests.test_self_serve import _form

    port = product.ports.get()
    data = _form(
        name=product.name,
        slug=product.slug,
        ports=[
            {
                "id": port.pk,
                "name": port.name,
                "slug": port.slug,
                "kind": port.kind,
                "location": port.location,
                "fields": fields,
            }
        ],
    )
    data.update(version=version, summary=product.summary, description=product.description)
    # As the browser sends it: existing rows are initial forms (validated even if unchanged).
    data["ports-INITIAL_FORMS"] = "1"
    data["ports-0-fields-INITIAL_FORMS"] = str(sum(1 for f in fields if f.get("id")))
    return data


def test_edit_form_refuses_breaking_change_without_major_bump(mesh, client):
    from meshportal.models import Notification

    product = mesh.products[("orders", "published")]
    versions = product.contract_versions.count()
    client.force_login(mesh.member)
    url = f"/products/orders/{product.slug}/edit/"
    r = client.post(url, _edit_form(product, "1.1.0", fields=[]))  # order_id removed
    assert r.status_code == 400
    error = r.context["form"].errors["version"][0]
    assert "Field main.order_id removed" in error and "set version to 2.0.0" in error
    assert 'id="id_version-error"' in r.text  # shown under the Version field
    assert "needs a major version bump" in r.text
    assert SchemaField.objects.filter(port__product=product, name="order_id").exists()
    assert product.contract_versions.count() == versions
    assert DataProduct.objects.get(pk=product.pk).version == "1.0.0"  # nothing half-saved
    # With the bump, two breaking edits in one save land as one breaking version.
    fields = [{"name": "order_no", "logical_type": "integer", "required": True}]
    r = client.post(url, _edit_form(product, "2.0.0", fields=fields))
    assert r.status_code == 302, r.context["form"].errors
    latest = contracts.latest_version(product)
    assert product.contract_versions.count() == versions + 1 and latest.breaking
    assert latest.version == "2.0.0"
    assert Notification.objects.filter(user=mesh.approved, kind="contract_breaking").exists()


def test_edit_form_allows_non_breaking_and_draft_changes(mesh, client):
    client.force_login(mesh.member)
    product = mesh.products[("orders", "published")]
    field = product.ports.get().fields.get()
    keep = {"id": field.pk, "name": "order_id", "logical_type": "integer", "primary_key": True}
    added = {"name": "note", "logical_type": "string"}
    r = client.post(
        f"/products/orders/{product.slug}/edit/", _edit_form(product, "1.1.0", [keep, added])
    )
    assert r.status_code == 302, [f.errors for f in r.context["editor"].forms()]
    draft = mesh.products[("orders", "draft")]
    r = client.post(f"/products/orders/{draft.slug}/edit/", _edit_form(draft, "1.0.0", []))
    assert r.status_code == 302  # drafts have no consumers to break


def test_upload_form_refuses_breaking_change_without_major_bump(mesh, client):
    product = mesh.products[("orders", "published")]
    doc = yaml.safe_load(contracts.export_yaml(product))
    doc["schema"][0]["properties"] = []
    client.force_login(mesh.member)
    r = client.post("/contracts/import/", {"document": yaml.safe_dump(doc), "apply": "1"})
    assert r.status_code == 400  # refused, the reasons on the page
    assert "needs a major version bump" in r.text and "set version to 2.0.0" in r.text
    assert SchemaField.objects.filter(port__product=product, name="order_id").exists()
