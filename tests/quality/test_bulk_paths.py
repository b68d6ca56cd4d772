"""The bulk paths of the quality scheduler: sweeping stuck runs and dispatching due checks cost
a number of statements that does not grow with the number of runs or checks (issue 17)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from governance.models import (
    DataSource,
    Incident,
    ProductQuality,
    QualityCheck,
    QualityRun,
    Webhook,
    WebhookDelivery,
)
from governance.quality import services
from meshportal.models import Notification
from products import services as product_services
from products.models import DataProduct, OutputPort, Watch

pytestmark = pytest.mark.django_db


def _checks(mesh, n: int, prefix: str, *, due: bool = True) -> list[QualityCheck]:
    """n products of the orders team (every third a draft), a table port and a check each."""
    source, _ = DataSource.objects.get_or_create(
        slug="wh", defaults={"name": "WH", "kind": "postgresql", "database": "wh"}
    )
    DataProduct.objects.bulk_create(
        DataProduct(
            domain=mesh.orders,
            owner_team=mesh.orders_team,
            slug=f"{prefix}-{i}",
            name=f"{prefix} {i}",
            status="draft" if i % 3 == 0 else "published",
            freshness_slo_hours=24,
        )
        for i in range(n)
    )
    products = DataProduct.objects.filter(slug__startswith=f"{prefix}-").select_related(
        "owner_team__group"
    )
    for p in products:
        if p.status == "draft":  # the team sees its drafts (as product_create grants)
            product_services.product_sync_permissions(product=p)
    OutputPort.objects.bulk_create(
        OutputPort(product=p, slug="main", name="Main", location=f"s.{p.slug}", data_source=source)
        for p in products
    )
    ports = OutputPort.objects.filter(product__slug__startswith=f"{prefix}-")
    next_run = timezone.now() - timedelta(minutes=1) if due else timezone.now() + timedelta(days=1)
    QualityCheck.objects.bulk_create(
        QualityCheck(
            port=port, name="rows", kind="row_count", params={"min": 1}, next_run_at=next_run
        )
        for port in ports
    )
    return list(QualityCheck.objects.filter(port__product__slug__startswith=f"{prefix}-"))


def _stuck(mesh, n: int, prefix: str) -> list[QualityCheck]:
    checks = _checks(mesh, n, prefix, due=False)
    past = timezone.now() - timedelta(minutes=1)
    QualityRun.objects.bulk_create(
        QualityRun(quality_check=c, status="queued" if i % 2 else "running", deadline=past)
        for i, c in enumerate(checks)
    )
    return checks


@pytest.fixture
def audience(mesh):
    """A watcher of the whole domain (sees published products, not drafts) and a webhook."""
    Watch.objects.create(user=mesh.consumer, domain=mesh.orders)
    Webhook.objects.create(team=mesh.orders_team, url="https://hooks.example/q", secret="s")
    return mesh


def _statements_of_a_sweep(mesh, n: int, prefix: str) -> int:
    _stuck(mesh, n, prefix)
    with CaptureQueriesContext(connection) as q:
        assert services.sweep_stuck() == n
    return len(q.captured_queries)


def test_sweeping_costs_the_same_statements_for_10_or_100_stuck_runs(audience):
    _statements_of_a_sweep(audience, 1, "w")  # per-process caches (content types) filled
    few = _statements_of_a_sweep(audience, 10, "a")
    many = _statements_of_a_sweep(audience, 100, "b")
    assert many == few
    # Per batch of up to SWEEP_BATCH runs (5,000): ≤ 10 per 1,000.
    assert many <= services.SWEEP_BATCH // 1000 * 10
    assert not QualityRun.objects.filter(status__in=QualityRun.ACTIVE).exists()


def _statements_of_a_stale_sweep(mesh, n: int, prefix: str) -> int:
    """A sweep whose products' freshness SLO flips: each also has a freshness check whose last
    run found its data 48 h old (the SLO is 24 h), which the sweep's state refresh notices."""
    now = timezone.now()
    fresh = QualityCheck.objects.bulk_create(
        QualityCheck(
            port=check.port,
            name="fresh",
            kind="freshness",
            params={"max_hours": 24},
            next_run_at=now + timedelta(days=1),
        )
        for check in _stuck(mesh, n, prefix)
    )
    QualityRun.objects.bulk_create(
        QualityRun(
            quality_check=f,
            status="passed",
            observed=48,
            started_at=now,
            finished_at=now,
            deadline=now,
        )
        for f in fresh
    )
    with CaptureQueriesContext(connection) as q:
        assert services.sweep_stuck() == n
    return len(q.captured_queries)


def test_a_sweep_that_finds_stale_data_costs_the_same_for_3_or_12_products(audience):
    """Their incidents, alerts and webhook events in bulk: one at a time, each product whose
    freshness flipped cost ~13 statements (216 for a sweep of 1,744 runs on the bench mesh)."""
    _statements_of_a_stale_sweep(audience, 1, "sw")  # per-process caches filled
    few = _statements_of_a_stale_sweep(audience, 3, "sa")
    many = _statements_of_a_stale_sweep(audience, 12, "sb")
    assert many == few
    stale = DataProduct.objects.filter(slug__startswith="sb-")
    assert ProductQuality.objects.filter(product__in=stale, freshness_breached=True).count() == 12
    opened = Incident.objects.filter(kind="freshness", status="open", product__in=stale)
    assert opened.count() == 12
    alerted = Notification.objects.filter(
        kind="quality.freshness", title__startswith="sb ", title__contains="breaks its freshness"
    )
    assert {n.title.split(" breaks")[0] for n in alerted} == {p.name for p in stale}
    events = WebhookDelivery.objects.filter(event="quality.freshness")
    assert sum(any(p.urn in d.body for p in stale) for d in events) == 12


def test_a_sweep_sends_one_alert_per_check_to_those_who_may_see_it(audience):
    m = audience
    checks = _stuck(m, 30, "c")
    drafts = sum(1 for c in checks if c.port.product.status == "draft")
    assert services.sweep_stuck() == 30
    errors = Notification.objects.filter(kind="quality.error")
    assert errors.filter(user=m.owner).count() == 30  # the team: one per check
    assert errors.filter(user=m.member).count() == 30
    assert errors.filter(user=m.consumer).count() == 30 - drafts  # a watcher: no drafts
    assert errors.filter(user=m.other_owner).count() == 0
    assert WebhookDelivery.objects.filter(event="quality.check.error").count() == 30
    assert Incident.objects.filter(status="open", kind="check").count() == 30
    # One incident notification per product, to the team only.
    assert Notification.objects.filter(kind="incident.opened", user=m.owner).count() == 30
    assert not Notification.objects.filter(kind="incident.opened", user=m.consumer).exists()
    runs = QualityRun.objects.filter(quality_check__in=checks)
    assert set(runs.values_list("status", flat=True)) == {"error"}
    assert {r.message for r in runs} == set(services.LOST_MESSAGES.values())
    assert set(QualityCheck.objects.values_list("last_status", flat=True)) == {"error"}
    # Trust refreshed for every product touched: failing now.
    states = ProductQuality.objects.filter(product__slug__startswith="c-")
    assert states.count() == 30 and set(states.values_list("state", flat=True)) == {"failing"}
    # Swept again, nothing left; a second sweep of new stuck runs alerts no one (still error).
    assert services.sweep_stuck() == 0


def test_a_failed_batch_changes_nothing_and_earlier_batches_stay(audience, monkeypatch):
    _stuck(audience, 12, "d")
    monkeypatch.setattr(services, "SWEEP_BATCH", 5)
    real, calls = services.product_quality_refresh_many, []

    def refresh(**kw):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the database went away")
        return real(**kw)

    monkeypatch.setattr(services, "product_quality_refresh_many", refresh)
    with pytest.raises(RuntimeError):
        services.sweep_stuck()
    # The first batch of 5 is swept with everything it implies; the second left no trace.
    assert QualityRun.objects.filter(status="error").count() == 5
    assert QualityRun.objects.filter(status__in=QualityRun.ACTIVE).count() == 7
    assert QualityCheck.objects.filter(last_status="error").count() == 5
    assert Incident.objects.count() == 5
    assert WebhookDelivery.objects.filter(event="quality.check.error").count() == 5
    monkeypatch.setattr(services, "product_quality_refresh_many", real)
    assert services.sweep_stuck() == 7


def _statements_of_a_dispatch(mesh, n: int, prefix: str, callbacks) -> tuple[int, int]:
    _checks(mesh, n, prefix)
    with CaptureQueriesContext(connection) as q, callbacks() as tasks:
        assert services.dispatch_due() == n
    return len(q.captured_queries), len(tasks)


def test_dispatching_costs_the_same_statements_for_10_or_100_due_checks(
    mesh, django_capture_on_commit_callbacks
):
    _statements_of_a_dispatch(mesh, 1, "w", django_capture_on_commit_callbacks)  # caches filled
    few, few_tasks = _statements_of_a_dispatch(mesh, 10, "e", django_capture_on_commit_callbacks)
    many, many_tasks = _statements_of_a_dispatch(mesh, 100, "f", django_capture_on_commit_callbacks)
    assert many == few <= 30
    # Whole tables per task, several tables to a task (within TASK_SECONDS of timeouts).
    assert few_tasks < 10 and many_tasks < 100
    assert QualityRun.objects.filter(status="queued", trigger="schedule").count() == 111
    assert not QualityCheck.objects.filter(next_run_at__lte=timezone.now()).exists()
    assert services.dispatch_due() == 0  # still queued: never twice


def test_dispatch_skips_a_check_that_got_a_run_meanwhile(mesh, monkeypatch):
    checks = _checks(mesh, 4, "g")
    real = services._create_runs_bulk

    def run_now_first(chosen, trigger, now):
        # "Run now" on one of them between the SELECT and the INSERT.
        QualityRun.objects.create(quality_check=chosen[1], trigger="manual", deadline=now)
        return real(chosen, trigger, now)

    monkeypatch.setattr(services, "_create_runs_bulk", run_now_first)
    assert services.dispatch_due() == 3
    assert QualityRun.objects.filter(quality_check=checks[1]).count() == 1


def test_product_viewers_answers_as_can_does_for_many_pairs(mesh, django_assert_max_num_queries):
    from meshportal.permissions import VIEW, can, product_viewers

    people = [mesh.owner, mesh.member, mesh.other_owner, mesh.consumer, mesh.staff]
    products = list(mesh.products.values())
    pairs = [(u, p) for u in people for p in products]
    with django_assert_max_num_queries(4):  # not per person nor per pair (staff: groups)
        allowed = product_viewers(pairs)
    for u, p in pairs:
        assert ((u.pk, p.pk) in allowed) == can(u, VIEW, p), (u, p)


def test_one_person_alerted_about_many_checks_gets_one_e_mail(audience, mailoutbox):
    from django.test import TestCase

    _stuck(audience, 12, "h")
    with TestCase.captureOnCommitCallbacks(execute=True):
        services.sweep_stuck()
    to_owner = [m for m in mailoutbox if m.to == [audience.owner.email]]
    # One digest for the 12 alerts, one for the 12 incidents opened.
    assert len(to_owner) == 2
    assert any(m.subject.startswith("[Mesh Portal] 12 notifications:") for m in to_owner)
    assert Notification.objects.filter(user=audience.owner, kind="quality.error").count() == 12
