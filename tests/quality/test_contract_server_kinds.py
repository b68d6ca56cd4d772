"""ODCS `servers` of every warehouse kind: a port on a data source of the kind exports as a
server of the matching type (never a user or a secret), the document stays valid against the
official schema, and a re-import maps the server back to the same data source and location."""

import pytest
import yaml

from governance.models import DataSource
from products.contracts import services as contracts

KINDS = [
    (
        {"kind": "mysql", "host": "db.internal", "port": 3306, "database": "shop"},
        "orders",
        {"type": "mysql", "host": "db.internal", "port": 3306, "database": "shop"},
        "orders",
    ),
    (
        {"kind": "redshift", "host": "rs.aws", "database": "dwh", "user": "reader"},
        "sales.orders",
        {"type": "redshift", "host": "rs.aws", "database": "dwh", "schema": "sales"},
        "orders",
    ),
    (
        {"kind": "snowflake", "host": "acme-xy123", "database": "ANALYTICS", "user": "reader",
         "options": {"warehouse": "WH"}},
        "SALES.ORDERS",
        {"type": "snowflake", "account": "acme-xy123", "database": "ANALYTICS",
         "schema": "SALES"},
        "ORDERS",
    ),
    (
        {"kind": "bigquery", "database": "acme-analytics", "secret_file": "bq.json"},
        "sales.orders",
        {"type": "bigquery", "project": "acme-analytics", "dataset": "sales"},
        "orders",
    ),
    (
        {"kind": "databricks", "host": "adb-1.azuredatabricks.net",
         "options": {"http_path": "/sql/1.0/warehouses/abc", "catalog": "main"}},
        "sales.orders",
        {"type": "databricks", "host": "adb-1.azuredatabricks.net", "catalog": "main",
         "schema": "sales"},
        "orders",
    ),
    (
        {"kind": "trino", "host": "trino.internal", "port": 8443, "database": "hive"},
        "sales.orders",
        {"type": "trino", "host": "trino.internal", "port": 8443, "catalog": "hive",
         "schema": "sales"},
        "orders",
    ),
    (
        {"kind": "duckdb", "database": "/data/warehouse.duckdb"},
        "main.orders",
        {"type": "duckdb", "database": "/data/warehouse.duckdb", "schema": "main"},
        "orders",
    ),
    (
        {"kind": "duckdb", "options": {"file_root": "/data/lake"}},
        "orders/*.parquet",
        {"type": "local", "path": "/data/lake/orders/*.parquet", "format": "parquet"},
        "orders/*.parquet",
    ),
]  # fmt: skip


@pytest.fixture(params=KINDS, ids=lambda k: k[2]["type"])
def on_kind(request, mesh):
    fields, location, server, physical = request.param
    ds = DataSource.objects.create(slug=f"src-{fields['kind']}", name="Source", **fields)
    product = mesh.products[("orders", "published")]
    port = product.ports.get()
    port.data_source, port.location = ds, location
    port.save()
    contracts.record_version(product)
    return ds, port, server, physical


def test_export_names_the_server_of_the_kind(on_kind, mesh):
    ds, port, server, physical = on_kind
    text = contracts.export_yaml(port.product)
    doc = yaml.safe_load(text)
    (exported,) = doc["servers"]
    expected_name = f"{ds.slug}-{port.slug}" if server["type"] == "local" else ds.slug
    assert exported == {"server": expected_name, **server}
    assert doc["schema"][0]["physicalName"] == physical
    assert "reader" not in text and "bq.json" not in text  # no user, no secret reference
    contracts.validate(doc)  # valid against the official ODCS schema


def test_import_maps_the_server_back_to_the_data_source(on_kind, mesh):
    ds, port, server, physical = on_kind
    doc = yaml.safe_load(contracts.export_yaml(port.product))
    doc["dataProduct"], doc["id"], doc["name"] = "copy", "urn:mesh:orders:copy", "Copy"
    doc["servers"][0]["server"] = "named-elsewhere"  # matched by where, not by our slug
    result = contracts.contract_import(text=yaml.safe_dump(doc), user=mesh.owner)
    copy = result.product.ports.get()
    assert (copy.data_source, copy.location) == (ds, port.location)
