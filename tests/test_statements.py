"""Statements compiled once per process (meshportal.statements): the same rows as the queryset
they are built from, for every value, without compiling it again."""

import threading
from unittest import mock

import pytest
from django.db import connection
from django.db.models.sql.compiler import SQLCompiler

from domains.models import Membership
from meshportal.statements import Statement
from products.models import DataProduct

pytestmark = pytest.mark.django_db


def _by_slugs(domain, product):
    return DataProduct.objects.select_related("domain", "owner_team").filter(
        domain__slug=domain, slug=product
    )


def _compiles():
    return mock.patch.object(SQLCompiler, "as_sql", autospec=True, side_effect=SQLCompiler.as_sql)


def test_a_statement_gives_the_querysets_rows_for_every_value_compiling_once(mesh):
    statement = Statement(_by_slugs)
    cases = [(d, f"{s}-product") for d in ("orders", "users") for s in ("draft", "published")]
    cases.append(("orders", "no-such-product"))
    statement(domain="orders", product="published-product")  # compiled here
    with _compiles() as compiled:
        for domain, slug in cases:
            got = statement(domain=domain, product=slug)
            assert got == list(_by_slugs(domain, slug))
            for row in got:  # the joined rows are there, read with the product
                assert (row.domain.slug, row.owner_team.slug) == (domain, f"{domain}-team")
    # Only the comparison querysets compiled: one each.
    assert compiled.call_count == len(cases)


def test_a_statement_reads_the_database_each_time(mesh):
    statement = Statement(
        lambda team: Membership.objects.filter(team_id=team).order_by().values_list("role")
    )
    team = mesh.orders_team.pk
    assert sorted(statement(team=team)) == [("member",), ("owner",)]
    Membership.objects.filter(team_id=team, role="member").delete()
    assert statement(team=team) == [("owner",)]


def test_a_union_with_a_subquery_fills_each_value_where_it_goes(mesh):
    from meshportal.permissions import _one_product_perm_rows, _product_perm_rows

    draft = mesh.products[("orders", "draft")]
    for user in (mesh.owner, mesh.member, mesh.consumer, mesh.other_owner):
        for product in (draft, mesh.products[("users", "draft")]):
            got = _one_product_perm_rows(user=user.pk, product=product.pk)
            assert sorted(got) == sorted(_product_perm_rows(user.pk, [product.pk]))
    assert _one_product_perm_rows(user=mesh.member.pk, product=draft.pk)  # the team's grants
    assert not _one_product_perm_rows(user=mesh.consumer.pk, product=draft.pk)


def test_a_value_of_another_type_runs_the_queryset_itself(mesh):
    statement = Statement(lambda team: Membership.objects.filter(team=team).order_by("role"))
    assert statement(team=mesh.orders_team) == list(
        Membership.objects.filter(team=mesh.orders_team).order_by("role")
    )


def test_a_statement_whose_values_do_not_reach_its_parameters_is_refused(mesh):
    contains = Statement(lambda name: DataProduct.objects.filter(name__icontains=name))
    with pytest.raises(ValueError, match="cannot be compiled once"):
        contains(name="orders")


@pytest.mark.django_db(transaction=True)
def test_each_thread_runs_a_statement_on_its_own_connection(mesh):
    statement = Statement(_by_slugs)
    statement(domain="orders", product="published-product")  # compiled in this thread
    seen = {}

    def other():
        try:
            seen["rows"] = statement(domain="users", product="published-product")
            seen["connection"] = id(connection.connection)
        finally:
            connection.close()

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert [p.slug for p in seen["rows"]] == ["published-product"]
    assert seen["rows"][0].domain.slug == "users"
    assert seen["connection"] != id(connection.connection)


def test_none_after_compiling_with_an_integer_still_means_is_null(mesh):
    from domains.models import Domain

    statement = Statement(lambda parent: Domain.objects.filter(parent_id=parent))
    assert statement(parent=mesh.orders.pk) == []  # compiled with an integer
    assert set(statement(parent=None)) == {mesh.orders, mesh.users}  # IS NULL, not = NULL
    sql, params = statement.sql(parent=None)
    assert "IS NULL" in sql and params == []


def test_renumbered_permissions_compile_every_statement_again(mesh):
    """A flush or migration renumbers the permissions, whose ids visible()'s draft part holds
    as constants, as does every statement built on it (the list's pass over a team's drafts,
    the home page's draft counts): forgetting the ids forgets them all."""
    from meshportal import statements
    from meshportal.permissions import forget_permission_ids
    from products.discovery import facets

    facets.search(user=mesh.member, data={})
    facets.home(user=mesh.member)
    assert any(s._compiled for s in statements._every)
    forget_permission_ids()
    assert not any(s._compiled for s in statements._every)
