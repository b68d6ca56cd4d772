"""The quality API: checks defined, changed, deleted and run by the owning team, parameters
validated per type as on the check form, runs with their history; fixed query counts."""

import pytest
from rest_framework.test import APIClient

from governance.models import DataSource, QualityCheck, QualityRun
from governance.quality import services as qs
from products.models import SchemaField

pytestmark = pytest.mark.django_db
C = "/api/v1/quality-checks/"
R = "/api/v1/quality-runs/"


def client_for(user) -> APIClient:
    c = APIClient()
    c.force_login(user)
    return c


@pytest.fixture
def port(mesh, sqlite_warehouse):
    """The orders published product's port on the known SQLite table."""
    w = sqlite_warehouse
    ds = DataSource.objects.create(
        slug="known", name="Known", kind="sqlite", database=w.source.database, default_schema="main"
    )
    port = mesh.products[("orders", "published")].ports.get()
    port.data_source, port.location = ds, w.location
    port.save()
    SchemaField.objects.filter(port=port).delete()
    for n, f in enumerate(w.fields):
        SchemaField.objects.create(
            port=port, name=f["name"], physical_type=f["physical_type"], ordinal=n
        )
    return port


def _check(port, name="rows", **kw):
    kw = {"kind": "row_count", "params": {"min": 1}, **kw}
    return qs.check_create(port=port, name=name, **kw)


def test_team_creates_a_check_and_its_first_run_is_queued(mesh, port):
    r = client_for(mesh.member).post(
        C,
        {
            "port": port.pk,
            "name": "no missing names",
            "kind": "missing",
            "columns": ["name"],
            "params": {"max": 10, "unit": "percent"},
        },
        format="json",
    )
    assert r.status_code == 201, r.json()
    body = r.json()
    assert body["product"] == "urn:mesh:orders:published-product"
    assert body["params"] == {"max": 10, "unit": "percent"}
    assert QualityRun.objects.filter(quality_check_id=body["id"], trigger="manual").count() == 1


@pytest.mark.parametrize(
    "kind,columns,params,field,needle",
    [
        ("row_count", [], {}, "params", "Give a minimum, a maximum or both."),
        ("row_count", [], {"min": 5, "max": 1}, "params", "The minimum is above the maximum."),
        ("missing", [], {}, "columns", "Name exactly one column."),
        ("accepted_values", ["status"], {"values": ""}, "params", "List the accepted values."),
        ("pattern", ["name"], {"pattern": "("}, "params", "not a valid regular expression"),
        ("pattern", ["name"], {"pattern": 5}, "params", "pattern must be a string."),
        ("freshness", ["created_at"], {}, "params", "hours is required."),
        ("custom_sql", [], {"sql": "DELETE FROM x"}, "params", "must be a single SELECT"),
        ("missing", ["nope"], {}, "columns", "No column nope"),
        ("wat", [], {}, "kind", "is not a valid choice"),
    ],
)
def test_parameters_are_validated_per_type_like_the_form(
    mesh, port, kind, columns, params, field, needle
):
    r = client_for(mesh.member).post(
        C,
        {"port": port.pk, "name": "c", "kind": kind, "columns": columns, "params": params},
        format="json",
    )
    assert r.status_code == 400, r.json()
    errors = [e for e in r.json()["errors"] if e["field"] == field]
    assert any(needle in e["reason"] for e in errors), r.json()
    assert not QualityCheck.objects.exists()


def test_update_delete_and_run_by_the_team_non_owners_refused(mesh, port):
    check = _check(port)
    url = f"{C}{check.pk}/"
    other = client_for(mesh.other_owner)
    assert other.get(url).status_code == 200  # a published product's checks are visible
    assert other.patch(url, {"name": "x"}, format="json").status_code == 403
    assert other.delete(url).status_code == 403
    assert other.post(url + "run/").status_code == 403
    r = other.post(C, {"port": port.pk, "name": "n", "kind": "schema"}, format="json")
    assert r.status_code == 403
    member = client_for(mesh.member)
    r = member.patch(url, {"params": {"min": 2, "max": 1}}, format="json")
    assert r.status_code == 400 and "minimum is above" in r.json()["detail"]
    r = member.patch(url, {"params": {"max": 100}, "cron": "0 6 * * *"}, format="json")
    assert r.status_code == 200 and r.json()["params"] == {"min": None, "max": 100}
    assert r.json()["kind"] == "row_count"
    r = member.patch(url, {"kind": "schema"}, format="json")  # type is fixed once defined
    assert r.json()["kind"] == "row_count"
    r = member.post(url + "run/")
    assert r.status_code == 202 and r.json()["status"] == "queued"
    assert r.json()["check"] == check.pk and r.json()["trigger"] == "manual"
    r = member.post(url + "run/")
    assert r.status_code == 409 and "already queued" in r.json()["detail"]
    assert member.delete(url).status_code == 204
    assert not QualityCheck.objects.filter(pk=check.pk).exists()


def test_checks_and_runs_of_drafts_are_invisible_to_outsiders(mesh, port):
    draft_port = mesh.products[("orders", "draft")].ports.get()
    draft_port.data_source, draft_port.location = port.data_source, port.location
    draft_port.save()
    check = _check(draft_port, verify_columns=False)
    run = qs.run_now(checks=[check])[0]
    c = client_for(mesh.consumer)
    assert c.get(f"{C}{check.pk}/").status_code == 404
    assert c.patch(f"{C}{check.pk}/", {"name": "x"}, format="json").status_code == 404
    assert c.post(f"{C}{check.pk}/run/").status_code == 404
    assert c.get(f"{R}{run.pk}/").status_code == 404
    assert c.get(C).json()["count"] == 0 and c.get(R).json()["count"] == 0
    r = c.post(C, {"port": draft_port.pk, "name": "n", "kind": "schema"}, format="json")
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "port"
    assert client_for(mesh.member).get(C).json()["count"] == 1


def test_runs_history_filters_and_results(mesh, port):
    check = _check(port)
    other = _check(port, name="schema", kind="schema", params={})
    for _ in range(3):
        run = qs.run_now(checks=[check])[0]
        qs.execute_runs(run_ids=[run.pk])
    qs.run_now(checks=[other])
    c = client_for(mesh.consumer)
    history = c.get(R, {"check": check.pk}).json()
    assert history["count"] == 3
    assert [r["status"] for r in history["results"]] == ["passed"] * 3
    assert history["results"][0]["observed"] == 6  # the known table has six rows
    assert c.get(R, {"status": "queued"}).json()["count"] == 1
    assert c.get(R, {"product": "urn:mesh:orders:published-product"}).json()["count"] == 4
    assert c.get(R, {"product": "urn:mesh:users:published-product"}).json()["count"] == 0
    assert c.get(C, {"last_status": "passed"}).json()["count"] == 1
    for bad in ({"status": "nope"}, {"check": "x"}):
        r = c.get(R, bad)
        assert r.status_code == 400 and r.json()["errors"][0]["field"] in bad


@pytest.mark.parametrize("url", [C, R, R + "?status=passed", C + "?kind=row_count"])
def test_list_query_count_does_not_grow_with_the_data(
    mesh, port, url, django_assert_max_num_queries
):
    c = client_for(mesh.owner)

    def grow(start, n):
        for i in range(start, start + n):
            check = _check(port, name=f"c{i}", verify_columns=False)
            run = qs.run_now(checks=[check])[0]
            QualityRun.objects.filter(pk=run.pk).update(status="passed")

    c.get(url)  # warm caches
    grow(0, 2)
    with django_assert_max_num_queries(10) as small:
        assert c.get(url).status_code == 200
    grow(2, 10)
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert c.get(url).json()["count"] >= 12
