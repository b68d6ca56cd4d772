"""A table run records its checks together: the product's trust is refreshed once and the
incidents are opened in one pass, however many checks the table has (issue 17, "trust
refreshed once per table run")."""

from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from governance.models import Incident, ProductQuality, QualityCheck, QualityRun
from governance.quality import services


def _queue(port, n_passing: int, n_failing: int) -> list[int]:
    runs = []
    for i in range(n_passing + n_failing):
        check = QualityCheck.objects.create(
            port=port,
            name=f"rows {i}",
            kind="row_count",
            params={"min": 1 if i < n_passing else 10**9},
        )
        deadline = timezone.now() + timedelta(minutes=5)
        runs.append(QualityRun.objects.create(quality_check=check, deadline=deadline).pk)
    return runs


def test_one_trust_refresh_per_table_run(checked_port, monkeypatch):
    refreshed = []
    real = services.product_quality_refresh
    monkeypatch.setattr(
        services, "product_quality_refresh", lambda **kw: refreshed.append(kw) or real(**kw)
    )
    outcome = services.execute_runs(run_ids=_queue(checked_port.port, 3, 2))
    assert sorted(outcome.values()) == ["failed", "failed", "passed", "passed", "passed"]
    assert len(refreshed) == 1
    state = ProductQuality.objects.get(product=checked_port.product)
    assert state.trust_score < 100  # the two failing checks count
    assert Incident.objects.filter(quality_check__port=checked_port.port).count() == 2


def test_more_checks_on_a_table_cost_no_more_trust_queries(checked_port):
    with CaptureQueriesContext(connection) as few:
        services.execute_runs(run_ids=_queue(checked_port.port, 1, 1))
    QualityCheck.objects.all().delete()
    with CaptureQueriesContext(connection) as many:
        services.execute_runs(run_ids=_queue(checked_port.port, 6, 6))
    trust = [q for q in many.captured_queries if "governance_productquality" in q["sql"]]
    trust_few = [q for q in few.captured_queries if "governance_productquality" in q["sql"]]
    assert len(trust) <= len(trust_few)  # (the first refresh also creates the row)


def _run_counting_queries(port, n_passing: int, n_failing: int) -> int:
    runs = _queue(port, n_passing, n_failing)
    with CaptureQueriesContext(connection) as run:
        services.execute_runs(run_ids=runs)
    return len(run.captured_queries)


def test_a_table_run_costs_the_same_portal_queries_for_2_or_10_checks(checked_port):
    """Claims, results, checks, alerts (one per check whose state changed), incidents and
    trust: set-based, so ten checks cost no more portal queries than two."""
    _run_counting_queries(checked_port.port, 1, 1)  # the trust row and incidents exist after
    QualityCheck.objects.all().delete()
    two = _run_counting_queries(checked_port.port, 1, 1)
    QualityCheck.objects.all().delete()
    ten = _run_counting_queries(checked_port.port, 5, 5)
    assert ten == two, (two, ten)
    assert QualityRun.objects.filter(status="failed").count() == 5
    assert QualityCheck.objects.filter(last_status="failed").count() == 5


def test_tables_of_one_source_share_a_connection_and_one_catalogue_read(checked_port, monkeypatch):
    """Two tables of one data source in one task: one connection (one role check) and the
    catalogue of both read once, for their schema checks."""
    from governance.quality import engine
    from products.models import OutputPort

    other = OutputPort.objects.create(
        product=checked_port.mesh.products[("users", "published")],
        slug="known-too",
        name="Known too",
        data_source=checked_port.source,
        location=checked_port.port.location,
    )
    calls = {"connect": 0, "columns_many": 0, "columns": 0}
    real_connect = engine.connect

    def connect(*a, **kw):
        calls["connect"] += 1
        return real_connect(*a, **kw)

    monkeypatch.setattr(engine, "connect", connect)
    for name in ("columns_many", "columns"):
        for cls in (engine.PostgresConnection, engine.SqliteConnection):
            real = getattr(cls, name)

            def spy(self, *a, _real=real, _name=name, **kw):
                calls[_name] += 1
                return _real(self, *a, **kw)

            monkeypatch.setattr(cls, name, spy)
    runs = []
    for port in (checked_port.port, other):
        check = QualityCheck.objects.create(port=port, name="schema", kind="schema")
        deadline = timezone.now() + timedelta(minutes=5)
        runs.append(QualityRun.objects.create(quality_check=check, deadline=deadline).pk)
    outcome = services.execute_runs(run_ids=runs)
    assert set(outcome) == set(runs)
    assert all(status in ("passed", "failed") for status in outcome.values()), outcome
    assert calls == {"connect": 1, "columns_many": 1, "columns": 0}, calls


def test_a_run_the_sweeper_ended_stays_ended(checked_port, monkeypatch):
    """The sweeper gives up on a run while the table is being scanned: the run keeps the
    sweeper's error, and the table's other runs are recorded."""
    from governance.quality import engine

    runs = _queue(checked_port.port, 2, 0)
    real = engine.SourceSession.run_table

    def scan_then_sweep(self, *a, **kw):
        results = real(self, *a, **kw)
        QualityRun.objects.filter(pk=runs[0]).update(status="error", message="swept")
        return results

    monkeypatch.setattr(engine.SourceSession, "run_table", scan_then_sweep)
    outcome = services.execute_runs(run_ids=runs)
    assert outcome == {runs[0]: "swept", runs[1]: "passed"}
    assert QualityRun.objects.get(pk=runs[0]).message == "swept"
    assert QualityRun.objects.get(pk=runs[1]).status == "passed"


def test_a_portal_database_error_while_recording_is_raised_for_the_task_to_retry(
    checked_port, monkeypatch
):
    """Only the data source's failures become error results: an error of the portal's own
    database propagates (the Celery task retries OperationalError with backoff)."""
    import pytest
    from django.db import OperationalError

    def broken(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(services, "_record_table", broken)
    with pytest.raises(OperationalError):
        services.execute_runs(run_ids=_queue(checked_port.port, 1, 0))


def test_an_unreachable_source_fails_every_table_with_its_reason(checked_port):
    """The source cannot be opened: each of its tables' runs ends as an error saying why."""
    checked_port.source.host, checked_port.source.port = "127.0.0.1", 1  # nothing listens
    checked_port.source.kind = "postgresql"
    checked_port.source.save()
    runs = _queue(checked_port.port, 2, 0)
    assert set(services.execute_runs(run_ids=runs).values()) == {"error"}
    messages = set(QualityRun.objects.filter(pk__in=runs).values_list("message", flat=True))
    assert len(messages) == 1 and messages.pop()
