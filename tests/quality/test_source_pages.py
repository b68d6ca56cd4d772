"""Data sources in the portal for platform staff: add a DuckDB file source and a MariaDB
source in the browser, test their connections; everyone else is refused and sees nothing."""

import json

import pytest
from django.urls import reverse

from governance.models import DataSource
from meshportal.models import AuditEntry
from tests.html_forms import form_data

LIST = "governance:data_sources"


def _add(client, person, **fields):
    client.force_login(person)
    data = form_data(client.get(reverse(LIST)).text, containing="password_env")
    data.update({"max_timeout_seconds": "60", "options": "{}", **fields})
    return client.post(reverse(LIST), data)


def _test(client, source):
    r = client.post(reverse("governance:data_source_test", args=[source.pk]), follow=True)
    assert r.status_code == 200
    return r.text


def test_platform_staff_add_and_test_a_duckdb_file_source(client, mesh, tmp_path):
    pytest.importorskip("duckdb")
    from tests.quality.conftest import _duckdb_warehouse

    w = _duckdb_warehouse(tmp_path, "parquet")
    r = _add(
        client,
        mesh.staff,
        name="Lake",
        slug="lake",
        kind="duckdb",
        options=json.dumps({"file_root": str(w.files)}),
    )
    assert r.status_code == 302, r.text[:3000]
    source = DataSource.objects.get(slug="lake")
    assert "Connected (duckdb, read-only" in _test(client, source)
    (entry,) = AuditEntry.objects.filter(content_type__model="datasource", action="create")
    assert entry.actor == mesh.staff


@pytest.mark.mariadb
def test_platform_staff_add_and_test_a_mariadb_source(client, mesh, mariadb_warehouse):
    src = mariadb_warehouse.source
    r = _add(
        client,
        mesh.staff,
        name="Shop",
        slug="shop",
        kind="mysql",
        host=src.host,
        port=str(src.port),
        database=src.database,
        user=src.user,
        password_env=src.password_env,
    )
    assert r.status_code == 302, r.text[:3000]
    text = _test(client, DataSource.objects.get(slug="shop"))
    assert "Connected (mysql, read-only transactions" in text


def test_a_kind_without_what_it_needs_is_a_form_error(client, mesh):
    r = _add(client, mesh.staff, name="Bad", slug="bad", kind="snowflake")
    assert r.status_code == 400
    assert "needs the host (Snowflake: the account identifier)" in r.text
    assert not DataSource.objects.filter(slug="bad").exists()


def test_an_edit_is_saved_and_audited_without_the_secret_reference(client, mesh):
    source = DataSource.objects.create(
        slug="dwh", name="DWH", kind="postgresql", host="db", database="dwh"
    )
    client.force_login(mesh.staff)
    url = reverse("governance:data_source_edit", args=[source.pk])
    data = form_data(client.get(url).text, containing="password_env")
    data.update({"password_env": "DWH_PASSWORD", "options": "{}"})
    r = client.post(url, data)
    assert r.status_code == 302, r.text[:3000]
    assert DataSource.objects.get(pk=source.pk).password_env == "DWH_PASSWORD"
    (entry,) = AuditEntry.objects.filter(content_type__model="datasource", action="update")
    assert "DWH_PASSWORD" not in json.dumps(entry.changes)


@pytest.mark.parametrize("who", ["owner", "member", "consumer", "council"])
def test_everyone_else_is_refused_and_sees_nothing(client, mesh, who):
    source = DataSource.objects.create(
        slug="secret-dwh", name="Secret DWH", kind="postgresql", host="db.secret", database="d"
    )
    client.force_login(getattr(mesh, who))
    for r in (
        client.get(reverse(LIST)),
        client.post(reverse(LIST), {"name": "X", "slug": "x", "kind": "sqlite"}),
        client.get(reverse("governance:data_source_edit", args=[source.pk])),
        client.post(reverse("governance:data_source_test", args=[source.pk])),
    ):
        assert r.status_code == 403
        assert "db.secret" not in r.text
    assert DataSource.objects.count() == 1


def test_the_list_is_a_fixed_number_of_queries(client, mesh, django_assert_max_num_queries):
    for i in range(5):
        DataSource.objects.create(slug=f"s{i}", name=f"S{i}", kind="sqlite", database=f"/d/{i}")
    client.force_login(mesh.staff)
    with django_assert_max_num_queries(12):
        r = client.get(reverse(LIST))
    assert r.status_code == 200 and "S4" in r.text
