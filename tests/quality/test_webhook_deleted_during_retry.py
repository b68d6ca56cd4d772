"""A team owner deletes a webhook while a delivery to it waits for its retry: the worker drops
the delivery quietly, with one INFO line and no ERROR (issue 20, item 10)."""

import logging

import pytest

from governance.models import Webhook, WebhookDelivery
from governance.quality import services, webhook_targets
from governance.quality.tasks import deliver_webhook

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued_delivery(client, mesh, monkeypatch, django_capture_on_commit_callbacks):
    """The owner sends a test delivery; the worker's first attempt fails, so it waits."""
    hook, _ = services.webhook_create(team=mesh.orders_team, url="https://example.test/hook")
    sent = []
    monkeypatch.setattr(
        "meshportal.queue._publish", lambda name, args, kwargs, options: sent.append(args)
    )
    monkeypatch.setattr(webhook_targets, "post", lambda url, body, headers, timeout: 503)
    client.force_login(mesh.owner)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/webhooks/{hook.pk}/test/")
    (delivery_id,) = sent[0]
    with pytest.raises(services.DeliveryFailed):
        services.webhook_deliver(delivery_id=delivery_id)
    assert WebhookDelivery.objects.get(pk=delivery_id).status == "pending"
    return hook, delivery_id


def _problems(caplog):
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_the_retry_after_the_webhook_was_deleted_is_dropped_quietly(
    client, queued_delivery, caplog
):
    hook, delivery_id = queued_delivery
    assert client.post(f"/webhooks/{hook.pk}/delete/").status_code == 302
    assert not Webhook.objects.filter(pk=hook.pk).exists()
    caplog.set_level(logging.INFO)
    # The retry, as the worker runs it.
    result = deliver_webhook.apply(args=[delivery_id], retries=1)
    assert result.successful() and result.result == "dropped"
    assert not _problems(caplog), [r.getMessage() for r in _problems(caplog)]
    said = [r for r in caplog.records if r.name.startswith("governance")]
    assert [r.levelno for r in said] == [logging.INFO]
    assert (
        said[0].getMessage() == f"Webhook delivery {delivery_id} dropped: its webhook was deleted."
    )


def test_a_webhook_deleted_while_its_delivery_is_being_sent(queued_delivery, monkeypatch, caplog):
    hook, delivery_id = queued_delivery

    def post_while_deleted(url, body, headers, timeout):
        services.webhook_delete(hook=Webhook.objects.get(pk=hook.pk))
        return 503

    monkeypatch.setattr(webhook_targets, "post", post_while_deleted)
    caplog.set_level(logging.INFO)
    result = deliver_webhook.apply(args=[delivery_id], retries=1)
    assert result.successful() and result.result == "dropped"
    assert not _problems(caplog), [r.getMessage() for r in _problems(caplog)]
