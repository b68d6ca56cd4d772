"""A client generated from /api/schema/ by openapi-python-client runs the CI flow unmodified:
create a draft from a contract, update it, add a quality check with nested params, publish it,
read its quality results. Every generated module imports."""

import importlib
import pkgutil
import subprocess  # nosec B404
import sys
from pathlib import Path

import pytest

from governance.models import QualityRun
from governance.quality import services as quality_services
from meshportal.api.auth import token_create
from products import services
from products.models import DataProduct
from tests.conftest import FAIL_ON_SKIP

GENERATOR = Path(sys.executable).parent / "openapi-python-client"


@pytest.fixture
def mesh_client(live_server, tmp_path, monkeypatch):
    if not GENERATOR.exists():
        (pytest.fail if FAIL_ON_SKIP else pytest.skip)(
            "openapi-python-client is a dev dependency: make dev-install"
        )
    import requests

    schema = tmp_path / "schema.json"
    schema.write_bytes(
        requests.get(f"{live_server.url}/api/schema/?format=json", timeout=30).content
    )
    # Fixed arguments.
    subprocess.run(  # nosec B603
        [str(GENERATOR), "generate", "--path", str(schema), "--meta", "none"]
        + ["--output-path", str(tmp_path / "mesh_client")],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module("mesh_client")
    for name in [n for n in sys.modules if n == "mesh_client" or n.startswith("mesh_client.")]:
        del sys.modules[name]


def test_every_generated_module_imports(mesh_client):
    api = importlib.import_module("mesh_client.api")
    names = [m.name for m in pkgutil.walk_packages(api.__path__, "mesh_client.api.")]
    assert len(names) > 60
    for name in names:
        importlib.import_module(name)


def test_the_ci_flow_runs_on_the_generated_client(mesh_client, live_server, checked_port):
    from mesh_client import AuthenticatedClient
    from mesh_client.api.products import (
        products_contract_update,
        products_partial_update,
        products_publish_create,
    )
    from mesh_client.api.quality_checks import quality_checks_create, quality_checks_run_create
    from mesh_client.api.quality_runs import quality_runs_list
    from mesh_client.models import (
        PatchedProductDetailRequest,
        ProductsContractUpdateJsonBody,
        QualityCheckRequest,
    )

    mesh = checked_port.mesh
    _, secret = token_create(user=mesh.owner, name="ci")
    client = AuthenticatedClient(base_url=live_server.url, token=secret)
    doc = {
        "apiVersion": "v3.0.2",
        "kind": "DataContract",
        "id": "urn:mesh:orders:returns",
        "version": "1.0.0",
        "status": "draft",
        "name": "Returns",
        "domain": "orders",
        "dataProduct": "returns",
        "schema": [
            {
                "name": "returns",
                "physicalType": "table",
                "properties": [{"name": "name", "logicalType": "string"}],
            }
        ],
    }
    created = products_contract_update.sync_detailed(
        "orders", "returns", client=client, body=ProductsContractUpdateJsonBody.from_dict(doc)
    )
    assert created.status_code == 201, created.content
    updated = products_partial_update.sync(
        "orders",
        "returns",
        client=client,
        body=PatchedProductDetailRequest(summary="Returned orders, one row each"),
    )
    assert updated.summary == "Returned orders, one row each"

    # The platform team links the port to the warehouse table (a data source is theirs).
    product = DataProduct.objects.get(slug="returns")
    services.port_update(
        port=product.ports.get(),
        data_source=checked_port.port.data_source,
        location=checked_port.port.location,
    )
    check = quality_checks_create.sync(
        client=client,
        body=QualityCheckRequest.from_dict(
            {
                "port": product.ports.get().pk,
                "name": "Has rows",
                "kind": "row_count",
                "params": {"min": 1, "max": 1_000_000},  # nested: the form-encoded body lost it
            }
        ),
    )
    assert check.params.to_dict() == {"min": 1, "max": 1_000_000}
    published = products_publish_create.sync("orders", "returns", client=client)
    assert published.status == "published"
    quality_checks_run_create.sync_detailed(check.id, client=client)
    queued = QualityRun.objects.filter(quality_check_id=check.id, status="queued")
    quality_services.execute_runs(run_ids=[r.pk for r in queued])  # as the quality worker does
    runs = quality_runs_list.sync(client=client, product=product.urn)
    assert [(r.check, r.status.value) for r in runs.results] == [(check.id, "passed")]
