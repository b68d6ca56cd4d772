"""The home page's public part is cached for everyone (meshportal.cache) and stays right for
every user, before and after the changes that alter it: what each user sees equals what an
uncached computation over the one visibility rule says."""

import pytest
from django.db.models import Count, F

from governance.models import QualityCheck
from governance.quality import services as quality_services
from meshportal import cache as portal_cache
from meshportal.permissions import team_roles, visible
from products import services
from products.discovery import facets as discovery
from products.models import DataProduct

pytestmark = pytest.mark.django_db


def _reference(user) -> dict:
    """The home page's figures computed from scratch, with no cache."""
    mine = visible(user, DataProduct.objects.all())
    published = mine.filter(status=DataProduct.Status.PUBLISHED)
    checked = mine.filter(quality_state__state__in=["passing", "failing"])
    shares = dict(checked.values("domain_id").annotate(n=Count("pk")).values_list("domain_id", "n"))
    failing = dict(
        checked.filter(quality_state__state="failing")
        .values("domain_id")
        .annotate(n=Count("pk"))
        .values_list("domain_id", "n")
    )
    return {
        "counts": dict(
            mine.values("domain_id").annotate(n=Count("pk")).values_list("domain_id", "n")
        ),
        "recent": list(
            published.order_by(F("published_at").desc(nulls_last=True), "name").values_list(
                "pk", flat=True
            )[:6]
        ),
        "trusted": [p.pk for p in discovery.most_trusted(user=user)],
        "mine": list(
            visible(user, DataProduct.objects.filter(owner_team_id__in=team_roles(user)))
            .order_by("-updated_at")
            .values_list("pk", flat=True)[:8]
        ),
        "stats": {
            d: [f"{(n - failing.get(d, 0)) * 100 // n}% of checked products pass their checks"]
            for d, n in shares.items()
        },
    }


def _got(user) -> dict:
    data = discovery.home(user=user)
    return {
        "counts": {d.pk: d.product_count for d in data["domains"] if d.product_count},
        "recent": [p.pk for p in data["recent"]],
        "trusted": [p.pk for p in data["trusted"]],
        "mine": [p.pk for p in data["mine"]],
        "stats": {d.pk: d.stats for d in data["domains"] if d.stats},
    }


@pytest.mark.parametrize("cached", [False, True], ids=["no cache", "redis cache"])
def test_home_is_right_for_everyone_before_and_after_changes(
    mesh, request, cached, django_capture_on_commit_callbacks
):
    cache = request.getfixturevalue("shared_cache") if cached else None
    people = [mesh.consumer, mesh.member, mesh.owner, mesh.other_owner, mesh.staff]

    def check():
        for user in people * 2:  # the second round reads the cache
            assert _got(user) == _reference(user), user.username

    check()
    if cached:
        assert cache.get(portal_cache.public_key(portal_cache.HOME)) is not None

    # Trust and check states change (as after a quality run): "most trusted" and the tiles.
    failing = mesh.products[("users", "published")]
    before = _reference(mesh.consumer)
    with django_capture_on_commit_callbacks(execute=True):
        for product, status in [
            (mesh.products[("orders", "published")], "passed"),
            (failing, "failed"),
        ]:
            QualityCheck.objects.create(
                port=product.ports.get(),
                name="rows",
                kind="row_count",
                params={"min": 1},
                last_status=status,
            )
            quality_services.product_quality_refresh(product=product)
    assert _reference(mesh.consumer)["stats"] != before["stats"]  # the change shows on the tiles
    check()

    # The orders draft is published: counts and "recently published" for everyone.
    with django_capture_on_commit_callbacks(execute=True):
        services.product_publish(product=mesh.products[("orders", "draft")])
    check()


def test_the_rows_of_cached_ids_are_read_again_through_the_rule(mesh):
    """A cached public id whose product is a draft now is dropped from the rows (the cache may
    be a moment behind); the reader's own products, read through their visibility a moment
    before, stay, drafts included."""
    from products import selectors

    draft = mesh.products[("orders", "draft")]
    published = mesh.products[("users", "published")]
    rows = selectors.home_rows(public=[draft.pk, published.pk], mine=[])
    assert set(rows) == {published.pk}
    rows = selectors.home_rows(public=[published.pk], mine=[draft.pk])
    assert set(rows) == {published.pk, draft.pk}
    assert rows[draft.pk].name == draft.name and rows[draft.pk].domain.slug == "orders"
    assert selectors.home_rows(public=[], mine=[]) == {}


def test_a_teams_newest_are_what_the_member_may_see(mesh):
    """Another team's draft never appears, whatever team ids are asked for; the reader's
    team's draft does."""
    from products import selectors

    teams = [mesh.orders_team.pk, mesh.products[("users", "draft")].owner_team_id]
    got = selectors.teams_newest(user=mesh.member, teams=teams)
    assert mesh.products[("orders", "draft")].pk in got
    assert mesh.products[("users", "draft")].pk not in got
    assert mesh.products[("users", "published")].pk in got
    assert selectors.teams_newest(user=mesh.member, teams=[]) == []
