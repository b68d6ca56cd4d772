import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from domains.models import Membership
from meshportal.models import AuditEntry
from products.models import DataProduct

pytestmark = pytest.mark.django_db


def test_owner_changes_roles_and_removes_members(client, mesh):
    client.force_login(mesh.owner)
    url = reverse("domains:member_role", args=[mesh.orders_team.slug, mesh.member.pk])
    client.post(url, {"role": "owner"})
    assert Membership.objects.get(team=mesh.orders_team, user=mesh.member).role == "owner"
    client.post(reverse("domains:member_remove", args=[mesh.orders_team.slug, mesh.member.pk]))
    assert not Membership.objects.filter(team=mesh.orders_team, user=mesh.member).exists()
    assert not mesh.member.groups.filter(pk=mesh.orders_team.group_id).exists()


def test_last_owner_cannot_be_removed_or_demoted(client, mesh):
    client.force_login(mesh.owner)
    r = client.post(
        reverse("domains:member_role", args=[mesh.orders_team.slug, mesh.owner.pk]),
        {"role": "member"},
        follow=True,
    )
    assert "last owner" in r.text
    r = client.post(
        reverse("domains:member_remove", args=[mesh.orders_team.slug, mesh.owner.pk]), follow=True
    )
    assert "last owner" in r.text
    assert Membership.objects.get(team=mesh.orders_team, user=mesh.owner).role == "owner"


def test_adding_unknown_user_shows_error_next_to_field(client, mesh):
    client.force_login(mesh.owner)
    r = client.post(
        reverse("domains:member_add", args=[mesh.orders_team.slug]),
        {"username": "nobody", "role": "member"},
    )
    assert r.status_code == 400
    assert "No active user is called" in r.text and 'id="id_username-error"' in r.text
    # the rest of the page as it was: the team's products are still listed
    product = mesh.products[("orders", "published")]
    assert f'href="{product.get_absolute_url()}"' in r.text


def test_new_member_gains_team_rights_at_once(client, mesh):
    from tests.factories import user

    newbie = user("newbie")
    draft = mesh.products[("orders", "draft")]
    client.force_login(newbie)
    assert client.get(draft.get_absolute_url()).status_code == 404
    client.force_login(mesh.owner)
    client.post(
        reverse("domains:member_add", args=[mesh.orders_team.slug]),
        {"username": "newbie", "role": "member"},
    )
    client.force_login(newbie)
    assert client.get(draft.get_absolute_url()).status_code == 200


def test_page_edit_is_audited_with_door_and_diff(client, mesh):
    product = mesh.products[("orders", "published")]
    client.force_login(mesh.member)
    client.post(
        reverse("products:edit", args=["orders", product.slug]),
        {
            "name": "Orders v2",
            "slug": product.slug,
            "version": "1.0.0",
            "classification": "internal",
            "summary": "new summary",
            "tags": "sales, emea",
        },
    )
    entry = AuditEntry.objects.filter(
        object_id=str(product.pk),
        action="update",
        content_type=ContentType.objects.get_for_model(DataProduct),
    ).first()
    assert entry.door == "page" and entry.actor == mesh.member
    assert entry.changes["name"] == ["Orders published", "Orders v2"]
    assert entry.changes["tags"] == [[], ["emea", "sales"]]
    # The product's Activity tab shows it.
    assert "Orders v2" in client.get(product.get_absolute_url() + "?tab=activity").text


def test_admin_changes_go_through_services_and_audit(client, mesh):
    product = mesh.products[("orders", "draft")]
    client.force_login(mesh.staff)
    url = reverse("admin:products_dataproduct_change", args=[product.pk])
    page = client.get(url)
    assert page.status_code == 200
    data = {
        "name": "Admin renamed",
        "slug": product.slug,
        "summary": "",
        "description": "",
        "status": "draft",
        "version": "1.0.0",
        "classification": "internal",
        "owner_team": mesh.orders_team.pk,
        "freshness_slo_hours": "",
        "availability_slo": "",
        "sunset_date": "",
        "replacement": "",
        "ports-TOTAL_FORMS": "0",
        "ports-INITIAL_FORMS": "0",
        "ports-MIN_NUM_FORMS": "0",
        "ports-MAX_NUM_FORMS": "1000",
    }
    r = client.post(url, data)
    assert r.status_code == 302, r.text[:2000]
    entry = AuditEntry.objects.filter(object_id=str(product.pk), action="update").first()
    assert entry.door == "admin" and entry.changes["name"][1] == "Admin renamed"


def test_audit_log_is_read_only_in_admin(client, mesh):
    client.force_login(mesh.staff)
    entry = AuditEntry.objects.first()
    assert (
        client.get(
            reverse("admin:meshportal_auditentry_changelist") + "?door__exact=command"
        ).status_code
        == 200
    )
    assert client.get(reverse("admin:meshportal_auditentry_add")).status_code == 403
    r = client.post(reverse("admin:meshportal_auditentry_delete", args=[entry.pk]), {"post": "yes"})
    assert r.status_code == 403
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_admin_transfer_moves_domain_products_and_permissions(client, mesh):
    client.force_login(mesh.staff)
    url = reverse("admin:domains_domain_changelist")
    confirm = client.post(url, {"action": "transfer", "_selected_action": [mesh.orders.pk]})
    assert "Yes, transfer" in confirm.text  # an intermediate confirmation page
    client.post(
        url,
        {
            "action": "transfer",
            "_selected_action": [mesh.orders.pk],
            "confirm": "yes",
            "to_team": mesh.users_team.pk,
        },
    )
    draft = DataProduct.objects.get(pk=mesh.products[("orders", "draft")].pk)
    assert draft.owner_team == mesh.users_team
    client.force_login(mesh.other_owner)  # the new team now sees the draft …
    assert client.get(draft.get_absolute_url()).status_code == 200
    client.force_login(mesh.member)  # … and the old one no longer does
    assert client.get(draft.get_absolute_url()).status_code == 404
    assert AuditEntry.objects.filter(door="admin", changes__has_key="owner_team").exists()


def test_admin_cannot_remove_last_owner_and_saves_nothing(client, mesh):
    client.force_login(mesh.staff)
    team = mesh.orders_team
    owner_row = Membership.objects.get(team=team, user=mesh.owner)
    member_row = Membership.objects.get(team=team, user=mesh.member)
    r = client.post(
        reverse("admin:domains_team_change", args=[team.pk]),
        {
            "name": "Renamed team",
            "slug": team.slug,
            "description": "",
            "contact_email": "",
            "memberships-TOTAL_FORMS": "2",
            "memberships-INITIAL_FORMS": "2",
            "memberships-MIN_NUM_FORMS": "0",
            "memberships-MAX_NUM_FORMS": "1000",
            "memberships-0-id": owner_row.pk,
            "memberships-0-team": team.pk,
            "memberships-0-user": mesh.owner.pk,
            "memberships-0-role": "owner",
            "memberships-0-DELETE": "on",
            "memberships-1-id": member_row.pk,
            "memberships-1-team": team.pk,
            "memberships-1-user": mesh.member.pk,
            "memberships-1-role": "member",
        },
        follow=True,
    )
    assert "last owner" in r.text
    team.refresh_from_db()
    assert team.name == "Orders Team"  # the whole save was rolled back
    assert Membership.objects.filter(team=team, user=mesh.owner, role="owner").exists()


def test_activity_lists_an_entry_only_to_those_who_may_see_its_object(client, mesh):
    """An access request's entries (purpose, requester) are for the requester and the product's
    owners; a webhook's (its URL) for the team's owners; a deleted draft's for nobody but the
    platform team. The Activity tabs of the product, team and domain leave the others out."""
    from governance.quality import services as quality_services
    from meshportal.audit import audit_context
    from products import services
    from tests.factories import user

    product = mesh.products[("orders", "published")]
    asker = user("asker")
    with audit_context(actor=asker, door="page"):
        services.access_request_create(product=product, requester=asker, purpose="zqpurpose")
    with audit_context(actor=mesh.owner, door="page"):
        quality_services.webhook_create(team=mesh.orders_team, url="https://zqhook.invalid/x")
        gone = services.product_create(domain=mesh.orders, slug="gone", name="Zqgone draft")
        services.product_delete(product=gone)
    pages = {
        "request": f"{product.get_absolute_url()}?tab=activity",
        "hook": "/teams/orders-team/",
        "draft": "/domains/orders/",
    }
    canaries = {"request": "zqpurpose", "hook": "zqhook.invalid", "draft": "Zqgone"}
    readers = {
        "request": {"owner", "asker", "staff"},
        "hook": {"owner", "staff"},
        "draft": {"staff"},
    }
    for who in ["owner", "member", "consumer", "asker", "staff"]:
        client.force_login(getattr(mesh, who, None) or asker)
        for what, url in pages.items():
            shown = canaries[what] in client.get(url).text
            assert shown == (who in readers[what]), (who, what)
