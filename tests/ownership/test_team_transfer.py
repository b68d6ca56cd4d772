"""Moving a product to another team is its own action: an owner of both teams, or platform staff.

Every door (API PATCH/PUT/POST, contract PUT, the contract upload page, the edit page, the admin)
asks the same rule and answers a refusal the same way: 403 (the user sees the product but may not
move it) with the same message; the move itself is one service with its audit entry and a word
to the new team's owners.
"""

import html
import re

import pytest
import yaml
from django.urls import reverse
from rest_framework.test import APIClient

from domains import services as domain_services
from meshportal.models import AuditEntry, Notification
from meshportal.permissions import EDIT, can, clear_caches
from products.models import DataProduct

pytestmark = pytest.mark.django_db

API = "/api/v1/products/"
REFUSAL = "Only an owner of both Orders Team and Users Team, or platform staff, may move a product between them."


def api(user) -> APIClient:
    c = APIClient()
    c.force_login(user)
    return c


def _team_of(product) -> str:
    return DataProduct.objects.get(pk=product.pk).owner_team.slug


@pytest.fixture
def published(mesh):
    return mesh.products[("orders", "published")]


@pytest.fixture
def double_owner(mesh):
    """Owner of the orders team who also owns the users team: may move products between them."""
    domain_services.membership_set(team=mesh.users_team, user=mesh.owner, role="owner")
    return mesh.owner


@pytest.fixture
def member_owning_other_team(mesh):
    """The probe's attacker: a plain member of orders who owns the users team."""
    domain_services.membership_set(team=mesh.orders_team, user=mesh.other_owner, role="member")
    return mesh.other_owner


# -- the attacks: refused at every door, with one status and one message --------------------


@pytest.mark.parametrize("who", ["member", "member_owning_other_team", "owner"])
def test_api_patch_owner_team_is_refused(mesh, published, who, request):
    # A member; a member who owns the team it would move to; an owner of orders only.
    user = request.getfixturevalue(who) if who.startswith("member_") else getattr(mesh, who)
    r = api(user).patch(
        f"{API}orders/published-product/", {"owner_team": "users-team"}, format="json"
    )
    assert r.status_code == 403, r.json()
    assert r.json()["detail"] == REFUSAL
    assert _team_of(published) == "orders-team"
    assert not AuditEntry.objects.filter(action="update", changes__has_key="owner_team").exists()


def test_api_put_and_post_are_refused_too(mesh, published, member_owning_other_team):
    c = api(member_owning_other_team)
    body = c.get(f"{API}orders/published-product/").json()
    body = {k: body[k] for k in ("name", "summary", "version", "classification")}
    r = c.put(
        f"{API}orders/published-product/", {**body, "owner_team": "users-team"}, format="json"
    )
    assert (r.status_code, r.json()["detail"]) == (403, REFUSAL)
    assert _team_of(published) == "orders-team"
    # Creating a product in orders that another team owns is the same move.
    r = c.post(
        API,
        {
            "domain": "orders",
            "slug": "handed-over",
            "name": "Handed over",
            "owner_team": "users-team",
        },
        format="json",
    )
    assert (r.status_code, r.json()["detail"]) == (403, REFUSAL)
    assert not DataProduct.objects.filter(slug="handed-over").exists()


def _contract_with_team(mesh, product, team: str) -> str:
    doc = yaml.safe_load(api(mesh.staff).get(f"{API}orders/{product.slug}/contract").content)
    doc["team"] = {**(doc.get("team") or {}), "name": team}
    return yaml.safe_dump(doc)


def test_contract_put_naming_another_team_is_refused(mesh, published, member_owning_other_team):
    text = _contract_with_team(mesh, published, "users-team")
    c = api(member_owning_other_team)
    for query in ("?dry_run=true", ""):
        r = c.put(
            f"{API}orders/published-product/contract{query}",
            data=text,
            content_type="application/yaml",
        )
        assert (r.status_code, r.json()["detail"]) == (403, REFUSAL)
    assert _team_of(published) == "orders-team"


def test_contract_upload_page_naming_another_team_is_refused(
    client, mesh, published, member_owning_other_team
):
    text = _contract_with_team(mesh, published, "Users Team")  # by name works as well as slug
    client.force_login(member_owning_other_team)
    url = reverse("products:contract_import")
    for data in ({"document": text}, {"document": text, "apply": "1"}):
        r = client.post(url, data)
        assert r.status_code == 403
        assert html.escape(REFUSAL) in r.text
    assert _team_of(published) == "orders-team"


def test_edit_page_refuses_the_move(client, mesh, published, member_owning_other_team):
    client.force_login(member_owning_other_team)
    url = reverse("products:edit", args=["orders", published.slug])
    field = re.search(r'<select name="owner_team"[^>]*>', client.get(url).text).group(0)
    assert "disabled" in field  # shown, not offered; a hand-made post meets the rule below
    r = client.post(
        url,
        {
            "name": "Renamed on the way out",
            "slug": published.slug,
            "version": published.version,
            "classification": published.classification,
            "owner_team": mesh.users_team.pk,
        },
    )
    assert r.status_code == 403
    assert html.escape(REFUSAL) in r.text
    product = DataProduct.objects.get(pk=published.pk)
    assert product.owner_team == mesh.orders_team and product.name != "Renamed on the way out"


def test_staff_without_platform_cannot_move_a_product_in_the_admin(client, mesh, published):
    owner = mesh.owner
    owner.is_staff = True
    owner.save()
    domain_services.membership_set(team=mesh.users_team, user=owner, role="owner")
    client.force_login(owner)
    url = reverse("admin:products_dataproduct_change", args=[published.pk])
    page = client.get(url)
    assert page.status_code == 200 and 'name="owner_team"' not in page.text
    client.post(url, {**_admin_form(published), "owner_team": mesh.users_team.pk})
    assert _team_of(published) == "orders-team"


# -- the move itself --------------------------------------------------------------------------


def test_owner_of_both_teams_moves_a_product(
    mesh, published, double_owner, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        r = api(double_owner).patch(
            f"{API}orders/published-product/",
            {"owner_team": "users-team", "summary": "Now the users team's"},
            format="json",
        )
    assert r.status_code == 200, r.json()
    assert r.json()["owner_team"] == "users-team" and r.json()["summary"] == "Now the users team's"
    _assert_moved(mesh, published, by=double_owner, door="api")
    assert any(
        "Orders published" in m.subject and m.to == ["other_owner@example.com"] for m in mailoutbox
    )


def _assert_moved(mesh, product, *, by, door):
    product = DataProduct.objects.get(pk=product.pk)
    assert product.owner_team == mesh.users_team
    entry = AuditEntry.objects.get(
        action="update", changes__has_key="owner_team", object_id=str(product.pk)
    )
    assert entry.changes["owner_team"] == ["Orders Team", "Users Team"]
    assert (entry.actor, entry.door) == (by, door)
    # The new team's owners hear of it (the mover only if they are not the one who moved it).
    told = set(
        Notification.objects.filter(kind="product_transfer").values_list(
            "user__username", flat=True
        )
    )
    assert told == {"other_owner"}
    # The rights moved with it: the new team edits, the old team's member no longer does.
    for u in (mesh.member, mesh.other_owner):
        clear_caches(u)
    assert can(mesh.other_owner, EDIT, product) and not can(mesh.member, EDIT, product)


def test_owner_of_both_moves_by_contract_upload(
    client, mesh, published, double_owner, django_capture_on_commit_callbacks
):
    text = _contract_with_team(mesh, published, "users-team")
    client.force_login(double_owner)
    preview = client.post(reverse("products:contract_import"), {"document": text})
    assert preview.status_code == 200 and _team_of(published) == "orders-team"
    assert not Notification.objects.filter(kind="product_transfer").exists()  # preview only
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(reverse("products:contract_import"), {"document": text, "apply": "1"})
    assert r.status_code == 302
    _assert_moved(mesh, published, by=double_owner, door="page")


def test_owner_of_both_moves_on_the_edit_page(
    client, mesh, published, double_owner, django_capture_on_commit_callbacks
):
    client.force_login(double_owner)
    url = reverse("products:edit", args=["orders", published.slug])
    field = re.search(r'<select name="owner_team"[^>]*>', client.get(url).text).group(0)
    assert "disabled" not in field
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(
            url,
            {
                "name": published.name,
                "slug": published.slug,
                "version": published.version,
                "classification": published.classification,
                "owner_team": mesh.users_team.pk,
            },
        )
    assert r.status_code == 302, r.text[:2000]
    _assert_moved(mesh, published, by=double_owner, door="page")


def _admin_form(product) -> dict:
    return {
        "name": product.name,
        "slug": product.slug,
        "summary": product.summary,
        "description": "",
        "status": product.status,
        "version": product.version,
        "classification": product.classification,
        "owner_team": product.owner_team_id,
        "freshness_slo_hours": "",
        "availability_slo": "",
        "sunset_date": "",
        "replacement": "",
        "ports-TOTAL_FORMS": "0",
        "ports-INITIAL_FORMS": "0",
        "ports-MIN_NUM_FORMS": "0",
        "ports-MAX_NUM_FORMS": "1000",
    }


def test_platform_moves_in_the_admin_through_the_service(
    client, mesh, published, django_capture_on_commit_callbacks
):
    client.force_login(mesh.staff)
    url = reverse("admin:products_dataproduct_change", args=[published.pk])
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(url, {**_admin_form(published), "owner_team": mesh.users_team.pk})
    assert r.status_code == 302, r.text[:2000]
    _assert_moved(mesh, published, by=mesh.staff, door="admin")
