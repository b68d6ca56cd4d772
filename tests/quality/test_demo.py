"""The demo's flaws fail real checks out of the box; an owner fixes a row, runs the check
again and sees it pass and the alert clear."""

import sqlite3

from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from governance.models import QualityCheck, QualityRun
from governance.quality import services
from meshportal.models import Notification
from products.models import DataProduct


def _warehouse_execute(sql):
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute(
                sql.replace(
                    "orders_orders", f'"{settings.MESH_DEMO_WAREHOUSE_SCHEMA}".orders_orders'
                )
            )
    else:
        conn = sqlite3.connect(settings.MESH_DEMO_WAREHOUSE_PATH)
        conn.execute(sql)
        conn.commit()
        conn.close()


def test_demo_checks_are_due_at_once_and_find_the_flaws(demo_committed, client):
    assert QualityCheck.objects.count() == 25
    call_command("seed_demo", verbosity=0)
    assert QualityCheck.objects.count() == 25  # idempotent
    assert services.dispatch_due() == 25  # due immediately after `make run`
    services.execute_runs(run_ids=list(QualityRun.objects.values_list("pk", flat=True)))
    status = dict(QualityCheck.objects.exclude(kind="schema").values_list("name", "last_status"))
    assert status["Every order has a customer"] == "failed"
    assert status["Order ids are unique"] == "failed"
    assert status["Known order status"] == "failed"
    assert status["Orders are fresh"] == "failed"
    assert status["E-mails are unique"] == "failed"
    assert status["Known payment status"] == "failed"
    assert status["Page views are fresh"] == "failed"
    assert status["Stock is fresh"] == "failed"
    assert status["Has orders"] == "passed" and status["Known currency"] == "passed"
    # The Parquet port, read through DuckDB: some events lack a carrier; the rest holds.
    assert status["Every event has a carrier"] == "failed"
    assert status["Known carrier"] == "passed" and status["Events are fresh"] == "passed"
    lake_schema = QualityCheck.objects.get(port__slug="shipment-events", kind="schema")
    assert lake_schema.last_status == "passed"
    # The schema checks find what datacontract-cli finds: the declared required and unique
    # fields hold the same missing and duplicate values as the metric checks count.
    schema = {
        run.quality_check.port.product.slug: run
        for run in QualityRun.objects.filter(quality_check__kind="schema").select_related(
            "quality_check__port__product"
        )
    }
    assert set(schema) == {"orders", "customer-profiles", "shipments"}
    missing = QualityRun.objects.get(quality_check__name="Every order has a customer").observed
    assert missing > 0
    assert (schema["orders"].status, schema["orders"].observed) == ("failed", 2)
    assert schema["orders"].message == (
        f"Declared constraints not met: order_id: declared unique, 5 duplicate values; "
        f"customer_id: declared required, {missing:g} missing values."
    )
    assert (schema["customer-profiles"].status, schema["customer-profiles"].observed) == (
        "failed",
        1,
    )
    assert schema["customer-profiles"].message == (
        "Declared constraints not met: email: declared unique, 5 duplicate values."
    )
    assert schema["orders"].sample == []  # counts, never values
    assert status["No payment without an order"] == "passed"
    orders = DataProduct.objects.get(slug="orders")
    assert orders.quality_state.freshness_breached

    # Olivia fixes the 'lost' statuses in the warehouse and clicks "Run now".
    check = QualityCheck.objects.get(name="Known order status")
    assert QualityRun.objects.get(quality_check=check).observed == 3
    _warehouse_execute(
        "UPDATE orders_orders SET order_status = 'shipped' WHERE order_status = 'lost'"
    )
    client.login(username="olivia", password="mesh-demo")
    resp = client.post(reverse("governance:quality_check_run", args=[check.pk]))
    assert resp.status_code == 302
    run = QualityRun.objects.get(quality_check=check, status="queued")
    services.execute_runs(run_ids=[run.pk])  # what the worker does
    check.refresh_from_db()
    assert check.last_status == "passed"
    assert Notification.objects.filter(
        kind="quality.passed", title__contains="Known order status", user__username="olivia"
    ).exists()
    # The failure alert is cleared; other checks' alerts stay open.
    failed = Notification.objects.filter(kind="quality.failed", user__username="olivia")
    assert failed.get(title__contains="Known order status").read_at is not None
    assert failed.get(title__contains="Order ids are unique").read_at is None
    page = client.get(orders.get_absolute_url() + "?tab=quality").content.decode()
    assert "Known order status" in page
    overview = client.get(reverse("governance:quality")).content.decode()
    assert "Known order status" not in overview and "Order ids are unique" in overview
