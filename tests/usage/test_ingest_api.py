"""POST /api/v1/usage/ingest/: OTLP/JSON and the JSON batch in, usage out; who may send;
bad input is a 400 naming each record and field, and a bad batch stores nothing."""

import pytest
from django.contrib.auth.models import Permission

from tests.usage.conftest import INGEST, bearer, event, otlp, session
from usage.models import IngestRun, ObservedEdge, ProductUsage, QueryEvent

pytestmark = pytest.mark.django_db

USAGE = "/api/v1/usage/products/orders/published-product/"


def test_otlp_traces_appear_as_usage_of_the_product(usage_mesh):
    m = usage_mesh
    body = otlp(
        [
            ("svc_users", "SELECT id, total FROM sales.orders WHERE total > 10"),
            ("svc_users", "SELECT count(*) FROM sales.orders"),
            ("bi_reader", "SELECT * FROM sales.orders o JOIN crm.users u ON u.id = o.id"),
        ]
    )
    r = bearer(m.staff).post(INGEST, body, format="json")
    assert r.status_code == 201, r.content
    assert r.json() | {"ingest": 0} == {"ingest": 0, "events": 3, "unparsed": 0, "matched": 3}

    usage = session(m.owner).get(USAGE).json()
    assert usage["total_queries"] == 3
    assert usage["distinct_consumers"] == 2
    assert usage["days"][-1]["queries"] == 3
    by_principal = {c["principal"]: c for c in usage["consumers"]}
    assert by_principal["svc_users"]["queries"] == 2
    assert by_principal["svc_users"]["maps_to"] == "Users Team"
    assert by_principal["svc_users"]["managed"] is False  # no grant: unmanaged
    assert by_principal["bi_reader"]["managed"] is True  # approved access request
    # the users product was read too
    assert ProductUsage.objects.get(product=m.users_product).queries == 1


def test_json_batch_counts_rows_and_repeats_and_observes_lineage(usage_mesh):
    m = usage_mesh
    batch = {
        "events": [
            event("svc_users", "INSERT INTO crm.users SELECT * FROM sales.orders", rows=7, count=3),
            event("svc_users", "SELECT broken FROM WHERE"),
            event("svc_users", "SELECT * FROM elsewhere.unknown"),
        ]
    }
    r = bearer(m.staff).post(INGEST, batch, format="json")
    assert r.status_code == 201, r.content
    assert r.json()["events"] == 5 and r.json()["unparsed"] == 1 and r.json()["matched"] == 3
    read = ProductUsage.objects.get(product=m.orders_product, kind="read")
    assert (read.principal, read.queries, read.rows) == ("svc_users", 3, 7)
    write = ProductUsage.objects.get(product=m.users_product, kind="write")
    assert write.queries == 3
    edge = ObservedEdge.objects.get()
    assert (edge.source_product, edge.target_product) == (m.orders_product, m.users_product)
    assert QueryEvent.objects.count() == 3

    # a second batch adds to the same day's totals
    bearer(m.staff).post(INGEST, {"events": [event("svc_users", "SELECT 1 FROM sales.orders")]})
    assert ProductUsage.objects.get(product=m.orders_product, kind="read").queries == 4


@pytest.mark.parametrize("who", ["owner", "consumer", "member", "other_owner"])
def test_only_the_platform_may_ingest(usage_mesh, who):
    r = bearer(getattr(usage_mesh, who)).post(INGEST, {"events": [event("x", "SELECT 1")]})
    assert r.status_code == 403
    assert "platform" in r.json()["detail"]
    assert not IngestRun.objects.exists()


def test_anonymous_is_refused(usage_mesh):
    from rest_framework.test import APIClient

    r = APIClient().post(INGEST, {"events": []}, format="json")
    assert r.status_code in (401, 403)


def test_a_service_account_with_the_ingest_permission_may_ingest(usage_mesh):
    from tests import factories

    robot = factories.user("otel-collector")
    robot.user_permissions.add(Permission.objects.get(codename="ingest_queryevent"))
    r = bearer(robot).post(INGEST, {"events": [event("svc_users", "SELECT * FROM sales.orders")]})
    assert r.status_code == 201, r.content


def test_a_batch_with_a_bad_record_is_refused_whole_naming_field_and_reason(usage_mesh):
    batch = {
        "events": [
            event("svc_users", "SELECT * FROM sales.orders"),
            {"user": "svc_users", "query": "SELECT 1", "timestamp": "yesterday-ish"},
            {"query": "SELECT 1", "timestamp": "2026-01-01T00:00:00Z"},
            event("svc_users", "SELECT 1", rows=-4),
            "not an object",
        ]
    }
    r = bearer(usage_mesh.staff).post(INGEST, batch, format="json")
    assert r.status_code == 400
    errors = {e["field"]: e["reason"] for e in r.json()["errors"]}
    assert set(errors) == {
        "events[1].timestamp",
        "events[2].user",
        "events[3].rows",
        "events[4]",
    }
    assert "Not a timestamp" in errors["events[1].timestamp"]
    assert "nothing was stored" in r.json()["detail"]
    assert not QueryEvent.objects.exists() and not ProductUsage.objects.exists()
    assert not IngestRun.objects.exists()


@pytest.mark.parametrize(
    "url, body, field",
    [
        ("/api/v1/usage/ingest/?source=nope", {"events": []}, "source"),
        ("/api/v1/usage/ingest/", {"events": []}, "source"),
        (INGEST, {"events": "many"}, "events"),
        (INGEST, [1, 2], "events[0]"),
        (INGEST, {"resourceSpans": "x"}, "resourceSpans"),
        (INGEST, {"resourceSpans": [{"scopeSpans": [{"spans": [{"attributes": [
            {"key": "db.query.text", "value": {"stringValue": "SELECT 1"}}]}]}]}]},
         "resourceSpans[0].scopeSpans[0].spans[0].attributes.db.user"),
    ],
)  # fmt: skip
def test_bad_input_is_a_400_with_the_field(usage_mesh, url, body, field):
    r = bearer(usage_mesh.staff).post(url, body, format="json")
    assert r.status_code == 400, r.content
    assert field in [e["field"] for e in r.json()["errors"]]


def test_a_batch_over_the_limit_is_refused(usage_mesh, settings):
    settings.MESH_USAGE_MAX_BATCH_EVENTS = 2
    batch = {"events": [event("a", "SELECT 1")] * 3}
    r = bearer(usage_mesh.staff).post(INGEST, batch, format="json")
    assert r.status_code == 400
    assert not QueryEvent.objects.exists()


def test_a_lone_surrogate_is_a_400_not_a_500(usage_mesh):
    body = '{"events": [{"user": "\\ud800x", "query": "SELECT 1", "timestamp": "2026-01-01"}]}'
    r = bearer(usage_mesh.staff).post(INGEST, body, content_type="application/json")
    assert r.status_code == 400
    assert r.json()["errors"][0]["field"] == "events[0].user"
    assert not QueryEvent.objects.exists()


def test_non_json_body_is_a_400(usage_mesh):
    r = bearer(usage_mesh.staff).post(INGEST, "{nope", content_type="application/json")
    assert r.status_code == 400
