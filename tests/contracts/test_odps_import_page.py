"""ODPS import from the product page and from `import_odps` (issue 16, item 7): the same
service and rules as `PUT /api/v1/products/…/odps`."""

import pytest
import yaml
from django.core.management import CommandError, call_command

from products.contracts import odps
from products.models import DataProduct

pytestmark = pytest.mark.django_db
PAGE = "/products/import/"


def _doc(mesh, product, **changes) -> str:
    doc = yaml.safe_load(odps.export_yaml(product, user=mesh.owner))
    doc.update(changes)
    return yaml.safe_dump(doc, sort_keys=False)


def test_the_contract_tab_links_the_odps_import_for_those_who_may_edit(client, mesh):
    product = mesh.products[("orders", "published")]
    client.force_login(mesh.owner)
    page = client.get(product.get_absolute_url() + "?tab=contract").text
    assert f"{PAGE}?domain=orders&amp;product=published-product" in page
    form = client.get(f"{PAGE}?domain=orders&product=published-product")
    assert form.status_code == 200 and 'value="published-product"' in form.text
    client.force_login(mesh.consumer)
    assert PAGE not in client.get(product.get_absolute_url() + "?tab=contract").text


def test_owner_previews_then_applies(client, mesh):
    product = mesh.products[("orders", "published")]
    client.force_login(mesh.owner)
    text = _doc(mesh, product, name="Orders, renamed")
    preview = client.post(PAGE, {"document": text})
    assert preview.status_code == 200
    assert "Apply these changes" in preview.text and product.urn in preview.text
    assert DataProduct.objects.get(pk=product.pk).name == "Orders published"  # nothing yet
    applied = client.post(PAGE, {"document": text, "apply": "1"})
    assert applied.status_code == 302
    assert applied.url == product.get_absolute_url() + "?tab=contract"
    assert DataProduct.objects.get(pk=product.pk).name == "Orders, renamed"


def test_the_domain_and_product_fields_name_a_new_draft(client, mesh):
    product = mesh.products[("orders", "published")]
    client.force_login(mesh.owner)
    text = _doc(mesh, product, id="not-a-urn", name="Fresh", inputPorts=[])
    form = {"document": text, "domain": "orders", "product": "fresh", "apply": "1"}
    assert client.post(PAGE, form).status_code == 302
    assert DataProduct.objects.get(domain__slug="orders", slug="fresh").status == "draft"
    half = client.post(PAGE, {"document": text, "domain": "orders"})
    assert half.status_code == 400 and "Give both the domain and the product" in half.text


def test_a_non_owner_is_refused_and_nothing_changes(client, mesh):
    product = mesh.products[("orders", "published")]
    text = _doc(mesh, product, name="Taken over")
    for user in (mesh.consumer, mesh.other_owner):
        client.force_login(user)
        r = client.post(PAGE, {"document": text, "apply": "1"})
        assert r.status_code == 403, user
    assert DataProduct.objects.get(pk=product.pk).name == "Orders published"


def test_another_teams_draft_is_answered_like_a_name_that_does_not_exist(client, mesh):
    draft = mesh.products[("orders", "draft")]
    text = _doc(mesh, draft, name="Peek")
    client.force_login(mesh.other_owner)
    hidden = client.post(PAGE, {"document": text})
    unknown = client.post(PAGE, {"document": text.replace("draft-product", "no-such-product")})
    assert hidden.status_code == unknown.status_code
    assert "Orders draft" not in hidden.text


def test_not_yaml_shows_the_line(client, mesh):
    client.force_login(mesh.owner)
    r = client.post(PAGE, {"document": "apiVersion: v1.1.0\nkind: [DataProduct\n"})
    assert r.status_code == 400 and "line" in r.text


def test_import_odps_command_applies_and_refuses_like_the_api(mesh, tmp_path, capsys):
    product = mesh.products[("orders", "published")]
    good = tmp_path / "orders.odps.yaml"
    good.write_text(_doc(mesh, product, name="From the command"))
    call_command("import_odps", str(good), "--user", "owner", "--dry-run")
    assert "would change" in capsys.readouterr().out
    assert DataProduct.objects.get(pk=product.pk).name == "Orders published"
    call_command("import_odps", str(good), "--user", "owner")
    assert f"{product.urn} updated" in capsys.readouterr().out
    assert DataProduct.objects.get(pk=product.pk).name == "From the command"
    with pytest.raises(CommandError, match="1 of 1 documents rejected"):
        call_command("import_odps", str(good), "--user", "consumer")
    assert DataProduct.objects.get(pk=product.pk).name == "From the command"


def test_page_and_command_say_what_is_kept_as_it_came(client, mesh, tmp_path, capsys):
    product = mesh.products[("orders", "published")]
    text = _doc(mesh, product, tenant="RetailCorp")
    client.force_login(mesh.owner)
    preview = client.post(PAGE, {"document": text})
    assert preview.status_code == 200
    assert "Kept as it came" in preview.text and "<code>tenant</code>" in preview.text
    path = tmp_path / "orders.odps.yaml"
    path.write_text(text)
    call_command("import_odps", str(path), "--user", "owner")
    assert "orders.odps.yaml: kept as it came: tenant" in capsys.readouterr().out
    assert odps.export_document(product, user=mesh.owner)["tenant"] == "RetailCorp"
