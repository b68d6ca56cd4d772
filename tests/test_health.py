"""/healthz (process alive) and /readyz (database, broker, migrations) for load balancers."""

import pytest
from django.db.migrations.recorder import MigrationRecorder

from meshportal import health
from tests.prod_env import closed_port


@pytest.fixture(autouse=True)
def _fresh_migration_check(monkeypatch):
    monkeypatch.setattr(health, "_migrations_applied", False)


def test_healthz_answers_without_signing_in(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response.headers["Cache-Control"]


@pytest.mark.django_db
def test_readyz_reports_every_check(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "broker", "migrations"}
    assert all(check["ok"] for check in body["checks"].values())


@pytest.mark.django_db
def test_readyz_is_503_when_the_broker_is_unreachable(client, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"
    settings.BROKER_IS_REDIS = True
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["broker"] == {
        **body["checks"]["broker"],
        "ok": False,
        "detail": "ConnectionError",
    }
    assert body["checks"]["database"]["ok"] is True
    # The answer is public: no host names or ports in it.
    assert "127.0.0.1" not in response.text


@pytest.mark.redis
@pytest.mark.django_db
def test_readyz_pings_redis(client):
    assert client.get("/readyz").json()["checks"]["broker"]["detail"] == "redis"


@pytest.mark.django_db
def test_readyz_is_503_when_a_migration_is_not_applied(client):
    MigrationRecorder.Migration.objects.filter(app="meshportal", name="0002_pending_task").delete()
    response = client.get("/readyz")
    assert response.status_code == 503
    migrations = response.json()["checks"]["migrations"]
    assert migrations["ok"] is False
    assert "meshportal.0002_pending_task" in migrations["detail"]
