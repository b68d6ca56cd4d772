"""Builders for test data, through the services (so permissions and audit are as in life)."""

from types import SimpleNamespace

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from domains import services as domain_services
from meshportal.audit import audit_context
from meshportal.permissions import GOVERNANCE_GROUP, PLATFORM_GROUP
from products import services

PASSWORD = "test-pass-123"


def user(username: str, *, staff: bool = False, groups=()) -> object:
    u = get_user_model().objects.create_user(
        username=username, password=PASSWORD, email=f"{username}@example.com", is_staff=staff
    )
    for name in groups:
        u.groups.add(Group.objects.get_or_create(name=name)[0])
    return u


def build_mesh() -> SimpleNamespace:
    """Two domains (orders, users), their teams, and one product in each state per domain.

    Roles: staff (platform), owner & member of orders, other_owner (owner of users),
    consumer (no team), approved (consumer with an approved grant on orders' products),
    council (governance group).
    """
    m = SimpleNamespace()
    with audit_context(door="command"):
        m.staff = user("staff", staff=True, groups=[PLATFORM_GROUP])
        m.owner = user("owner")
        m.member = user("member")
        m.other_owner = user("other_owner")
        m.consumer = user("consumer")
        m.approved = user("approved")
        m.council = user("council", groups=[GOVERNANCE_GROUP])
        m.orders_team = domain_services.team_create(
            slug="orders-team", name="Orders Team", owners=[m.owner]
        )
        domain_services.membership_set(team=m.orders_team, user=m.member, role="member")
        m.users_team = domain_services.team_create(
            slug="users-team", name="Users Team", owners=[m.other_owner]
        )
        m.orders = domain_services.domain_create(
            slug="orders", name="Orders", owner_team=m.orders_team
        )
        m.users = domain_services.domain_create(slug="users", name="Users", owner_team=m.users_team)
        port = {
            "slug": "main",
            "name": "Main",
            "kind": "table",
            "location": "sales.secret_table",
            "fields": [{"name": "order_id", "logical_type": "integer", "primary_key": True}],
        }
        m.products = {}
        for domain in (m.orders, m.users):
            for state in ("draft", "published", "deprecated"):
                p = services.product_create(
                    domain=domain,
                    slug=f"{state}-product",
                    name=f"{domain.name} {state}",
                    summary=f"A {state} product",
                    ports=[port],
                )
                if state != "draft":
                    services.product_publish(product=p)
                if state == "deprecated":
                    services.product_deprecate(product=p)
                m.products[(domain.slug, state)] = p
        for state in ("published", "deprecated"):
            req = services.access_request_create(
                product=m.products[("orders", state)], requester=m.approved, purpose="reporting"
            )
            services.access_request_approve(request=req, by=m.owner)
    return m
