"""Checks defined, scheduled, run, swept and alerted on, through the services."""

import hashlib
import hmac
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from governance.models import QualityCheck, QualityRun, Webhook, WebhookDelivery
from governance.quality import selectors, services
from meshportal.models import Notification
from products.models import DataProduct


def _check(cp, name="Names present", kind="missing", columns=("name",), **params):
    return services.check_create(
        port=cp.port, name=name, kind=kind, columns=list(columns), params=params or {"max": 0}
    )


def _run_sync(checks):
    runs = services.run_now(checks=checks)
    services.execute_runs(run_ids=[r.pk for r in runs])
    return [QualityRun.objects.get(pk=r.pk) for r in runs]


@pytest.mark.parametrize(
    "kind,columns,params,field",
    [
        ("row_count", [], {}, "params"),
        ("row_count", [], {"min": 5, "max": 1}, "params"),
        ("missing", [], {"max": 0}, "columns"),
        ("missing", ["name"], {"max": 150, "unit": "percent"}, "params"),
        ("accepted_values", ["status"], {"values": ""}, "params"),
        ("pattern", ["name"], {"pattern": "(["}, "params"),
        ("freshness", ["created_at"], {}, "params"),
        ("custom_sql", [], {"sql": "DELETE FROM t"}, "params"),
        ("row_count", ["id"], {"min": 1}, "columns"),
    ],
)
def test_parameters_are_validated_per_type(kind, columns, params, field):
    with pytest.raises(ValidationError) as e:
        services.validate_check(kind=kind, columns=columns, params=params)
    assert field in e.value.message_dict


def test_a_missing_column_is_refused_at_definition_time(checked_port):
    with pytest.raises(ValidationError) as e:
        _check(checked_port, columns=["no_such_column"])
    assert "No column no_such_column" in e.value.message_dict["columns"][0]
    assert not QualityCheck.objects.exists()


def test_an_unreachable_source_still_accepts_the_definition(checked_port):
    src = checked_port.source
    src.database = "/nonexistent/file.db" if src.kind == "sqlite" else "no_such_db"
    src.save()
    check = _check(checked_port, columns=["whatever"])
    assert check.next_run_at <= timezone.now()
    [run] = _run_sync([check])
    assert run.status == "error" and "Could not connect" in run.message


def test_cron_schedules_are_validated_and_used(checked_port):
    with pytest.raises(ValidationError) as e:
        _check(checked_port, name="x", kind="row_count", columns=(), min=1) and None
        services.check_update(check=QualityCheck.objects.get(), cron="every day")
    assert "cron" in e.value.message_dict
    check = QualityCheck.objects.get()
    services.check_update(check=check, cron="0 6 * * *")
    check.refresh_from_db()
    assert check.next_run_at.hour == 6 and check.next_run_at.minute == 0


def test_dispatch_queues_due_checks_once_and_reschedules(checked_port):
    a = _check(checked_port, name="a")
    b = _check(checked_port, name="b", kind="row_count", columns=(), min=1)
    assert services.dispatch_due() == 2
    assert QualityRun.objects.filter(status="queued").count() == 2
    # Still queued: the same check is never queued twice.
    assert services.run_now(checks=[a, b]) == []
    a.refresh_from_db()
    assert a.next_run_at > timezone.now() + timedelta(minutes=55)
    QualityCheck.objects.update(next_run_at=timezone.now() - timedelta(minutes=1))  # due again
    assert services.dispatch_due() == 0  # but still queued
    assert QualityRun.objects.count() == 2
    # A queued run nobody picked up is given up after the grace period; the schedule goes on.
    assert services.dispatch_due(now=timezone.now() + timedelta(hours=1)) == 2
    assert QualityRun.objects.filter(status="error").count() == 2
    a.refresh_from_db()


def test_the_bench_times_a_dispatch_and_leaves_the_checks_due(checked_port):
    """`make bench` times dispatch_due on its generated mesh. Committed, the runs it queued
    (no worker there) were swept as stuck by the next bench: 397 queries instead of 8."""
    from bench.__main__ import measure_job

    check = _check(checked_port, name="a", kind="row_count", columns=(), min=1)
    due_at = check.next_run_at
    result = measure_job("governance.quality.services.dispatch_due")
    assert result["status"] == "ok" and result["queries"] > 0
    assert not QualityRun.objects.exists()
    check.refresh_from_db()
    assert check.next_run_at == due_at
    assert services.dispatch_due() == 1  # still due: measuring it changed nothing


def test_dispatch_is_batched_whatever_the_number_of_due_checks(
    checked_port, django_assert_max_num_queries
):
    for i in range(30):
        _check(checked_port, name=f"rows {i}", kind="row_count", columns=(), min=1)
    with django_assert_max_num_queries(10):
        assert services.dispatch_due() == 30
    assert QualityRun.objects.filter(status="queued", trigger="schedule").count() == 30
    assert not QualityCheck.objects.filter(next_run_at__lte=timezone.now()).exists()


def test_results_are_recorded_with_observed_value_and_history(checked_port):
    check = _check(checked_port)
    [run] = _run_sync([check])
    assert (run.status, run.observed, run.threshold) == ("failed", 1, "≤ 0")
    assert run.duration_ms is not None and run.finished_at
    check.refresh_from_db()
    assert check.last_status == "failed"


def test_the_sweeper_ends_runs_of_a_lost_worker_and_the_next_schedule_proceeds(checked_port):
    check = _check(checked_port)
    services.dispatch_due()
    run = QualityRun.objects.get()
    QualityRun.objects.filter(pk=run.pk).update(status="running", started_at=timezone.now())
    assert services.sweep_stuck() == 0  # not past its deadline yet
    later = timezone.now() + timedelta(hours=1)
    assert services.sweep_stuck(now=later) == 1
    run.refresh_from_db()
    assert run.status == "error" and "worker stopped" in run.message
    # A late result from the lost worker changes nothing.
    assert services.execute_runs(run_ids=[run.pk]) == {}
    assert services.dispatch_due(now=later) == 1
    assert QualityRun.objects.filter(quality_check=check, status="queued").count() == 1


def test_state_changes_alert_the_owning_team(
    checked_port, mailoutbox, django_capture_on_commit_callbacks
):
    m = checked_port.mesh
    check = _check(
        checked_port,
        name="Amounts",
        kind="range",
        columns=["amount"],
        min=-10,
        max=1000,
        max_failing=0,
    )
    _run_sync([check])  # new -> passed: no alert
    assert not Notification.objects.filter(kind__startswith="quality").exists()
    services.check_update(check=check, params={"min": 0, "max": 100, "max_failing": 0})
    with django_capture_on_commit_callbacks(execute=True):  # e-mails leave on commit
        [run] = _run_sync([check])
    assert run.status == "failed" and run.observed == 2
    alerts = Notification.objects.filter(kind="quality.failed")
    assert {n.user for n in alerts} == {m.owner, m.member}
    assert "Amounts" in alerts[0].title and alerts[0].url.endswith("?tab=quality")
    assert any("Amounts" in mail.subject for mail in mailoutbox)
    _run_sync([check])  # failed -> failed: no new alert
    assert Notification.objects.filter(kind="quality.failed").count() == 2
    services.check_update(check=check, params={"min": -10, "max": 1000, "max_failing": 0})
    _run_sync([check])
    assert Notification.objects.filter(kind="quality.passed").count() == 2


class _Hook(BaseHTTPRequestHandler):
    received: list = []
    status = 200

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def hook_server(settings):
    # A local listener is loopback: allowed here by the platform allowlist, over http.
    settings.MESH_WEBHOOK_ALLOW_HTTP = True
    settings.MESH_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    _Hook.received, _Hook.status = [], 200
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, _Hook
    server.shutdown()


def test_webhooks_are_signed_retried_and_logged(checked_port, hook_server):
    server, handler = hook_server
    hook = Webhook.objects.create(
        team=checked_port.product.owner_team,
        secret="s3cr3t",
        url=f"http://127.0.0.1:{server.server_port}/hook",
    )
    check = _check(checked_port)
    _run_sync([check])
    delivery = WebhookDelivery.objects.get(webhook=hook, event="quality.check.failed")
    assert delivery.event == "quality.check.failed" and delivery.status == "pending"
    handler.status = 500
    with pytest.raises(services.DeliveryFailed):
        services.webhook_deliver(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("pending", 1, 500)
    handler.status = 200
    assert services.webhook_deliver(delivery_id=delivery.pk) == "delivered"
    headers, body = handler.received[-1]
    expected = "sha256=" + hmac.new(b"s3cr3t", body, hashlib.sha256).hexdigest()
    assert headers["X-Mesh-Signature"] == expected
    payload = json.loads(body)
    assert payload["status"] == "failed" and payload["check"] == "Names present"
    assert payload["product"] == checked_port.product.urn
    server.shutdown()
    dead = WebhookDelivery.objects.create(webhook=hook, event="x", body="{}")
    hook.url = "http://127.0.0.1:9/nothing"
    hook.save()
    assert services.webhook_deliver(delivery_id=dead.pk, final=True) == "failed"


def test_trust_score_and_freshness_slo(checked_port):
    product = checked_port.product
    ok = _check(checked_port, name="rows", kind="row_count", columns=(), min=1)
    fresh = _check(checked_port, name="fresh", kind="freshness", columns=["created_at"], hours=24)
    product.freshness_slo_hours = 1  # newest row is an hour old: breached
    product.save()
    _run_sync([ok, fresh])
    state = product.quality_state
    state.refresh_from_db()
    assert state.freshness_breached
    assert Notification.objects.filter(kind="quality.freshness").count() == 2
    # checks 1.0 × 50 + freshness 0 × 20 + documentation × 30
    doc = state.components["documentation"]["value"]
    assert state.trust_score == round(100 * (50 + 30 * doc) / 100)
    product.freshness_slo_hours = 24
    product.save()
    _run_sync([fresh])
    state.refresh_from_db()
    assert not state.freshness_breached
    assert state.trust_score == round(100 * (50 + 20 + 30 * doc) / 100)
    ranked = list(selectors.with_trust(DataProduct.objects.all()).order_by("-trust", "pk"))
    assert ranked[0] == product and ranked[0].trust == state.trust_score


def test_policy_compliance_is_a_term_once_a_policy_judged_the_product(checked_port, monkeypatch):
    product = checked_port.product
    state = services.product_quality_refresh(product=product)
    assert "compliance" not in state.components  # no policy has judged it: left out
    monkeypatch.setattr(
        services.policy_services,
        "compliance_shares",
        lambda products: {p.pk: 0.0 for p in products},
    )
    state = services.product_quality_refresh(product=product)
    assert state.components["compliance"] == {"weight": 20, "value": 0.0}


def test_a_product_save_writes_and_rechecks_only_what_changed(
    mesh, monkeypatch, django_capture_on_commit_callbacks
):
    """DataProduct.save() used to write every column, so the freshness re-check ran on every
    save of a product. Now a save writes the columns that changed (and updated_at)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    rechecked = []
    monkeypatch.setattr(
        services, "freshness_recheck", lambda *, product_id: rechecked.append(product_id)
    )
    product = DataProduct.objects.get(pk=mesh.products[("orders", "published")].pk)
    product.summary = "A new summary"
    with django_capture_on_commit_callbacks(execute=True), CaptureQueriesContext(connection) as q:
        product.save()
    [update] = [x["sql"] for x in q.captured_queries if x["sql"].startswith("UPDATE")][:1]
    assert "summary" in update and "freshness_slo_hours" not in update and '"name"' not in update
    assert rechecked == []
    with django_capture_on_commit_callbacks(execute=True):
        product.save(update_fields=["description"])  # what the caller names, nothing more
    assert rechecked == []
    assert DataProduct.objects.get(pk=product.pk).summary == "A new summary"

    product.freshness_slo_hours = 12
    with django_capture_on_commit_callbacks(execute=True):
        product.save()
    assert rechecked == [product.pk]
    with django_capture_on_commit_callbacks(execute=True):
        product.save()  # unchanged since: no second re-check
    assert rechecked == [product.pk]
    assert DataProduct.objects.get(pk=product.pk).freshness_slo_hours == 12


def test_changing_the_freshness_slo_rejudges_the_breach_without_a_run(
    checked_port, django_capture_on_commit_callbacks
):
    from products import services as product_services

    product = checked_port.product
    fresh = _check(checked_port, name="fresh", kind="freshness", columns=["created_at"], hours=24)
    product.freshness_slo_hours = 24
    product.save()
    _run_sync([fresh])  # newest row an hour old: within 24 h
    assert not product.quality_state.freshness_breached
    runs = QualityRun.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        product_services.product_update(product=product, freshness_slo_hours=0)
    product.quality_state.refresh_from_db()
    assert product.quality_state.freshness_breached  # badge now, no new run
    assert QualityRun.objects.count() == runs
    assert Notification.objects.filter(kind="quality.freshness").exists()


def test_sweeping_stuck_runs_is_bulk_one_trust_refresh_per_product(
    checked_port, django_assert_max_num_queries
):
    """A worker outage leaves a queued run on every check. Sweeping them costs a few
    statements per 1,000 runs, one alert per check (its state changed) and one trust refresh
    per product (it was an UPDATE, a state change and a trust refresh per run)."""
    from meshportal.models import Notification

    checks = [
        _check(checked_port, name=f"rows {i}", kind="row_count", columns=()) for i in range(20)
    ]
    past = timezone.now() - timedelta(minutes=1)
    QualityRun.objects.bulk_create(
        QualityRun(quality_check=c, trigger="schedule", status="queued", deadline=past)
        for c in checks
    )
    with django_assert_max_num_queries(30) as captured:
        assert services.sweep_stuck() == 20
    refreshes = [q for q in captured.captured_queries if "governance_productquality" in q["sql"]]
    # One write (an upsert: INSERT … ON CONFLICT DO UPDATE) for the product's trust.
    assert len([q for q in refreshes if q["sql"].startswith(("UPDATE", "INSERT"))]) == 1
    assert not QualityRun.objects.filter(status__in=QualityRun.ACTIVE).exists()
    assert set(QualityCheck.objects.values_list("last_status", flat=True)) == {"error"}
    alerts = Notification.objects.filter(kind="quality.error")
    recipients = alerts.values("user").distinct().count()
    assert recipients and alerts.count() == 20 * recipients  # one alert per check each
    # ... and one incident per check, opened in bulk (a constant number of its statements).
    from governance.models import Incident

    assert Incident.objects.filter(status="open").count() == 20
    assert len([q for q in captured.captured_queries if "governance_incident" in q["sql"]]) <= 4
    assert services.sweep_stuck() == 0
