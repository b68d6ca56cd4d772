"""datacontract-cli, the most used open-source contract tool, reads the portal's exports:
`datacontract lint` accepts them and `datacontract test` runs them against the warehouse and
agrees with the portal's own checks. It lives in its own environment (its dependencies are
many): `make datacontract-cli` installs it into .venv-datacontract."""

import json
import os
import subprocess  # nosec B404 - runs the datacontract-cli installed for the tests
from pathlib import Path

import pytest
import yaml
from rest_framework.test import APIClient

from governance.models import QualityRun
from governance.quality import services as quality_services
from tests.conftest import FAIL_ON_SKIP
from tests.quality.conftest import pg_dsn_kwargs

pytestmark = pytest.mark.postgres
CLI = Path(__file__).resolve().parents[2] / ".venv-datacontract" / "bin" / "datacontract"


@pytest.fixture(params=["postgresql"])
def warehouse(request):
    return request.getfixturevalue("pg_warehouse")


def _cli(*args, cwd) -> subprocess.CompletedProcess:
    if not CLI.exists():
        (pytest.fail if FAIL_ON_SKIP else pytest.skip)(
            "datacontract-cli is not installed: make datacontract-cli"
        )
    kw = pg_dsn_kwargs()
    env = {
        **os.environ,
        "DATACONTRACT_POSTGRES_USERNAME": kw.get("user") or "postgres",
        "DATACONTRACT_POSTGRES_PASSWORD": kw.get("password") or "unused-with-trust-auth",
    }
    return subprocess.run(  # nosec B603 - fixed arguments
        [str(CLI), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_datacontract_cli_lints_an_export_and_agrees_with_the_portal(checked_port, tmp_path):
    port = checked_port.port
    checks = [
        quality_services.check_create(port=port, name="Rows", kind="row_count", params={"min": 1}),
        quality_services.check_create(
            port=port, name="Names", kind="missing", columns=["name"], params={"max": 0}
        ),
    ]
    runs = quality_services.run_now(checks=checks)
    quality_services.execute_runs(run_ids=[r.pk for r in runs])
    portal = dict(
        QualityRun.objects.filter(pk__in=[r.pk for r in runs]).values_list(
            "check_obj__name", "status"
        )
    )
    assert portal == {"Rows": "passed", "Names": "failed"}  # the known table lacks one name

    c = APIClient()
    c.force_authenticate(checked_port.mesh.owner)
    (tmp_path / "contract.yaml").write_bytes(
        c.get("/api/v1/products/orders/published-product/contract").content
    )
    lint = _cli("lint", "contract.yaml", cwd=tmp_path)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    tested = _cli(
        "test", "contract.yaml", "--output", "result.json", "--output-format", "json", cwd=tmp_path
    )
    result = json.loads((tmp_path / "result.json").read_text())
    theirs = {
        yaml.safe_load(check["qualityDefinition"])["name"]: check["result"]
        for check in result["checks"]
        if check["category"] == "quality" and check.get("qualityDefinition")
    }
    assert theirs == portal, tested.stdout[-2000:]
    schema = [c for c in result["checks"] if c["category"] == "schema"]
    assert schema and all(c["result"] == "passed" for c in schema)  # the server was reachable
