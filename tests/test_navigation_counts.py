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
