"""Nobody gives themselves rights in the admin console: only platform staff open the pages that
grant rights (guardian's object permissions, users, groups, team memberships, tokens), and every
grant made there is in the audit log."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from meshportal.models import AuditEntry
from meshportal.permissions import EDIT, VIEW_CONNECTION, can, clear_caches
from products.models import DataProductGroupObjectPermission, DataProductUserObjectPermission

pytestmark = pytest.mark.django_db


def _staff(user):
    """Someone given the console's staff flag without joining the platform group."""
    user.is_staff = True
    user.save()
    return user


def _perms_url(name: str, *args) -> str:
    return reverse(f"admin:products_dataproduct_{name}", args=args)


def test_staff_without_platform_cannot_grant_themselves_rights_on_a_product(client, mesh):
    """The probe's attack: a consumer with the staff flag opens guardian's object-permission
    pages and gives themselves edit and consume rights on another team's product."""
    attacker = _staff(mesh.consumer)
    product = mesh.products[("users", "published")]
    client.force_login(attacker)

    assert client.get(_perms_url("permissions", product.pk)).status_code == 403
    url = _perms_url("permissions_manage_user", product.pk, attacker.pk)
    assert client.get(url).status_code == 403
    r = client.post(url, {"permissions": ["change_dataproduct", "consume_dataproduct"]})
    assert r.status_code == 403

    assert not DataProductUserObjectPermission.objects.filter(user=attacker).exists()
    clear_caches(attacker)
    assert not can(attacker, EDIT, product)
    assert not can(attacker, VIEW_CONNECTION, product)
    # …so the product's edit page and its connection details stay closed to them.
    edit = reverse("products:edit", args=[product.domain.slug, product.slug])
    assert client.get(edit).status_code == 403
    assert "sales.secret_table" not in client.get(product.get_absolute_url() + "?tab=ports").text


def test_staff_team_owner_cannot_grant_their_team_rights_on_another_teams_product(client, mesh):
    attacker = _staff(mesh.other_owner)  # owns the users team, not orders
    product = mesh.products[("orders", "published")]
    team_group = mesh.users_team.group
    client.force_login(attacker)
    url = _perms_url("permissions_manage_group", product.pk, team_group.pk)
    r = client.post(url, {"permissions": ["view_dataproduct", "change_dataproduct"]})
    assert r.status_code == 403
    assert not DataProductGroupObjectPermission.objects.filter(
        group=team_group, content_object=product
    ).exists()
    # Nor on a domain (change_domain lets a team create and edit the domain's products).
    r = client.post(
        reverse(
            "admin:domains_domain_permissions_manage_group", args=[mesh.orders.pk, team_group.pk]
        ),
        {"permissions": ["change_domain"]},
    )
    assert r.status_code == 403
    assert not attacker.has_perm("domains.change_domain", mesh.orders)


def test_staff_without_platform_cannot_join_the_platform_group(client, mesh):
    """Even holding Django's own "can change user" permission (say, to reset passwords)."""
    attacker = _staff(mesh.member)
    attacker.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="auth", codename__in=["view_user", "change_user"]
        )
    )
    platform = Group.objects.get(name="platform")
    client.force_login(attacker)
    url = reverse("admin:auth_user_change", args=[attacker.pk])
    assert client.get(url).status_code == 403
    r = client.post(
        url,
        {
            "username": attacker.username,
            "is_active": "on",
            "is_staff": "on",
            "is_superuser": "on",
            "groups": [platform.pk],
        },
    )
    assert r.status_code == 403
    attacker.refresh_from_db()
    assert not attacker.is_superuser and not attacker.groups.filter(name="platform").exists()


def test_team_owner_with_staff_flag_cannot_change_memberships_in_the_admin(client, mesh):
    """Team memberships are rights too: in the console only platform staff change them (owners
    manage their team on the team page, where the portal's rules and audit apply)."""
    owner = _staff(mesh.owner)
    client.force_login(owner)
    url = reverse("admin:domains_team_change", args=[mesh.orders_team.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert 'name="memberships-0-role"' not in page.text  # shown read-only
    member_row = mesh.orders_team.memberships.get(user=mesh.member)
    owner_row = mesh.orders_team.memberships.get(user=mesh.owner)
    client.post(
        url,
        {
            "name": mesh.orders_team.name,
            "slug": mesh.orders_team.slug,
            "description": "",
            "contact_email": "",
            "memberships-TOTAL_FORMS": "3",
            "memberships-INITIAL_FORMS": "2",
            "memberships-MIN_NUM_FORMS": "0",
            "memberships-MAX_NUM_FORMS": "1000",
            "memberships-0-id": owner_row.pk,
            "memberships-0-team": mesh.orders_team.pk,
            "memberships-0-user": mesh.owner.pk,
            "memberships-0-role": "owner",
            "memberships-1-id": member_row.pk,
            "memberships-1-team": mesh.orders_team.pk,
            "memberships-1-user": mesh.member.pk,
            "memberships-1-role": "owner",
            "memberships-2-team": mesh.orders_team.pk,
            "memberships-2-user": mesh.consumer.pk,
            "memberships-2-role": "owner",
        },
    )
    member_row.refresh_from_db()
    assert member_row.role == "member"
    assert not mesh.orders_team.memberships.filter(user=mesh.consumer).exists()


def test_platform_grants_in_the_admin_are_audited(client, mesh):
    product = mesh.products[("users", "published")]
    client.force_login(mesh.staff)
    url = _perms_url("permissions_manage_user", product.pk, mesh.consumer.pk)
    assert client.get(url).status_code == 200
    r = client.post(url, {"permissions": ["consume_dataproduct"]})
    assert r.status_code == 302
    assert can(mesh.consumer, VIEW_CONNECTION, product)
    entry = AuditEntry.objects.get(door="admin", object_id=str(product.pk), actor=mesh.staff)
    assert entry.changes == {"object permissions of user consumer": [[], ["consume_dataproduct"]]}
    # Not on the product's Activity tab, which every signed-in user may read.
    client.force_login(mesh.member)
    assert "object permissions" not in client.get(product.get_absolute_url() + "?tab=activity").text

    client.force_login(mesh.staff)
    group = mesh.users_team.group
    client.post(
        _perms_url("permissions_manage_group", product.pk, group.pk),
        {"permissions": ["view_dataproduct"]},
    )
    entry = AuditEntry.objects.filter(door="admin", object_id=str(product.pk)).first()
    assert entry.changes == {
        f"object permissions of group {group.name}": [
            ["change_dataproduct", "view_dataproduct"],
            ["view_dataproduct"],
        ]
    }


def test_user_rights_changed_in_the_admin_are_audited(client, mesh):
    client.force_login(mesh.staff)
    governance = Group.objects.get(name="governance")
    target = mesh.consumer
    r = client.post(
        reverse("admin:auth_user_change", args=[target.pk]),
        {
            "username": target.username,
            "email": target.email,
            "is_active": "on",
            "is_staff": "on",
            "groups": [governance.pk],
            "date_joined_0": "2024-01-01",
            "date_joined_1": "00:00:00",
        },
    )
    assert r.status_code == 302, r.text[:3000]
    target.refresh_from_db()
    assert target.is_staff and target.groups.filter(name="governance").exists()
    entry = AuditEntry.objects.get(door="admin", object_id=str(target.pk), actor=mesh.staff)
    assert entry.changes == {"groups": [[], ["governance"]], "is_staff": [False, True]}
    assert "password" not in str(entry.changes)


def test_only_superusers_make_superusers(client, mesh):
    """Platform staff who are not superusers run the console but cannot mint a superuser."""
    client.force_login(mesh.staff)
    page = client.get(reverse("admin:auth_user_change", args=[mesh.consumer.pk]))
    assert page.status_code == 200
    assert 'name="is_superuser"' not in page.text
