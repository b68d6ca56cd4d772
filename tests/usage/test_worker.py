"""The retention's beat task on a real Celery worker (Redis, PostgreSQL) deletes old raw
events and keeps the young ones."""

from datetime import UTC, datetime, timedelta

import pytest

from governance.models import DataSource
from tests.conftest import wait_for
from usage import services
from usage.formats import Record
from usage.models import IngestRun, QueryEvent
from usage.tasks import purge_raw_events

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


def test_retention_runs_on_the_worker(celery_worker, settings):
    source = DataSource.objects.create(slug="wh", name="WH", kind="sqlite", database="wh.db")
    now = datetime.now(UTC)
    old = timedelta(days=settings.MESH_USAGE_RAW_RETENTION_DAYS + 1)
    services.usage_ingest(
        source=source,
        door="api",
        records=[Record("a", now - old, "SELECT 1"), Record("a", now, "SELECT 1")],
    )
    purge_raw_events.apply_async()  # as beat does every hour
    wait_for(lambda: QueryEvent.objects.count() == 1, timeout=60)
    assert IngestRun.objects.count() == 1  # its run keeps the event that is still young
