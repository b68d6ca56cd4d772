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
