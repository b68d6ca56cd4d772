"""The foundation: data model constraints, clear errors, demo mesh, settings, sign-in."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.urls import reverse

from domains.models import Domain
from products.models import DataProduct, OutputPort, SchemaField

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.django_db


def test_database_refuses_duplicate_slugs_and_unknown_choices(mesh):
    product = mesh.products[("orders", "published")]
    with pytest.raises(IntegrityError), transaction.atomic():
        DataProduct.objects.create(
            domain=mesh.orders, slug=product.slug, name="dup", owner_team=mesh.orders_team
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        DataProduct.objects.filter(pk=product.pk).update(status="bogus")
    with pytest.raises(IntegrityError), transaction.atomic():
        OutputPort.objects.filter(product=product).update(kind="sheet")
    port = product.ports.first()
    with pytest.raises(IntegrityError), transaction.atomic():
        SchemaField.objects.create(port=port, name="order_id")
    with pytest.raises(IntegrityError), transaction.atomic():
        Domain.objects.create(slug="orders", name="again", owner_team=mesh.orders_team)
    # The same slug in another domain is fine: slugs are unique within their domain.
    for domain in (mesh.orders, mesh.users):
        DataProduct.objects.create(
            domain=domain, slug="shared-slug", name="ok", owner_team=domain.owner_team
        )


def test_product_has_urn_and_stable_url(mesh):
    product = mesh.products[("orders", "published")]
    assert product.urn == "urn:mesh:orders:published-product"
    assert product.get_absolute_url() == "/products/orders/published-product/"


def test_owner_team_defaults_to_the_domains(mesh):
    from products import services

    p = services.product_create(domain=mesh.users, slug="fresh", name="Fresh")
    assert p.owner_team == mesh.users_team


def test_admin_shows_duplicate_slug_as_a_form_error(client, mesh):
    client.force_login(mesh.staff)
    r = client.post(
        reverse("admin:domains_domain_add"),
        {
            "slug": "orders",
            "name": "Orders again",
            "description": "",
            "owner_team": mesh.orders_team.pk,
            "parent": "",
        },
    )
    assert r.status_code == 200
    assert "Domain with this Slug already exists" in r.text
    assert Domain.objects.filter(slug="orders").count() == 1


def test_admin_rejects_unknown_status_without_saving(client, mesh):
    client.force_login(mesh.staff)
    before = DataProduct.objects.count()
    r = client.post(
        reverse("admin:products_dataproduct_add"),
        {
            "domain": mesh.orders.pk,
            "name": "X",
            "slug": "x",
            "status": "bogus",
            "version": "1.0.0",
            "classification": "internal",
            "ports-TOTAL_FORMS": "0",
            "ports-INITIAL_FORMS": "0",
            "ports-MIN_NUM_FORMS": "0",
            "ports-MAX_NUM_FORMS": "1000",
        },
    )
    assert r.status_code == 200
    assert "Select a valid choice" in r.text
    assert DataProduct.objects.count() == before


def test_admin_port_with_bad_field_saves_nothing(client, mesh):
    """An invalid inline row refuses the whole save: nothing is half-saved."""
    client.force_login(mesh.staff)
    port = mesh.products[("orders", "draft")].ports.first()
    r = client.post(
        reverse("admin:products_outputport_change", args=[port.pk]),
        {
            "slug": port.slug,
            "name": "Renamed port",
            "kind": "table",
            "location": "",
            "format": "",
            "description": "",
            "data_source": "",
            "fields-TOTAL_FORMS": "2",
            "fields-INITIAL_FORMS": "0",
            "fields-MIN_NUM_FORMS": "0",
            "fields-MAX_NUM_FORMS": "1000",
            "fields-0-name": "good_field",
            "fields-0-logical_type": "string",
            "fields-0-ordinal": "1",
            "fields-1-name": "bad_field",
            "fields-1-logical_type": "money",
            "fields-1-ordinal": "2",
        },
    )
    assert r.status_code == 200
    assert "Select a valid choice" in r.text
    port.refresh_from_db()
    assert port.name == "Main"
    assert not port.fields.filter(name="good_field").exists()


def _row_counts() -> dict[str, int]:
    return {m._meta.label: m.objects.count() for m in apps.get_models()}


def test_seed_demo_is_idempotent_and_complete():
    call_command("seed_demo", verbosity=0)
    first = _row_counts()
    call_command("seed_demo", verbosity=0)
    assert _row_counts() == first
    assert {"users", "traffic", "orders"} <= set(Domain.objects.values_list("slug", flat=True))
    assert 20 <= DataProduct.objects.count() <= 30
    statuses = set(DataProduct.objects.values_list("status", flat=True))
    assert {"draft", "published", "deprecated"} <= statuses


def test_demo_warehouse_holds_flawed_tables(demo):
    from demo.warehouse import schema_name, warehouse_cursor

    port = OutputPort.objects.get(product__slug="orders", product__domain__slug="orders")
    assert port.location == f"{schema_name()}.orders_orders"
    with warehouse_cursor() as cur:
        table = (
            "demo_warehouse.orders_orders" if connection.vendor == "postgresql" else "orders_orders"
        )
        cur.execute(
            f"SELECT COUNT(*), COUNT(*) - COUNT(customer_id), "  # noqa: S608  # nosec B608
            f"COUNT(*) - COUNT(DISTINCT order_id) FROM {table}"
        )
        rows, nulls, duplicates = cur.fetchone()
    assert rows == 1200 and nulls > 0 and duplicates == 5


def test_every_page_needs_sign_in(client, mesh):
    for url in [
        "/",
        "/products/",
        "/domains/orders/",
        "/teams/orders-team/",
        mesh.products[("orders", "published")].get_absolute_url(),
        "/access/inbox/",
    ]:
        r = client.get(url)
        assert r.status_code == 302 and r["Location"].startswith("/login/"), url
    assert client.get("/login/").status_code == 200


def test_sign_in_and_out(client, mesh):
    from tests.factories import PASSWORD

    r = client.post("/login/", {"username": "consumer", "password": PASSWORD})
    assert r.status_code == 302
    assert "Orders" in client.get("/").text
    client.post("/logout/")
    assert client.get("/").status_code == 302


def test_home_domain_and_product_pages(client, mesh):
    client.force_login(mesh.consumer)
    home = client.get("/")
    assert "Orders" in home.text and "Users" in home.text
    domain = client.get("/domains/orders/")
    assert "Orders published" in domain.text and "Orders draft" not in domain.text
    product = client.get(mesh.products[("orders", "published")].get_absolute_url() + "?tab=schema")
    assert "order_id" in product.text and "urn:mesh:orders:published-product" in product.text


def test_markdown_is_sanitised(client, mesh):
    from products import services

    product = mesh.products[("orders", "published")]
    services.product_update(
        product=product,
        description="# Hi\n<script>alert(1)</script>"
        "[x](javascript:alert(2)) <img src=x onerror=alert(3)>",
    )
    client.force_login(mesh.consumer)
    html = client.get(product.get_absolute_url()).text
    assert "<h1>Hi</h1>" in html
    assert "<script>alert" not in html and "javascript:" not in html and "onerror" not in html


def _settings_process(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if k != "SECRET_KEY"},
            "DJANGO_SETTINGS_MODULE": "meshportal.settings",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_refuses_to_start_without_secret_key_when_debug_is_off():
    result = _settings_process({"DEBUG": "false"})
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr
    assert _settings_process({"DEBUG": "true"}).returncode == 0
    assert _settings_process({"DEBUG": "false", "SECRET_KEY": "x" * 50}).returncode == 0


def test_default_database_is_sqlite_in_wal_mode_with_busy_timeout(tmp_path):
    """With no DATABASE_URL the portal runs on a SQLite file under var/ in WAL mode."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    code = (
        "import django; django.setup(); from django.db import connection; "
        "c = connection.cursor(); c.execute('PRAGMA journal_mode'); print(c.fetchone()[0]); "
        "c.execute('PRAGMA busy_timeout'); print(c.fetchone()[0]); print(connection.settings_dict['NAME'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**env, "MESH_VAR_DIR": str(tmp_path)},
        timeout=60,
    )
    mode, timeout_ms, name = result.stdout.split()
    assert mode == "wal"
    assert int(timeout_ms) >= 5000
    assert name == str(tmp_path / "mesh.sqlite3")
