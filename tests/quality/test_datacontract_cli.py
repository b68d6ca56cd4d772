"""datacontract-cli, the most used open-source contract tool, reads the portal's exports:
`datacontract lint` accepts them and `datacontract test` runs them against the warehouse and
agrees with the portal's own checks. It lives in its own environment (its dependencies are
many): `make datacontract-cli` installs it into .venv-datacontract."""

import json
import os
import re
import subprocess  # nosec B404
from pathlib import Path

import pytest
import yaml
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from governance.models import QualityRun
from governance.quality import services as quality_services
from products.models import SchemaField
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
    # Fixed arguments.
    return subprocess.run(  # nosec B603
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
            "quality_check__name", "status"
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


# Declarations on the known table (tests/quality/conftest.py): id a primary key; name
# required and unique; status and amount unique; created_at required.
DECLARED = {
    "id": {"primary_key": True},
    "name": {"required": True, "unique": True},
    "status": {"unique": True},
    "amount": {"unique": True},
    "created_at": {"required": True},
}
CLI_RULE = {
    "field_required": "required",
    "field_primary_key_required": "required",
    "field_unique": "unique",
    "field_primary_key_unique": "unique",
}
FINDING = re.compile(
    r"(\w+): (?:declared required|declared unique|primary key), (\d+) (missing|duplicate) value"
)


def test_the_schema_check_finds_what_datacontract_cli_finds_in_required_and_unique(
    checked_port, tmp_path
):
    """datacontract-cli checks every declared `required` (missing values) and `unique`
    (duplicates) property; the portal's schema check finds the same violations on the same
    fields. Counts of missing values are equal; for duplicates the portal counts the rows that
    repeat a value (as its duplicates check does) and datacontract-cli the values repeated, so
    they differ only where a value occurs three times or more (status: 'ok' four times)."""
    port = checked_port.port
    for name, flags in DECLARED.items():
        SchemaField.objects.filter(port=port, name=name).update(**flags)
    check = quality_services.check_create(port=port, name="Schema", kind="schema")
    (run,) = quality_services.run_now(checks=[check])
    quality_services.execute_runs(run_ids=[run.pk])
    run.refresh_from_db()
    assert run.status == "failed", run.message
    portal = {
        (field, "required" if kind == "missing" else "unique"): int(n)
        for field, n, kind in FINDING.findall(run.message)
    }

    c = APIClient()
    c.force_authenticate(checked_port.mesh.owner)
    (tmp_path / "contract.yaml").write_bytes(
        c.get("/api/v1/products/orders/published-product/contract").content
    )
    tested = _cli(
        "test", "contract.yaml", "--output", "result.json", "--output-format", "json", cwd=tmp_path
    )
    result = json.loads((tmp_path / "result.json").read_text())
    checked = [c for c in result["checks"] if c["type"] in CLI_RULE]
    theirs = {
        (c["field"], CLI_RULE[c["type"]]): int((c.get("diagnostics") or {}).get("value", -1))
        for c in checked
        if c["result"] == "failed"
    }
    # Every declaration was checked by both, and nothing else failed on either side.
    assert {(c["field"], CLI_RULE[c["type"]]) for c in checked} == {
        ("id", "required"),
        ("id", "unique"),
        ("name", "required"),
        ("name", "unique"),
        ("status", "unique"),
        ("amount", "unique"),
        ("created_at", "required"),
    }, tested.stdout[-2000:]
    assert all(c["result"] in ("passed", "failed") for c in checked), checked
    assert set(theirs) == set(portal), (theirs, run.message)
    assert theirs == {**portal, ("status", "unique"): 1}
    assert portal[("status", "unique")] == 3


def test_on_the_demo_mesh_the_schema_checks_fail_as_datacontract_cli_reports(
    demo_committed, tmp_path
):
    """Issue 16: on the demo warehouse datacontract-cli finds order_id (unique) with 5
    duplicates, email (unique) with 5 and customer_id (required) with 46 missing values. The
    portal's schema checks of those products now find exactly these, with the same counts."""
    quality_services.dispatch_due()
    quality_services.execute_runs(run_ids=list(QualityRun.objects.values_list("pk", flat=True)))
    portal, theirs = {}, {}
    for run in QualityRun.objects.filter(quality_check__kind="schema").select_related(
        "quality_check__port__product__owner_team"
    ):
        product = run.quality_check.port.product
        if product.ports.filter(data_source__isnull=False).exclude(data_source__kind="postgresql"):
            # datacontract-cli tests every object against one server; the demo's Shipments
            # also has Parquet files through DuckDB (tests/quality/test_engines_live.py).
            continue
        portal |= {
            (product.slug, field, "required" if kind == "missing" else "unique"): int(n)
            for field, n, kind in FINDING.findall(run.message)
        }
        owner = get_user_model().objects.filter(
            memberships__team=product.owner_team, memberships__role="owner"
        )[0]
        c = APIClient()
        c.force_authenticate(owner)
        name = f"{product.slug}.yaml"
        url = f"/api/v1/products/{product.domain.slug}/{product.slug}/contract"
        (tmp_path / name).write_bytes(c.get(url).content)
        out = f"{product.slug}.json"
        tested = _cli("test", name, "--output", out, "--output-format", "json", cwd=tmp_path)
        result = json.loads((tmp_path / out).read_text())
        checked = [c for c in result["checks"] if c["type"] in CLI_RULE]
        assert checked and all(c["result"] in ("passed", "failed") for c in checked), tested.stdout[
            -2000:
        ]
        theirs |= {
            (product.slug, c["field"], CLI_RULE[c["type"]]): int(c["diagnostics"]["value"])
            for c in checked
            if c["result"] == "failed"
        }
    assert (
        portal
        == theirs
        == {
            ("orders", "order_id", "unique"): 5,
            ("orders", "customer_id", "required"): 46,
            ("customer-profiles", "email", "unique"): 5,
        }
    )
