"""Lists, counts and search never reveal what a user may not see; lists cost fixed queries."""

import re

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from domains.models import Domain, Membership, Team
from meshportal.permissions import visible
from products.models import DataProduct, DataProductGroupObjectPermission
from products.selectors import domain_product_counts, product_list

pytestmark = pytest.mark.django_db


def test_drafts_are_invisible_in_lists_counts_and_search(client, mesh):
    client.force_login(mesh.consumer)
    listing = client.get("/products/?q=draft")
    assert "Orders draft" not in listing.text and "Users draft" not in listing.text
    assert '<span id="result-count">0</span>' in listing.text
    everything = client.get("/products/")
    assert '<span id="result-count">4</span>' in everything.text  # 2 published + 2 deprecated
    assert domain_product_counts(user=mesh.consumer) == {mesh.orders.pk: 2, mesh.users.pk: 2}
    # The owning team counts its draft; the other team does not.
    assert domain_product_counts(user=mesh.member)[mesh.orders.pk] == 3
    assert domain_product_counts(user=mesh.other_owner)[mesh.orders.pk] == 2


def test_tag_and_domain_pages_hide_drafts(client, mesh):
    from products import services

    services.product_update(product=mesh.products[("orders", "draft")], tags=["secret-tag"])
    client.force_login(mesh.consumer)
    assert "Orders draft" not in client.get("/tags/secret-tag/").text
    assert "Orders draft" not in client.get("/domains/orders/").text
    client.force_login(mesh.member)
    assert "Orders draft" in client.get("/tags/secret-tag/").text


def test_anonymous_sees_nothing(mesh):
    from django.contrib.auth.models import AnonymousUser

    assert visible(AnonymousUser(), DataProduct.objects.all()).count() == 0


def _big_mesh(products: int, teams: int, user) -> None:
    """`products` products over `teams` teams the user belongs to, with guardian rows, in bulk."""
    team_objs = []
    for i in range(teams):
        group = Group.objects.create(name=f"team:bulk-{i}")
        team_objs.append(Team(slug=f"bulk-{i}", name=f"Bulk {i}", group=group))
    Team.objects.bulk_create(team_objs)
    team_objs = list(Team.objects.filter(slug__startswith="bulk-"))
    Membership.objects.bulk_create(
        [Membership(team=t, user=user, role="member") for t in team_objs]
    )
    user.groups.add(*[t.group for t in team_objs])
    domains = Domain.objects.bulk_create(
        [
            Domain(slug=f"bulk-d{i}", name=f"Bulk D{i}", owner_team=t)
            for i, t in enumerate(team_objs)
        ]
    )
    rows = [
        DataProduct(
            domain=domains[i % teams],
            owner_team=team_objs[i % teams],
            slug=f"p{i}",
            name=f"Product {i}",
            status="draft" if i % 3 == 0 else "published",
        )
        for i in range(products)
    ]
    DataProduct.objects.bulk_create(rows, batch_size=2000)
    view = Permission.objects.get(codename="view_dataproduct")
    perms = [
        DataProductGroupObjectPermission(content_object_id=pk, group_id=g, permission=view)
        for pk, g in DataProduct.objects.filter(domain__slug__startswith="bulk-").values_list(
            "pk", "owner_team__group_id"
        )
    ]
    DataProductGroupObjectPermission.objects.bulk_create(perms, batch_size=5000)


def test_product_list_for_user_in_50_teams_over_10000_products_runs_fixed_queries(
    client, mesh, django_assert_max_num_queries
):
    _big_mesh(10_000, 50, mesh.consumer)
    client.force_login(mesh.consumer)
    with CaptureQueriesContext(connection) as small:
        client.get("/products/?page=2")
    with django_assert_max_num_queries(15):
        response = client.get("/products/?page=200")
    assert response.status_code == 200
    assert len(small.captured_queries) <= 15
    # Every product of the user's 50 teams, drafts included, plus the mesh's 4 public ones.
    assert product_list(user=mesh.consumer).count() == 10_000 + 4
    # The visibility filter is one SQL query with a subquery of the readable drafts, not a
    # list of ids read first.
    sql = str(visible(mesh.consumer, DataProduct.objects.all()).query).upper()
    assert re.search(r"IN \(+SELECT", sql) and not re.search(r"IN \(\s*\d", sql)


def test_grants_through_the_team_and_ones_own_are_read_without_joining_groups_or_permissions(
    mesh,
):
    """A team member's rights on their team's draft and a consumer's approved grant come from
    one statement that finds group grants by the user's group ids and permissions by id: the
    joins through auth_group and auth_permission cost more to plan than to run."""
    from meshportal.permissions import _product_perm_rows, clear_caches, product_perms

    draft = mesh.products[("orders", "draft")]
    published = mesh.products[("orders", "published")]
    assert {"view_dataproduct", "change_dataproduct"} <= product_perms(mesh.member, draft)
    assert "consume_dataproduct" in product_perms(mesh.approved, published)
    assert product_perms(mesh.consumer, draft) == set()
    clear_caches(mesh.member)
    with CaptureQueriesContext(connection) as seen:
        product_perms(mesh.member, draft)
    assert len(seen.captured_queries) == 1
    sql = str(_product_perm_rows(mesh.member.pk, [draft.pk]).query).lower()
    assert "auth_user_groups" in sql
    assert "join" not in sql
    # visible()'s readable drafts: the same, for every statement that filters products
    sql = str(visible(mesh.member, DataProduct.objects.all()).query).lower()
    assert re.search(r'groupobjectpermission"\."group_id" in \(select', sql)
    assert "auth_permission" not in sql


def _waiver_for_the_council(mesh) -> None:
    """A pending waiver on the users team's draft: the council may now read that draft."""
    from governance.policies import services as ps

    policy = ps.policy_propose(by=mesh.owner, key="names", title="Names", rule_type="naming")
    policy.status = policy.Status.ACTIVE
    policy.save(update_fields=["status"])
    ps.waiver_request(
        policy=policy,
        product=mesh.products[("users", "draft")],
        by=mesh.other_owner,
        justification="legacy names",
    )


def test_visible_drafts_is_the_drafts_visible_returns_for_every_role(mesh):
    """visible_drafts() (the home page's and the lineage map's per-user part) answers exactly
    what visible() does for the drafts, whoever asks: platform, team, consumer, a council
    delegate asked to decide a waiver on another team's draft, and no one signed in."""
    from django.contrib.auth.models import AnonymousUser

    from meshportal.permissions import PUBLIC_PRODUCTS, visible_drafts

    _waiver_for_the_council(mesh)
    everyone = DataProduct.objects.all()
    for user in (
        mesh.staff,
        mesh.owner,
        mesh.member,
        mesh.other_owner,
        mesh.consumer,
        mesh.approved,
        mesh.council,
        AnonymousUser(),
    ):
        expected = set(
            visible(user, everyone.exclude(PUBLIC_PRODUCTS)).values_list("pk", flat=True)
        )
        assert set(visible_drafts(user, everyone).values_list("pk", flat=True)) == expected
    assert set(visible_drafts(mesh.member, everyone)) == {mesh.products[("orders", "draft")]}
    assert not visible_drafts(mesh.consumer, everyone).exists()
    assert set(visible_drafts(mesh.council, everyone)) == {mesh.products[("users", "draft")]}
    assert set(visible_drafts(mesh.staff, everyone)) == {
        mesh.products[("orders", "draft")],
        mesh.products[("users", "draft")],
    }


def test_the_grants_statement_is_compiled_once_and_each_user_reads_their_own(mesh):
    """visible()'s grant part (team and personal view permissions) is compiled once per process
    with a stand-in for the user's id (meshportal.permissions._granted_drafts, a Statement):
    every user in turn still sees exactly the drafts their own grants show."""
    from unittest import mock

    from guardian.shortcuts import assign_perm

    from meshportal import permissions
    from tests.factories import user

    draft = mesh.products[("orders", "draft")]
    granted, stranger = user("granted"), user("stranger")
    assign_perm("products.view_dataproduct", granted, draft)
    permissions.forget_permission_ids()

    def drafts_seen(u) -> set[int]:
        qs = visible(u, DataProduct.objects.filter(status="draft"))
        return set(qs.values_list("pk", flat=True))

    assert draft.pk in drafts_seen(mesh.member)  # through their team's group; compiled here
    granted_part = permissions._granted_drafts
    with mock.patch.object(granted_part, "build", wraps=granted_part.build) as built:
        assert drafts_seen(granted) == {draft.pk}  # through their own permission
        assert drafts_seen(stranger) == set()
        assert drafts_seen(mesh.consumer) == set()
        assert draft.pk in drafts_seen(mesh.member)  # the first user again, after the others
    assert built.call_count == 0


def test_one_products_grants_bring_the_readers_team_roles_in_the_same_statement(mesh):
    """A product's page asks for the reader's grants on it and then their team roles (is the
    reader an owner of its team?): one statement answers both, each the same as read alone,
    for team owners and members, a consumer with an approved grant, and a stranger."""
    from meshportal.permissions import (
        _product_codenames,
        _product_perm_rows,
        _roles,
        clear_caches,
        product_perms,
        team_roles,
    )

    names = _product_codenames()
    for product in (mesh.products[("orders", "draft")], mesh.products[("orders", "published")]):
        for reader in (mesh.owner, mesh.member, mesh.approved, mesh.other_owner, mesh.consumer):
            clear_caches(reader)
            with CaptureQueriesContext(connection) as seen:
                perms, roles = product_perms(reader, product), team_roles(reader)
            assert len(seen.captured_queries) == 1, reader.username
            alone = _product_perm_rows(reader.pk, [product.pk])
            assert perms == {names[p] for _, p in alone}, reader.username
            assert roles == dict(_roles(reader.pk)), reader.username
    assert "change_dataproduct" in product_perms(mesh.member, mesh.products[("orders", "draft")])
    assert team_roles(mesh.owner)[mesh.orders_team.pk] == "owner"
    # The roles read already: the next product's grants alone.
    with CaptureQueriesContext(connection) as seen:
        product_perms(mesh.owner, mesh.products[("users", "published")])
    assert "domains_membership" not in seen.captured_queries[0]["sql"]


def _read_first(user, queryset):
    """A search's products: read_first()'s where it applies, else visible() (facets.search)."""
    from meshportal.permissions import read_first

    scope = read_first(user)
    return visible(user, queryset) if scope is None else scope.products(queryset)


def test_visible_read_first_answers_what_visible_does_for_every_role(mesh):
    """read_first()'s products (a search's, the readable drafts read first as ids) hold
    exactly what visible() does, whoever asks: platform, owners, members, a consumer, a council
    delegate asked to decide a waiver on another team's draft, and no one signed in; nested in
    another statement too (the facet pass reads the matches as a subquery)."""
    from django.contrib.auth.models import AnonymousUser

    _waiver_for_the_council(mesh)
    everyone = DataProduct.objects.all()
    users = (mesh.staff, mesh.owner, mesh.member, mesh.other_owner, mesh.consumer)
    for user in (*users, mesh.approved, mesh.council, AnonymousUser()):
        expected = set(visible(user, everyone).values_list("pk", flat=True))
        assert set(_read_first(user, everyone).values_list("pk", flat=True)) == expected
        nested = everyone.filter(pk__in=_read_first(user, everyone).values("pk"))
        assert set(nested.values_list("pk", flat=True)) == expected
    assert mesh.products[("users", "draft")] in _read_first(mesh.council, everyone)
    assert mesh.products[("orders", "draft")] not in _read_first(mesh.consumer, everyone)


@pytest.mark.postgres
def test_a_search_reads_the_drafts_one_may_read_once_not_in_each_statement(client, mesh):
    """A search's statements are planned on every request: the grants and draft readers are
    read once, as ids, and not planned again inside the probe, the facet pass and the page's
    ids. What the search finds is unchanged: the member's own draft, no other team's."""
    client.force_login(mesh.member)
    with CaptureQueriesContext(connection) as ctx:
        page = client.get("/search/?q=draft")
    assert page.status_code == 200
    grants = [q["sql"] for q in ctx.captured_queries if "groupobjectpermission" in q["sql"]]
    assert len(grants) == 1, grants
    assert mesh.products[("orders", "draft")].name in page.content.decode()
    assert mesh.products[("users", "draft")].name not in page.content.decode()


@pytest.mark.postgres
def test_a_search_that_finds_nothing_reads_the_drafts_once_for_did_you_mean_too(client, mesh):
    """ "Did you mean" looks for spellings among the products the search read, not through
    visible() again: the grants are read once on a page that finds nothing as well."""
    client.force_login(mesh.member)
    with CaptureQueriesContext(connection) as ctx:
        page = client.get("/search/?q=zzqqxx+ordrs")
    assert page.status_code == 200 and 'id="no-results"' in page.content.decode()
    grants = [q["sql"] for q in ctx.captured_queries if "groupobjectpermission" in q["sql"]]
    assert len(grants) == 1, grants
