"""Unmanaged consumers and "ask them to request access"; consumer mappings in the console."""

import pytest

from meshportal.models import Notification
from tests import factories
from tests.usage.conftest import INGEST, bearer, event
from usage.models import ConsumerMapping, UsageConsumerNudge

pytestmark = pytest.mark.django_db

ASK = "/products/orders/published-product/usage/ask/"


@pytest.fixture
def used(usage_mesh):
    m = usage_mesh
    batch = {
        "events": [
            event("svc_users", "SELECT * FROM sales.orders"),
            event("bi_reader", "SELECT * FROM sales.orders"),
            event("unknown_etl", "SELECT * FROM sales.orders"),
            event("Other_Owner", "SELECT * FROM crm.users"),
            event("svc_marketing_users", "SELECT * FROM crm.users"),
        ]
    }
    assert bearer(m.staff).post(INGEST, batch, format="json").status_code == 201
    return m


def test_owner_asks_an_unmanaged_team_to_request_access(used, client):
    client.force_login(used.owner)
    r = client.post(ASK, {"principal": "svc_users"})
    assert r.status_code == 302 and r["Location"].endswith("?tab=usage")
    note = Notification.objects.get(user=used.other_owner, kind="usage_unmanaged")
    assert "without access" in note.title
    assert note.url == "/products/orders/published-product/request-access/"
    assert UsageConsumerNudge.objects.get().notified == 1
    # once a week per principal
    r = client.post(ASK, {"principal": "svc_users"}, follow=True)
    assert "less than a week ago" in r.text
    assert Notification.objects.filter(kind="usage_unmanaged").count() == 1


@pytest.mark.parametrize(
    "principal, message",
    [
        ("bi_reader", "is not an unmanaged consumer"),  # holds a grant
        ("unknown_etl", "Nobody is mapped"),
        ("nobody", "is not an unmanaged consumer"),
    ],
)
def test_asking_a_managed_or_unmapped_principal_says_why(used, client, principal, message):
    client.force_login(used.owner)
    r = client.post(ASK, {"principal": principal}, follow=True)
    assert message in r.text
    assert not Notification.objects.filter(kind="usage_unmanaged").exists()


@pytest.mark.parametrize("who, status", [("member", 403), ("consumer", 403), ("other_owner", 403)])
def test_only_owners_ask(used, client, who, status):
    client.force_login(getattr(used, who))
    assert client.post(ASK, {"principal": "svc_users"}).status_code == status
    assert not Notification.objects.filter(kind="usage_unmanaged").exists()


def test_asking_about_an_invisible_draft_is_404(used, client):
    client.force_login(used.other_owner)
    r = client.post("/products/orders/draft-product/usage/ask/", {"principal": "x"})
    assert r.status_code == 404


def test_console_mappings_are_platform_only_with_suggestions(used, client):
    client.force_login(used.staff)
    page = client.get("/admin/usage/consumermapping/")
    assert page.status_code == 200
    # unmapped principals, with a guess: a user name, a team slug's word
    assert "unknown_etl" in page.text
    assert "person other_owner" in page.text
    assert "team Users Team" in page.text  # svc_marketing_users shares "users"
    assert f'href="add/?principal=Other_Owner&amp;user={used.other_owner.pk}"' in page.text
    add = client.get(
        f"/admin/usage/consumermapping/add/?principal=Other_Owner&user={used.other_owner.pk}"
    )
    assert add.status_code == 200 and 'value="Other_Owner"' in add.text
    r = client.post(
        "/admin/usage/consumermapping/add/",
        {"principal": "unknown_etl", "team": used.orders_team.pk, "note": "nightly ETL"},
    )
    assert r.status_code == 302, r.text
    assert ConsumerMapping.objects.filter(principal="unknown_etl", team=used.orders_team).exists()

    plain_staff = factories.user("plainstaff", staff=True)
    client.force_login(plain_staff)
    assert client.get("/admin/usage/consumermapping/").status_code == 403
    assert client.get("/admin/usage/ingestrun/").status_code == 403
    client.force_login(used.owner)
    assert client.get("/admin/usage/consumermapping/").status_code == 302  # not staff: sign in


def test_a_mapping_names_a_team_or_a_person_not_both(used, client):
    client.force_login(used.staff)
    r = client.post(
        "/admin/usage/consumermapping/add/",
        {"principal": "both", "team": used.orders_team.pk, "user": used.owner.pk},
    )
    assert r.status_code == 200  # the form again, with the error
    assert not ConsumerMapping.objects.filter(principal="both").exists()
