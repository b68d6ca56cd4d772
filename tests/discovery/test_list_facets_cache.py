"""The unfiltered product list counts the products every signed-in user sees once for everyone
(meshportal.cache, PostgreSQL) and each user's drafts per request: every user's counts and total
equal those counted from scratch over the one visibility rule, before and after the changes
that alter them (a draft published, a tag added, a domain renamed)."""

import pytest
from django.db import connection

from domains import services as domain_services
from meshportal import cache as portal_cache
from meshportal.audit import audit_context
from meshportal.permissions import visible
from products import services
from products.discovery import facets
from products.models import DataProduct

pytestmark = [pytest.mark.django_db, pytest.mark.postgres, pytest.mark.redis]


def _shown(facet_list) -> dict:
    return {
        f["key"]: {(v["value"], v["label"]): v["count"] for v in f["values"]}
        for f in facet_list
        if f["values"]
    }


def _seen(user) -> tuple[int, dict]:
    result = facets.search(user=user, data={})
    return result.total, _shown(result.facets)


def _from_scratch(user) -> tuple[int, dict]:
    """The same figures from one pass over everything the user sees (visible()), no cache."""
    fs = facets.DataProductFilter({}, queryset=DataProduct.objects.none())
    fs.is_valid()
    shown, total, _ = facets._counts(
        base=visible(user, DataProduct.objects.all()),
        searched=None,
        fs=fs,
        cleaned=fs.form.cleaned_data,
    )
    return total, _shown(shown)


def test_the_lists_counts_are_right_for_everyone_before_and_after_changes(
    mesh, shared_cache, django_capture_on_commit_callbacks
):
    people = [mesh.consumer, mesh.member, mesh.owner, mesh.other_owner, mesh.council, mesh.staff]

    def check():
        # What each user is shown, from whatever the shared cache holds (the first reader
        # computes the shared part, the others read it), against the figures from scratch.
        shown = {u.username: [_seen(u) for _ in range(2)] for u in people}
        expected = {u.username: _from_scratch(u) for u in people}
        for user in people:
            assert shown[user.username] == [expected[user.username]] * 2, user.username
        return expected

    before = check()
    _seen(mesh.consumer)  # kept again, as before the changes below
    # A team sees its own draft counted, another team's not; the platform sees every draft.
    assert before["member"][0] == before["consumer"][0] + 1
    assert before["staff"][0] == before["consumer"][0] + 2
    assert shared_cache.get(portal_cache.public_key(portal_cache.LIST_FACETS)) is not None

    with django_capture_on_commit_callbacks(execute=True), audit_context(door="command"):
        services.product_publish(product=mesh.products[("orders", "draft")])
        services.product_update(product=mesh.products[("users", "published")], tags=["gdpr"])
        domain_services.domain_update(domain=mesh.users, name="People")
    after = check()
    assert after["consumer"][0] == before["consumer"][0] + 1
    assert after["consumer"][1]["tag"] == {("gdpr", "gdpr"): 1}
    assert ("users", "People") in after["consumer"][1]["domain"]

    # Read from the cache, the page's one facet pass is over the user's drafts alone.
    recorder = _Recorder()
    _seen(mesh.consumer)  # kept
    with connection.execute_wrapper(recorder):
        _seen(mesh.consumer)
    assert sum("MATERIALIZED" in sql for sql in recorder.seen) == 1
    shared_cache.delete(portal_cache.public_key(portal_cache.LIST_FACETS))
    recorder.seen.clear()
    with connection.execute_wrapper(recorder):
        _seen(mesh.consumer)
    assert sum("MATERIALIZED" in sql for sql in recorder.seen) == 2


class _Recorder:
    def __init__(self):
        self.seen: list[str] = []

    def __call__(self, execute, sql, params, many, context):
        self.seen.append(sql)
        return execute(sql, params, many, context)
