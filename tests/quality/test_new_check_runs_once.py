"""A new check runs once: the first run queued when it is defined (page or API) is the one its
schedule wanted, so the scheduler does not run it again straight after."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from governance.models import QualityCheck, QualityRun
from governance.quality import services


def _runs_after_first_and_dispatch() -> int:
    (run,) = QualityRun.objects.all()
    services.execute_runs(run_ids=[run.pk])
    services.dispatch_due(now=timezone.now() + timedelta(minutes=1))
    return QualityRun.objects.count()


def test_a_check_defined_in_the_api_runs_once(checked_port):
    c = APIClient()
    c.force_login(checked_port.mesh.member)
    r = c.post(
        "/api/v1/quality-checks/",
        {"port": checked_port.port.pk, "name": "rows", "kind": "row_count", "params": {"min": 1}},
        format="json",
    )
    assert r.status_code == 201, r.json()
    assert _runs_after_first_and_dispatch() == 1
    check = QualityCheck.objects.get()
    assert check.next_run_at > timezone.now() + timedelta(minutes=30)  # the next one is due later


def test_a_check_defined_on_the_page_runs_once(client, checked_port):
    client.force_login(checked_port.mesh.member)
    url = reverse(
        "governance:quality_check_create",
        args=[checked_port.product.domain.slug, checked_port.product.slug],
    )
    r = client.post(
        url,
        {
            "port": checked_port.port.pk,
            "name": "rows",
            "kind": "row_count",
            "min": "1",
            "interval_minutes": "60",
        },
    )
    assert r.status_code == 302
    assert _runs_after_first_and_dispatch() == 1


@pytest.mark.django_db
def test_run_now_keeps_a_schedule_that_is_not_due(checked_port):
    check = services.check_create(
        port=checked_port.port, name="rows", kind="row_count", params={"min": 1}
    )
    later = timezone.now() + timedelta(minutes=45)
    QualityCheck.objects.filter(pk=check.pk).update(next_run_at=later)
    services.run_now(checks=[QualityCheck.objects.get(pk=check.pk)])
    assert QualityCheck.objects.get(pk=check.pk).next_run_at == later
