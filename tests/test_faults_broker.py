"""Broker (Redis) unreachable: pages keep working, enqueued tasks are kept, the user is told,
staff see a banner, and the kept tasks go out when the broker is back."""

import datetime
import os

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.utils import timezone

from meshportal import queue
from meshportal.celery import app
from meshportal.models import PendingTask
from products.models import AccessRequest
from tests.conftest import wait_for
from tests.prod_env import closed_port


def _switch_broker(url: str) -> None:
    """Point the Celery app at another broker URL (drops its cached connection pools).
    Celery reads CELERY_BROKER_URL from the environment before its configuration."""
    os.environ["CELERY_BROKER_URL"] = url
    app.conf.broker_url = url
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def broker_down(settings, monkeypatch):
    """The broker is a Redis URL on a port nothing listens on."""
    original = app.conf.broker_url
    monkeypatch.setenv("CELERY_BROKER_URL", original)  # restored after the test
    url = f"redis://127.0.0.1:{closed_port()}/0"
    settings.CELERY_BROKER_URL = url
    settings.BROKER_IS_REDIS = True
    _switch_broker(url)
    cache.delete(queue.STATUS_CACHE_KEY)

    class Broker:
        def restore(self):
            settings.CELERY_BROKER_URL = original
            settings.BROKER_IS_REDIS = original.startswith("redis")
            _switch_broker(original)
            cache.delete(queue.STATUS_CACHE_KEY)

    broker = Broker()
    yield broker
    broker.restore()


def test_enqueue_keeps_the_task_when_the_broker_is_down(db, broker_down):
    started = timezone.now()
    result = queue.enqueue("products.tasks.expire_access_grants", options={"queue": "default"})
    assert (timezone.now() - started).total_seconds() < 10  # fails fast, the user is waiting
    assert not result.queued
    assert "saved and will run automatically" in result.message
    row = PendingTask.objects.get(pk=result.pending_id)
    assert row.task_name == "products.tasks.expire_access_grants"
    assert row.options == {"queue": "default"} and row.sent_at is None
    assert "OperationalError" in row.last_error


def test_resending_while_still_down_keeps_the_rows(db, broker_down):
    queue.enqueue("products.tasks.expire_access_grants")
    assert queue.send_pending() == {"sent": 0, "failed": 1}
    row = PendingTask.objects.get()
    assert row.sent_at is None and row.attempts == 2


def test_pages_keep_working_and_staff_see_a_banner(client, mesh, broker_down):
    queue.enqueue("products.tasks.expire_access_grants")
    client.force_login(mesh.consumer)
    response = client.get("/products/")
    assert response.status_code == 200
    assert "queue-banner" not in response.text  # only staff need to know

    client.force_login(mesh.staff)
    response = client.get("/products/")
    assert response.status_code == 200
    text = " ".join(response.text.split())
    assert "The task queue (broker) is unreachable" in text
    assert "1 task waits to be sent" in text


def test_staff_banner_is_cached(client, mesh, broker_down, django_assert_max_num_queries):
    client.force_login(mesh.staff)
    client.get("/")
    broker_down.restore()  # the cached status holds for a while: no ping per page
    cache.set(
        queue.STATUS_CACHE_KEY, {"broker_ok": False, "pending": 0, "broker_is_embedded": False}, 30
    )
    assert "unreachable" in client.get("/").text


def test_no_banner_when_all_is_well(client, mesh):
    cache.delete(queue.STATUS_CACHE_KEY)
    client.force_login(mesh.staff)
    assert "queue-banner" not in client.get("/").text


def test_send_pending_command_reports(db, broker_down, capsys):
    queue.enqueue("products.tasks.expire_access_grants")
    with pytest.raises(SystemExit):
        call_command("send_pending_tasks")
    assert "0 sent, 1 failed" in capsys.readouterr().out


def test_admin_action_tells_staff_what_happened(client, mesh, broker_down):
    result = queue.enqueue("products.tasks.expire_access_grants")
    client.force_login(mesh.staff)
    response = client.post(
        "/admin/meshportal/pendingtask/",
        {"action": "send_now", "_selected_action": [result.pending_id]},
        follow=True,
    )
    assert response.status_code == 200
    assert "still unreachable" in response.text
    client.force_login(mesh.owner)
    assert client.get("/admin/meshportal/pendingtask/").status_code in (302, 403)


@pytest.mark.redis
def test_kept_task_runs_when_the_broker_is_back(transactional_db, celery_worker, broker_down):
    from tests import factories

    mesh = factories.build_mesh()
    # Building the mesh publishes and deprecates products; their notifications, the debounced
    # policy evaluation and the debounced embedding of the products were kept too.
    PendingTask.objects.filter(
        task_name__in=[
            "products.tasks.notify_product_event",
            "governance.tasks.evaluate_changed_products",
            "products.tasks.embed_products",
        ]
    ).delete()
    grant = AccessRequest.objects.filter(
        requester=mesh.approved, status=AccessRequest.Status.APPROVED
    ).first()
    AccessRequest.objects.filter(pk=grant.pk).update(
        expires_at=timezone.now() - datetime.timedelta(minutes=1)
    )
    result = queue.enqueue("products.tasks.expire_access_grants")
    assert not result.queued

    broker_down.restore()
    assert queue.send_pending() == {"sent": 1, "failed": 0}
    assert PendingTask.objects.get().sent_at is not None
    wait_for(lambda: AccessRequest.objects.get(pk=grant.pk).status == AccessRequest.Status.EXPIRED)
    # Once sent, a row is never sent twice.
    assert queue.send_pending() == {"sent": 0, "failed": 0}


@pytest.mark.redis
def test_enqueue_sends_right_away_when_the_broker_is_up(transactional_db, celery_worker):
    from tests import factories

    mesh = factories.build_mesh()
    AccessRequest.objects.filter(requester=mesh.approved).update(
        expires_at=timezone.now() - datetime.timedelta(minutes=1)
    )
    from products import tasks

    result = queue.enqueue(tasks.expire_access_grants)
    assert result.queued and not PendingTask.objects.exists()
    wait_for(
        lambda: (
            not AccessRequest.objects.filter(
                requester=mesh.approved, status=AccessRequest.Status.APPROVED
            ).exists()
        )
    )


# -- every door queues through meshportal.queue, after commit (issue 15, item 5) --------------


def test_a_product_event_is_kept_after_commit(
    mesh, broker_down, django_capture_on_commit_callbacks
):
    from products.lineage.services import product_event_announce

    product = mesh.products[("orders", "published")]
    with django_capture_on_commit_callbacks(execute=True):
        product_event_announce(product=product, kind="deprecation", title="Going away")
        assert not PendingTask.objects.exists()  # nothing leaves before the commit
    row = PendingTask.objects.get()
    assert row.task_name == "products.tasks.notify_product_event"
    assert row.args[:3] == [product.pk, "deprecation", "Going away"]


def test_the_debounced_policy_evaluation_is_kept_with_its_countdown(
    mesh, broker_down, settings, django_capture_on_commit_callbacks
):
    from governance.models import DirtyProduct
    from governance.policies.services import product_mark_changed

    DirtyProduct.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=True):
        product_mark_changed(product_id=mesh.products[("orders", "published")].pk)
    row = PendingTask.objects.get()
    assert row.task_name == "governance.tasks.evaluate_changed_products"
    assert row.options == {"countdown": settings.MESH_POLICY_DEBOUNCE_SECONDS}


def test_a_webhook_delivery_is_kept_after_commit(
    mesh, broker_down, settings, django_capture_on_commit_callbacks
):
    from governance.quality import services as quality_services

    settings.MESH_WEBHOOK_ALLOW_HTTP = True
    settings.MESH_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    quality_services.webhook_create(team=mesh.orders_team, url="http://127.0.0.1:9/hook")
    with django_capture_on_commit_callbacks(execute=True):
        [delivery] = quality_services.webhook_emit_teams(
            {mesh.orders_team.pk: [("quality.failed", {"x": 1})]}
        )
        assert not PendingTask.objects.exists()
    row = PendingTask.objects.get()
    assert row.task_name == "governance.tasks.quality.deliver_webhook"
    assert row.args == [delivery.pk] and row.options == {"queue": "notifications"}


def test_nothing_is_queued_or_mailed_when_the_change_rolls_back(
    mesh, broker_down, mailoutbox, django_capture_on_commit_callbacks
):
    from django.db import transaction

    from meshportal.notifications import notify
    from products.lineage.services import product_event_announce

    product = mesh.products[("orders", "published")]
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            notify([mesh.owner], kind="publication", title="Published")
            product_event_announce(product=product, kind="publication", title="Published")
            raise RuntimeError("the service failed after notifying")
    assert mailoutbox == [] and not PendingTask.objects.exists()


def test_notification_mail_leaves_on_commit_not_inside_the_transaction(
    mesh, mailoutbox, django_capture_on_commit_callbacks
):
    from meshportal.notifications import notify

    with django_capture_on_commit_callbacks(execute=True):
        notify([mesh.owner], kind="publication", title="Published")
        assert mailoutbox == []  # the transaction is still open
    assert [m.to for m in mailoutbox] == [[mesh.owner.email]]


def test_eager_mode_runs_an_enqueued_task_in_line(db):
    calls = []

    @app.task(name="tests.record_call")
    def record_call(x):
        calls.append(x)

    app.conf.task_always_eager = True
    try:
        assert queue.enqueue(record_call, 7).queued
    finally:
        app.conf.task_always_eager = False
    assert calls == [7]
