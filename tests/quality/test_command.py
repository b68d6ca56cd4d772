"""`manage.py run_quality_checks`: the checks once, through the same services, results printed;
exit status 1 when a check failed (for CI pipelines)."""

import pytest
from django.core.management import CommandError, call_command

from governance.models import QualityRun
from governance.quality import services


def _checks(port):
    services.check_create(
        port=port, name="Names", kind="missing", columns=["name"], params={"max": 0}
    )
    services.check_create(port=port, name="Rows", kind="row_count", params={"min": 1})


def test_here_runs_the_products_checks_and_prints_results(checked_port, capsys):
    _checks(checked_port.port)
    urn = checked_port.port.product.urn
    with pytest.raises(SystemExit) as exited:
        call_command("run_quality_checks", "--product", urn, "--here")
    out = capsys.readouterr().out
    assert exited.value.code == 1  # "Names" fails: one name is missing
    assert f"FAILED  {urn} · Names (observed 1" in out
    assert f"PASSED  {urn} · Rows" in out
    assert "1 passed, 1 failed or could not run." in out
    assert QualityRun.objects.filter(trigger="manual").count() == 2


def test_without_here_the_runs_are_queued_and_a_bad_urn_is_refused(checked_port, capsys):
    _checks(checked_port.port)
    call_command("run_quality_checks")
    assert "Queued 2 run(s) for the workers." in capsys.readouterr().out
    assert QualityRun.objects.filter(status="queued").count() == 2
    call_command("run_quality_checks")  # already queued: not twice
    assert "2 check(s) already queued or running" in capsys.readouterr().out
    with pytest.raises(CommandError, match="Not a product URN"):
        call_command("run_quality_checks", "--product", "orders/published-product")
    call_command("run_quality_checks", "--product", "urn:mesh:nowhere:nothing")
    assert "No enabled quality checks to run." in capsys.readouterr().out


@pytest.mark.redis
@pytest.mark.postgres
def test_wait_gets_the_results_from_a_real_worker(celery_worker, checked_port, capsys):
    services.check_create(port=checked_port.port, name="Rows", kind="row_count", params={"min": 1})
    call_command("run_quality_checks", "--wait", "--timeout", "60")
    out = capsys.readouterr().out
    assert "PASSED" in out and "1 passed, 0 failed" in out
