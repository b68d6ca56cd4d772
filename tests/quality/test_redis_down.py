"""Redis down (broker and cache): every door that starts work stores the task and answers
success-with-delay; the stored work runs on a real worker once Redis is back."""

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from governance.models import EvaluationRun, QualityRun
from governance.quality.services import check_create
from meshportal import queue
from meshportal.api.auth import token_create
from meshportal.celery import app
from meshportal.models import PendingTask
from tests.conftest import wait_for
from tests.prod_env import closed_port
from tests.quality.conftest import _sqlite_warehouse
from tests.test_faults_broker import _switch_broker

pytestmark = pytest.mark.redis

DOORS = ["page", "api", "token"]


@pytest.fixture
def warehouse(tmp_path):
    """The SQLite warehouse: the worker reads it from the file; one is enough here."""
    return _sqlite_warehouse(tmp_path / "known.sqlite3")


@pytest.fixture
def redis_down(settings, monkeypatch):
    """Broker and cache both point at a Redis port nothing listens on; restore() brings the
    real broker back (the cache stays down: the portal must not need it)."""
    original = app.conf.broker_url
    monkeypatch.setenv("CELERY_BROKER_URL", original)
    dead = f"redis://127.0.0.1:{closed_port()}"
    settings.CACHES = {
        "default": {
            "BACKEND": "meshportal.cache.FailOpenRedisCache",
            "LOCATION": f"{dead}/1",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    settings.CELERY_BROKER_URL = f"{dead}/0"
    _switch_broker(f"{dead}/0")

    class Redis:
        def restore(self):
            settings.CELERY_BROKER_URL = original
            _switch_broker(original)

    yield Redis()
    _switch_broker(original)


def _client(door, user):
    if door == "page":
        from django.test import Client

        client = Client()
        client.force_login(user)
        return client
    client = APIClient()
    if door == "api":
        client.force_login(user)
    else:
        _, key = token_create(user=user, name="ci")
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.mark.parametrize("door", DOORS)
def test_run_now_is_kept_and_runs_when_redis_returns(
    door, transactional_db, checked_port, redis_down, request
):
    mesh = checked_port.mesh
    check = check_create(
        port=checked_port.port, name="Rows", kind="row_count", params={"min": 1}, by=mesh.owner
    )
    QualityRun.objects.all().delete()
    PendingTask.objects.all().delete()
    client = _client(door, mesh.owner)

    if door == "page":
        response = client.post(f"/quality/checks/{check.pk}/run/", follow=True)
        assert response.status_code == 200
        assert "saved and will run automatically" in response.text
    else:
        response = client.post(f"/api/v1/quality-checks/{check.pk}/run/")
        assert response.status_code == 202, response.content
        assert response.json()["status"] == "queued"
    run = QualityRun.objects.get(quality_check=check)
    assert PendingTask.objects.filter(sent_at__isnull=True).count() == 1

    redis_down.restore()
    request.getfixturevalue("celery_worker")
    assert queue.send_pending() == {"sent": 1, "failed": 0}
    wait_for(lambda: QualityRun.objects.get(pk=run.pk).status == "passed", timeout=60)


@pytest.mark.parametrize("door", DOORS)
def test_evaluate_now_is_kept_and_runs_when_redis_returns(
    door, transactional_db, mesh, redis_down, request
):
    PendingTask.objects.all().delete()
    client = _client(door, mesh.council)
    if door == "page":
        response = client.post("/governance/evaluate/", follow=True)
        assert response.status_code == 200
        assert "saved and will run automatically" in response.text
    else:
        response = client.post("/api/v1/compliance/evaluate/")
        assert response.status_code == 202, response.content
        assert response.json()["queued"] is False
        assert "saved and will run automatically" in response.json()["detail"]
    assert PendingTask.objects.filter(sent_at__isnull=True).count() == 1
    before = EvaluationRun.objects.filter(trigger=EvaluationRun.Trigger.MANUAL).count()

    redis_down.restore()
    request.getfixturevalue("celery_worker")
    assert queue.send_pending() == {"sent": 1, "failed": 0}
    wait_for(
        lambda: (
            EvaluationRun.objects.filter(
                trigger=EvaluationRun.Trigger.MANUAL, finished_at__isnull=False
            ).count()
            > before
        ),
        timeout=60,
    )


def test_pages_and_token_api_answer_while_the_cache_is_down(mesh, redis_down):
    """The API throttle counts in the cache: with Redis down it lets requests through."""
    assert cache.get("anything", "fallback") == "fallback"
    for door in DOORS:
        client = _client(door, mesh.owner)
        path = "/products/" if door == "page" else "/api/v1/products/"
        assert client.get(path).status_code == 200, door
