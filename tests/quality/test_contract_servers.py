"""Exports carry `servers` built from the ports' data sources and `physicalName` as the bare
object name, as the ODCS examples and datacontract-cli expect; import maps a server back to
the registered data source. Nobody without access sees either."""

import pytest
import yaml
from rest_framework.test import APIClient

from products.contracts import services as contracts

pytestmark = pytest.mark.postgres


@pytest.fixture(params=["postgresql"])
def warehouse(request):
    return request.getfixturevalue("pg_warehouse")


def _export(user, product) -> dict:
    c = APIClient()
    c.force_authenticate(user)
    r = c.get(f"/api/v1/products/{product.domain.slug}/{product.slug}/contract")
    assert r.status_code == 200
    return yaml.safe_load(r.content)


def test_export_has_the_server_and_the_bare_object_name(checked_port):
    port, ds = checked_port.port, checked_port.port.data_source
    contracts.record_version(port.product)  # the fixture moved the port without the services
    doc = _export(checked_port.mesh.owner, port.product)
    schema, _, table = port.location.rpartition(".")
    assert doc["servers"] == [
        {
            "server": ds.slug,
            "type": "postgres",
            "host": ds.host or "localhost",
            "port": ds.port or 5432,
            "database": ds.database,
            "schema": schema,
        }
    ]
    assert doc["schema"][0]["physicalName"] == table
    text = yaml.safe_dump(doc)
    assert ds.user not in text.split() and "password" not in text  # never credentials
    contracts.validate(doc)  # still valid against the official schema
    # The exported document re-imports as no change.
    again = contracts.contract_import(text=text, user=checked_port.mesh.owner)
    assert not again.changed


def test_import_maps_the_server_to_the_registered_data_source(checked_port):
    port = checked_port.port
    doc = _export(checked_port.mesh.owner, port.product)
    doc["dataProduct"], doc["id"], doc["name"] = "copy", "urn:mesh:orders:copy", "Copy"
    result = contracts.contract_import(text=yaml.safe_dump(doc), user=checked_port.mesh.owner)
    copy = result.product.ports.get()
    assert (copy.data_source, copy.location) == (port.data_source, port.location)


def test_people_without_access_get_neither(checked_port):
    doc = _export(checked_port.mesh.consumer, checked_port.port.product)
    assert "servers" not in doc
    assert all("physicalName" not in o for o in doc["schema"])
