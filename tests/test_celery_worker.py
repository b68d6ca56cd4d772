"""A real task through a real Celery worker on Redis, against the test database."""

import pytest
from django.utils import timezone

from meshportal.models import AuditEntry
from products import services
from products.models import AccessRequest
from products.tasks import expire_access_grants
from tests.conftest import wait_for
from tests.factories import build_mesh


@pytest.mark.postgres
@pytest.mark.redis
def test_worker_expires_grants_and_records_the_task_door(celery_worker):
    mesh = build_mesh()
    product = mesh.products[("orders", "published")]
    req = services.access_request_create(
        product=product, requester=mesh.consumer, purpose="expiring"
    )
    services.access_request_approve(request=req, by=mesh.owner)
    AccessRequest.objects.filter(pk=req.pk).update(expires_at=timezone.now())

    expire_access_grants.delay()

    wait_for(lambda: AccessRequest.objects.get(pk=req.pk).status == "expired")
    entry = AuditEntry.objects.filter(
        object_id=str(req.pk), changes__has_key="status", door="task"
    ).first()
    assert entry is not None and entry.changes["status"] == ["approved", "expired"]
    from django.contrib.auth import get_user_model

    from meshportal.permissions import VIEW_CONNECTION, can

    assert not can(get_user_model().objects.get(pk=mesh.consumer.pk), VIEW_CONNECTION, product)


def test_beat_schedules_grant_expiry():
    from django.conf import settings

    entry = settings.CELERY_BEAT_SCHEDULE["expire-access-grants"]
    assert entry["task"] == expire_access_grants.name
    assert entry["schedule"] <= 600
