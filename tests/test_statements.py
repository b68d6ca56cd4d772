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


@pytest.fixture
def preparing():
    """The tests below ask that statements be prepared: not with DB_PREPARED_STATEMENTS=false."""
    if connection.settings_dict.get("OPTIONS", {}).get("prepare_threshold") is None:
        pytest.skip("DB_PREPARED_STATEMENTS=false: nothing is prepared")


def _prepared_here() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.postgres
def test_on_postgresql_a_statement_runs_prepared_once_for_every_value(mesh, preparing):
    """Its text never changes, so the connection keeps its plan: one prepared statement,
    whatever the values, answering the rows the queryset gives."""
    statement = Statement(_by_slugs)
    sql, _ = statement.sql(domain="orders", product="published-product")
    for domain, slug in [("orders", "published-product"), ("users", "draft-product")] * 2:
        assert statement(domain=domain, product=slug) == list(_by_slugs(domain, slug))
    mine = [s for s in _prepared_here() if "products_dataproduct" in s and "domains_team" in s]
    assert len(mine) == 1
    assert mine[0] == sql.replace("%s", "$1", 1).replace("%s", "$2", 1)


@pytest.mark.postgres
def test_a_page_reads_the_product_and_the_readers_grants_through_prepared_statements(
    mesh, client, preparing
):
    product = mesh.products[("orders", "draft")]
    client.force_login(mesh.member)
    for _ in range(2):
        page = client.get(f"/products/orders/{product.slug}/")
        assert page.status_code == 200 and product.name in page.text
    kept = " ".join(_prepared_here())
    for table in ("django_session", "products_outputport", "domains_membership"):
        assert f'FROM "{table}"' in kept
    assert "products_dataproductgroupobjectpermission" in kept


@pytest.mark.postgres
def test_with_prepared_statements_off_nothing_is_prepared(mesh, monkeypatch):
    """DB_PREPARED_STATEMENTS=false (a pooler that drops them): the statement runs as Django's
    own do, bound on the client."""
    options = {**connection.settings_dict.get("OPTIONS", {}), "prepare_threshold": None}
    monkeypatch.setitem(connection.settings_dict, "OPTIONS", options)
    statement = Statement(_by_slugs)
    before = _prepared_here()
    assert [p.slug for p in statement(domain="users", product="published-product")] == [
        "published-product"
    ]
    assert _prepared_here() == before


@pytest.mark.postgres
def test_connections_closed_after_every_request_prepare_nothing(mesh, monkeypatch):
    """DB_CONN_MAX_AGE=0: the connection, and what it prepared, ends with the request."""
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 0)
    statement = Statement(_by_slugs)
    before = _prepared_here()
    assert statement(domain="users", product="draft-product")[0].slug == "draft-product"
    assert _prepared_here() == before


def test_prepared_statements_are_a_setting():
    from tests.prod_env import manage, production_env

    show = (
        "from django.conf import settings; "
        "print(settings.DATABASES['default']['OPTIONS'].get('prepare_threshold'))"
    )
    url = "postgres://postgres@127.0.0.1:5432/unused"
    default = production_env(DATABASE_URL=url)
    default.pop("DB_PREPARED_STATEMENTS", None)  # the default, whatever this shell says
    on = manage("shell", "-c", show, env=default)
    off = manage(
        "shell", "-c", show, env=production_env(DATABASE_URL=url, DB_PREPARED_STATEMENTS="false")
    )
    assert on.stdout.split()[-1].isdigit(), on.stderr
    assert off.stdout.split()[-1] == "None", off.stderr


@pytest.mark.postgres
def test_assembled_sql_runs_prepared_only_when_asked(mesh, preparing):
    from meshportal.statements import fetch, scalar

    sql = "SELECT count(*) FROM products_dataproduct WHERE domain_id = %s"
    unasked = sql + " AND id > %s"
    for domain in (mesh.orders.pk, mesh.users.pk):
        want = DataProduct.objects.filter(domain_id=domain).count()
        assert scalar(sql, [domain], prepared=True) == want
        assert fetch(unasked, [domain, 0]) == [(want,)]
    kept = _prepared_here()
    assert kept.count(sql.replace("%s", "$1")) == 1
    assert not any("id > $2" in s for s in kept)


@pytest.mark.postgres
def test_a_teams_and_a_domains_pages_read_their_ids_and_rows_prepared(mesh, client, preparing):
    client.force_login(mesh.member)
    for url in ("/teams/orders-team/", "/domains/orders/"):
        page = client.get(url)
        assert page.status_code == 200
        assert mesh.products[("orders", "draft")].name in page.text  # the member's team's draft
    ids = [s for s in _prepared_here() if s.startswith('SELECT "products_dataproduct"."id" AS')]
    assert any('"owner_team_id" = $' in s and "ORDER BY" in s for s in ids)
    assert any('"domain_id" = $' in s and "ORDER BY" in s for s in ids)


@pytest.mark.postgres
def test_the_api_list_reads_its_rows_through_one_prepared_statement(mesh, client, preparing):
    client.force_login(mesh.consumer)
    for _ in range(2):
        listed = client.get("/api/v1/products/").json()["results"]
        slugs = {p["slug"] for p in listed}
        assert "published-product" in slugs and "draft-product" not in slugs
    kept = _prepared_here()
    assert sum("products_dataproduct.id = ANY($1::bigint[])" in s for s in kept) == 1
    assert any(s.startswith("SELECT l.id, (SELECT count(*)") for s in kept)


@pytest.mark.postgres
def test_a_list_without_words_reads_its_ids_prepared_a_search_does_not(mesh, client, preparing):
    """A list's plan does not depend on its values; a search's does (how many products its
    words match), so its statements are planned for each search."""
    client.force_login(mesh.member)
    before = set(_prepared_here())  # the connection outlives a test: what others prepared
    for url in ("/products/?sort=newest", "/search/?q=published&sort=newest"):
        assert client.get(url).status_code == 200
    new = set(_prepared_here()) - before
    ids = [s for s in new if s.startswith('SELECT "products_dataproduct"."id" AS')]
    assert any('ORDER BY "products_dataproduct"."published_at" DESC' in s for s in ids)
    assert not any("@@" in s for s in new)


def test_a_changed_setting_compiles_the_statement_again(mesh, settings):
    """A statement built from a setting (here its LIMIT) follows the setting when it changes
    (override_settings, a test's settings): it is not kept as compiled under the old value."""
    settings.MESH_STATEMENT_TEST_LIMIT = 1
    statement = Statement(
        lambda domain: (
            DataProduct.objects.filter(domain__slug=domain)
            .order_by("slug")
            .values_list("slug", flat=True)[: settings.MESH_STATEMENT_TEST_LIMIT]
        )
    )
    assert len(statement(domain="orders")) == 1
    settings.MESH_STATEMENT_TEST_LIMIT = 2
    assert statement(domain="orders") == list(
        DataProduct.objects.filter(domain__slug="orders")
        .order_by("slug")
        .values_list("slug", flat=True)[:2]
    )
    assert len(statement(domain="orders")) == 2


def test_an_id_passed_as_text_first_gives_the_rows_and_the_statement_compiles_later(mesh):
    """The first call decides the markers' types: an id as text (an audit entry keeps ids as
    text), which the ORM converts but an integer column refuses as a text marker, runs the
    plain queryset instead of failing; the next call with an integer compiles it."""
    product = DataProduct.objects.get(domain__slug="orders", slug="published-product")
    statement = Statement(lambda pk: DataProduct.objects.filter(pk=pk).values_list("slug"))
    assert statement(pk=str(product.pk)) == [("published-product",)]
    with _compiles() as compiled:
        assert statement(pk=product.pk) == [("published-product",)]
        assert statement(pk=product.pk) == [("published-product",)]
    assert compiled.call_count == 1  # compiled once, by the first call with an integer
