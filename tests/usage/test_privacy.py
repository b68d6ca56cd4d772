"""Who sees whose usage: owners see their product's consumers by name, everyone else who sees
the product only the aggregates (and their own principals), at the page and the API alike."""

import pytest

from tests.usage.conftest import INGEST, bearer, event, session

pytestmark = pytest.mark.django_db

PAGE = "/products/orders/published-product/?tab=usage"
API = "/api/v1/usage/products/orders/published-product/"
SECRET_SQL = "SELECT secret_margin FROM sales.orders WHERE customer = 'acme'"


@pytest.fixture
def used(usage_mesh):
    m = usage_mesh
    batch = {
        "events": [
            event("svc_users", SECRET_SQL),
            event("bi_reader", "SELECT * FROM sales.orders", days_ago=2),
            event("svc_orders", "INSERT INTO sales.orders SELECT * FROM crm.users"),
            event("unknown_etl", "SELECT * FROM sales.orders"),
        ]
    }
    assert bearer(m.staff).post(INGEST, batch, format="json").status_code == 201
    return m


@pytest.mark.parametrize("who", ["owner", "staff"])
def test_owners_and_platform_see_principals_and_unmanaged_consumers(used, client, who):
    client.force_login(getattr(used, who))
    page = client.get(PAGE).content.decode()
    assert "svc_users" in page and "bi_reader" in page and "unknown_etl" in page
    assert "Unmanaged consumers" in page
    assert "Ask them to request access" in page  # svc_users is mapped to a team
    assert "<svg" in page
    data = session(getattr(used, who)).get(API).json()
    assert {c["principal"] for c in data["consumers"]} == {"svc_users", "bi_reader", "unknown_etl"}
    assert {c["principal"] for c in data["consumers"] if not c["managed"]} == {
        "svc_users",
        "unknown_etl",
    }


@pytest.mark.parametrize("who", ["member", "other_owner", "consumer", "council"])
def test_others_see_only_aggregates(used, client, who):
    client.force_login(getattr(used, who))
    r = client.get(PAGE)
    assert r.status_code == 200
    page = r.content.decode()
    assert "3 read queries by 3 distinct consumers" in page
    # other_owner's team is svc_users: their own usage, which they see (below)
    own = {"other_owner": "svc_users"}.get(who)
    for private in ("svc_users", "bi_reader", "unknown_etl", "svc_orders", "secret_margin"):
        if private != own:
            assert private not in page
    data = session(getattr(used, who)).get(API).json()
    assert data["total_queries"] == 3 and data["distinct_consumers"] == 3
    assert "consumers" not in data
    assert [r["principal"] for r in data["own"]] == ([own] if own else [])
    assert "bi_reader" not in str(data) and "secret_margin" not in str(data)


def test_a_consumer_sees_their_own_usage_only(used, client):
    client.force_login(used.approved)  # mapped to bi_reader
    page = client.get(PAGE).content.decode()
    assert "Your usage" in page and "bi_reader" in page
    assert "svc_users" not in page and "unknown_etl" not in page
    data = session(used.approved).get(API).json()
    assert [r["principal"] for r in data["own"]] == ["bi_reader"]


def test_a_draft_s_usage_is_as_private_as_the_draft(used, client):
    client.force_login(used.other_owner)
    assert client.get("/products/orders/draft-product/?tab=usage").status_code == 404
    r = session(used.other_owner).get("/api/v1/usage/products/orders/draft-product/")
    assert r.status_code == 404


def test_the_usage_tab_s_queries_are_bounded(used, client, django_assert_max_num_queries):
    client.force_login(used.owner)
    with django_assert_max_num_queries(40):
        assert client.get(PAGE).status_code == 200
