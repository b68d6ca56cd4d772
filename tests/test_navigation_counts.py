"""The navigation bar's inbox and notification badges: right counts, one query, none for htmx
partials (which do not render the bar)."""

from meshportal.notifications import notify
from products import services


def _badges(html: str) -> tuple[str | None, str | None]:
    import re

    inbox = re.search(r'aria-label="(\d+) pending"', html)
    unread = re.search(r'aria-label="(\d+) unread"', html)
    return (inbox and inbox.group(1), unread and unread.group(1))


def test_owner_sees_pending_requests_and_unread_notifications(client, mesh):
    services.access_request_create(
        product=mesh.products[("orders", "published")], requester=mesh.consumer, purpose="bi"
    )
    client.force_login(mesh.owner)
    inbox, unread = _badges(client.get("/").text)
    assert inbox == "1"
    assert unread is not None and int(unread) >= 1  # the request notified the owner


def test_consumer_has_no_inbox_badge(client, mesh):
    notify([mesh.consumer], kind="test", title="Hello")
    client.force_login(mesh.consumer)
    inbox, unread = _badges(client.get("/").text)
    assert inbox is None
    assert unread == "1"


def test_badges_cost_one_query_and_htmx_partials_none(client, mesh, django_assert_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(mesh.owner)
    client.get("/")  # per-process caches
    with CaptureQueriesContext(connection) as full:
        client.get("/search/", {"q": "orders"})
    with CaptureQueriesContext(connection) as partial:
        client.get("/search/", {"q": "orders"}, headers={"HX-Request": "true"})
    badge = [q for q in full.captured_queries if "meshportal_notification" in q["sql"]]
    assert len(badge) == 1
    assert not any("meshportal_notification" in q["sql"] for q in partial.captured_queries)
    assert len(partial.captured_queries) <= len(full.captured_queries) - 1


def test_cached_badges_follow_every_change(
    client, mesh, shared_cache, django_capture_on_commit_callbacks
):
    """With the shared cache (Redis), each user's badges are read from it and stay equal to a
    fresh count after every kind of change: a request, its approval, notifications read,
    a team role, the platform group."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from domains import services as teams
    from meshportal.context_processors import _NavCounts

    product = mesh.products[("orders", "published")]
    people = [mesh.owner, mesh.member, mesh.consumer, mesh.staff, mesh.other_owner]

    def check():
        for user in people:
            client.force_login(user)
            inbox, unread = _badges(client.get("/").text)
            fresh = _NavCounts(user)._count()
            assert (int(inbox or 0), int(unread or 0)) == fresh, user.username

    def change(action):
        with django_capture_on_commit_callbacks(execute=True):  # the hooks a commit runs
            action()
        check()

    check()
    client.force_login(mesh.owner)
    with CaptureQueriesContext(connection) as ctx:
        client.get("/")
    assert not any("meshportal_notification" in q["sql"] for q in ctx.captured_queries)

    req = None

    def ask():
        nonlocal req
        req = services.access_request_create(product=product, requester=mesh.consumer, purpose="bi")

    change(ask)
    change(lambda: client.post("/notifications/read/"))
    team = mesh.orders.owner_team
    change(lambda: teams.membership_set(team=team, user=mesh.member, role="owner"))
    change(lambda: teams.membership_set(team=team, user=mesh.member, role="member"))
    change(lambda: services.access_request_approve(request=req, by=mesh.owner))
    change(lambda: mesh.staff.groups.clear())  # no longer platform: no inbox
    change(lambda: notify([mesh.consumer], kind="test", title="Hello"))
