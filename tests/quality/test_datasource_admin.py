"""Data sources of every kind in the console: the form asks what each kind needs, keeps only
secret references, and "test connection" opens the real read-only connection."""

import json

import pytest
from django.urls import reverse

from governance.models import DataSource
from meshportal.models import AuditEntry
from tests.html_forms import form_data

ADD = "admin:governance_datasource_add"


def _post_add(client, mesh, **fields):
    client.force_login(mesh.staff)
    data = form_data(client.get(reverse(ADD)).text, containing="password_env")
    data.update({"max_timeout_seconds": "60", "options": "{}", "_save": "Save", **fields})
    return client.post(reverse(ADD), data)


def test_a_duckdb_file_source_is_added_and_tested_in_the_console(client, mesh, tmp_path):
    pytest.importorskip("duckdb")
    from tests.quality.conftest import _duckdb_warehouse

    w = _duckdb_warehouse(tmp_path, "parquet")
    r = _post_add(
        client,
        mesh,
        name="Lake files",
        slug="lake",
        kind="duckdb",
        options=json.dumps({"file_root": str(w.files)}),
    )
    assert r.status_code == 302, r.text[:3000]
    source = DataSource.objects.get(slug="lake")
    assert source.kind == "duckdb" and source.options == {"file_root": str(w.files)}
    r = client.post(
        reverse("admin:governance_datasource_changelist"),
        {"action": "test_connection", "_selected_action": [source.pk]},
        follow=True,
    )
    assert "Lake files: Connected (duckdb, read-only; the database file is opened" in r.text


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"kind": "duckdb"}, "Give a DuckDB database file, or a file_root option"),
        ({"kind": "duckdb", "options": '{"file_root": "rel/dir"}'}, "file_root is an absolute"),
        ({"kind": "snowflake", "user": "u"}, "needs the host (Snowflake: the account identifier)"),
        ({"kind": "databricks", "host": "h"}, "needs the http_path option"),
        ({"kind": "mysql", "host": "h", "options": '{"warehouse": "x"}'}, "Unknown option"),
        ({"kind": "mysql", "host": "h", "password_env": "not a name"}, "environment variable"),
        ({"kind": "trino", "host": "h", "secret_file": "../etc/passwd"}, "without &#x27;..&#x27;"),
        ({"kind": "bigquery"}, "needs the database (BigQuery: the project)"),
    ],
)
def test_what_a_kind_lacks_is_a_form_error(client, mesh, fields, error):
    r = _post_add(client, mesh, name="Bad", slug="bad", **fields)
    assert r.status_code == 200
    assert error in r.text
    assert not DataSource.objects.filter(slug="bad").exists()


def test_a_missing_driver_is_named_by_test_connection(client, mesh):
    source = DataSource.objects.create(
        slug="sf", name="Snowflake", kind="snowflake", host="acme-xy123", user="reader"
    )
    client.force_login(mesh.staff)
    r = client.post(
        reverse("admin:governance_datasource_changelist"),
        {"action": "test_connection", "_selected_action": [source.pk]},
        follow=True,
    )
    assert "pip install mesh-portal[snowflake]" in r.text


def test_the_secret_file_name_is_audited_as_a_secret(client, mesh):
    r = _post_add(
        client,
        mesh,
        name="BQ",
        slug="bq",
        kind="bigquery",
        database="acme-analytics",
        secret_file="bq-key.json",
    )
    assert r.status_code == 302, r.text[:3000]
    (entry,) = AuditEntry.objects.filter(content_type__model="datasource", action="create")
    assert "bq-key.json" not in json.dumps(entry.changes)


def test_a_team_owner_cannot_add_a_data_source(client, mesh):
    client.force_login(mesh.owner)
    r = client.get(reverse(ADD))
    assert r.status_code in (302, 403)
    assert DataSource.objects.count() == 0
