"""A real Celery worker on Redis runs scheduled checks end to end; a killed worker and a
timed-out query are recovered."""

import os
import signal
from datetime import timedelta

import pytest
from django.utils import timezone

from governance.models import QualityCheck, QualityRun
from governance.quality import services
from governance.quality.tasks import dispatch_due_checks
from tests.conftest import wait_for

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


@pytest.fixture
def worker_port(celery_worker, checked_port):
    return checked_port


@pytest.fixture(params=["postgresql"])
def warehouse(request):
    """Worker tests use the PostgreSQL warehouse only (statement timeout, committed tables)."""
    return request.getfixturevalue("pg_warehouse")


def _status(run_id):
    return QualityRun.objects.get(pk=run_id).status


def test_beat_dispatch_runs_checks_on_the_worker(worker_port):
    a = services.check_create(
        port=worker_port.port, name="Names", kind="missing", columns=["name"], params={"max": 0}
    )
    b = services.check_create(
        port=worker_port.port, name="Rows", kind="row_count", params={"min": 1}
    )
    dispatch_due_checks.apply_async(queue="quality")  # as beat does every minute
    wait_for(
        lambda: QualityRun.objects.filter(status__in=["passed", "failed"]).count() == 2, timeout=60
    )
    assert QualityRun.objects.get(quality_check=a).observed == 1
    assert QualityRun.objects.get(quality_check=b).status == "passed"
    a.refresh_from_db()
    assert a.last_status == "failed" and a.next_run_at > timezone.now()


def test_a_killed_worker_and_a_timed_out_query_are_recovered(worker_port, celery_worker):
    slow = services.check_create(
        port=worker_port.port,
        name="Slow",
        kind="custom_sql",
        timeout_seconds=30,
        # pure SQL that runs long (pg_sleep is not an allowed function); ended below
        params={
            "sql": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
            "WHERE x < 1000000000) SELECT COUNT(*) FROM c"
        },
    )
    [run] = services.run_now(checks=[slow])
    wait_for(lambda: _status(run.pk) == "running", timeout=60)
    os.kill(celery_worker.pid, signal.SIGKILL)  # mid-query
    celery_worker.wait(10)
    assert _status(run.pk) == "running"
    # The sweeper (run by the every-minute dispatch) ends it once its deadline has passed.
    later = (
        timezone.now()
        + timedelta(seconds=slow.timeout_seconds)
        + services.RUN_GRACE
        + timedelta(seconds=5)
    )
    services.sweep_stuck(now=later)
    run.refresh_from_db()
    assert run.status == "error" and "worker stopped" in run.message
    slow.refresh_from_db()
    assert slow.last_status == "error"
    # The next schedule proceeds: a short timeout now cancels the query in the database.
    QualityCheck.objects.filter(pk=slow.pk).update(timeout_seconds=1)
    slow.refresh_from_db()
    [again] = services.run_now(checks=[slow])
    services.execute_runs(run_ids=[again.pk])
    again.refresh_from_db()
    assert again.status == "error" and "timeout" in again.message
    assert again.duration_ms < 5000
    # The killed worker's query is still running in PostgreSQL until its timeout: end it so
    # the test database can be dropped.
    import psycopg

    from tests.quality.conftest import pg_dsn_kwargs

    with psycopg.connect(**pg_dsn_kwargs(), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
            "application_name = 'mesh-portal-quality' AND datname = current_database()"
        )
