"""Every demo product's contract (ODCS) and product document (ODPS): valid against the official
schemas, round-tripping export → import → export unchanged, and accepted by `dataproduct lint`
(dataproduct-cli, its own environment: `make dataproduct-cli`). The module shares one seeded
demo (tests/conftest.py, `module_demo`)."""

import json
import os
import subprocess  # nosec B404
from pathlib import Path

import pytest
import yaml
from django.contrib.auth import get_user_model

from products.contracts import odps
from products.contracts import services as contracts
from products.models import DataProduct
from tests.conftest import FAIL_ON_SKIP

pytestmark = pytest.mark.django_db
CLI = Path(__file__).resolve().parents[2] / ".venv-dataproduct" / "bin" / "dataproduct"


def test_every_demo_product_round_trips_and_validates(demo):
    admin = get_user_model().objects.get(username="admin")
    products = list(DataProduct.objects.select_related("domain"))
    assert len(products) >= 20
    for product in products:
        first = contracts.export_yaml(product)
        contracts.validate(contracts.parse(first))  # the official ODCS JSON schema
        versions = product.contract_versions.count()
        result = contracts.contract_import(text=first, user=admin, product=product)
        assert not result.changed, (product.urn, [c.message for c in result.changes])
        again = contracts.export_yaml(DataProduct.objects.get(pk=product.pk))
        assert again == first, product.urn
        assert product.contract_versions.count() == versions


def test_a_product_with_a_file_port_and_a_table_port_round_trips(demo):
    # Each port keeps its own data source: the `local` server names the Parquet port's, not
    # the table's (one server was mapped to every port).
    admin = get_user_model().objects.get(username="admin")
    product = DataProduct.objects.get(domain__slug="warehousing", slug="shipments")
    sources = dict(product.ports.values_list("slug", "data_source__slug"))
    assert len(set(sources.values())) == 2, sources
    first = contracts.export_yaml(product)
    contracts.validate(contracts.parse(first))
    result = contracts.contract_import(text=first, user=admin, product=product)
    assert not result.changed, [c.message for c in result.changes]
    assert contracts.export_yaml(DataProduct.objects.get(pk=product.pk)) == first
    assert dict(product.ports.values_list("slug", "data_source__slug")) == sources
    doc = contracts.parse(first)
    doc["name"] = "Shipments (renamed)"  # a real change: applied, sources still kept apart
    contracts.contract_import(text=yaml.safe_dump(doc), user=admin, product=product)
    assert DataProduct.objects.get(pk=product.pk).name == "Shipments (renamed)"
    assert dict(product.ports.values_list("slug", "data_source__slug")) == sources


def test_every_demo_product_exports_valid_odps_and_round_trips(demo):
    admin = get_user_model().objects.get(username="admin")
    products = list(DataProduct.objects.select_related("domain").order_by("pk"))
    assert len(products) >= 20
    with_inputs = 0
    for product in products:
        first = odps.export_yaml(product, user=admin)
        doc = odps.parse(first)
        odps.validator("v1.1.0").validate(doc)  # the official schema, formats checked
        assert doc["id"] == product.urn and doc["domain"] == product.domain.slug
        assert {p["name"] for p in doc.get("outputPorts", [])} == {
            p.slug for p in product.ports.all()
        }
        for port in doc.get("outputPorts", []):
            assert port["contractId"] == product.urn and port["version"] == product.version
        with_inputs += bool(doc.get("inputPorts"))
        versions = product.contract_versions.count()
        result = odps.odps_import(text=first, user=admin, product=product)
        assert not result.changed, (product.urn, result.changes)
        assert result.ignored == [], (product.urn, result.ignored)
        again = odps.export_yaml(DataProduct.objects.get(pk=product.pk), user=admin)
        assert again == first, product.urn
        assert product.contract_versions.count() == versions
    assert with_inputs >= 5  # the demo's lineage is in the documents


# `dataproduct lint`, the CLI's own command with the arguments a person types, for each file in
# turn in one interpreter of the CLI's environment: a process per file spent most of the test
# starting Python and importing the CLI. Writes each file's exit code beside its report.
LINT_EACH = """
import json, sys
from dataproduct.cli import app
for path, out in json.loads(sys.argv[1]):
    args = ["lint", path, "--all-errors", "--output-format", "json", "--output", out]
    code = app(args, standalone_mode=False) or 0
    open(out + ".code", "w").write(str(code))
"""


def _lint(paths: list[Path], cwd: Path) -> dict[Path, dict]:
    if not CLI.exists():
        (pytest.fail if FAIL_ON_SKIP else pytest.skip)(
            "dataproduct-cli is not installed: make dataproduct-cli"
        )
    outs = {path: cwd / f"{path.stem}.lint.json" for path in paths}
    # datacontract-cli is kept off the PATH: the linked contracts are linted elsewhere
    # (tests/quality/test_datacontract_cli.py); here they must be found by their id.
    env = {**os.environ, "PATH": "/usr/bin:/bin", "NO_COLOR": "1"}
    env.pop("ENTROPY_DATA_API_KEY", None)
    done = subprocess.run(  # nosec B603
        [
            str(CLI.parent / "python"),
            "-c",
            LINT_EACH,
            json.dumps([[str(path), str(out)] for path, out in outs.items()]),
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    reports = {}
    for path, out in outs.items():
        assert Path(f"{out}.code").read_text() == "0", (path.name, out.read_text())
        reports[path] = json.loads(out.read_text())
    return reports


def test_dataproduct_lint_accepts_every_demo_export(demo, tmp_path):
    """The real CLI, on every demo product's export as its owners read it, with every
    product's ODCS contract beside it: valid ODPS, and every contractId resolves."""
    admin = get_user_model().objects.get(username="admin")
    products = list(DataProduct.objects.select_related("domain").order_by("domain__slug", "slug"))
    for product in products:
        name = f"{product.domain.slug}-{product.slug}"
        (tmp_path / f"{name}.odcs.yaml").write_text(contracts.export_yaml(product))
        (tmp_path / f"{name}.odps.yaml").write_text(odps.export_yaml(product, user=admin))
    reports = _lint([tmp_path / f"{p.domain.slug}-{p.slug}.odps.yaml" for p in products], tmp_path)
    for product in products:
        report = reports[tmp_path / f"{product.domain.slug}-{product.slug}.odps.yaml"]
        assert report["result"] == "passed", report
        assert report["dataProductId"] == product.urn
        checks = [c for c in report["checks"] if c["name"] != "datacontract-cli is runnable"]
        assert checks and all(c["result"] == "passed" for c in checks), (product.urn, checks)
