from typing import Any

from meshportal.permissions import is_platform


class _NavCounts:
    """The navigation bar's two badges, read together in one query and only if a template shows
    them (htmx partials do not render the bar, so they pay nothing)."""

    def __init__(self, user):
        self.user = user
        self._counts: tuple[int, int] | None = None

    def _load(self) -> tuple[int, int]:
        if self._counts is None:
            from meshportal import cache

            # Cached per user until a notification, access request, product, membership or
            # group changes (each app's ready() connects its models to cache.forget_users):
            # building this query cost more than the rest of the ceiling page.
            self._counts = cache.user_get(cache.NAV_COUNTS, self.user.pk, self._count)
        return self._counts

    def _count(self) -> tuple[int, int]:
        from django.contrib.auth import get_user_model
        from django.db.models import Count, IntegerField, Subquery, Value
        from django.db.models.functions import Coalesce

        from products.selectors import inbox, may_decide

        def count(qs):
            one = qs.order_by().values(one=Value(1)).annotate(n=Count("pk")).values("n")
            return Coalesce(Subquery(one[:1]), 0, output_field=IntegerField())

        unread = self.user.notifications.filter(read_at__isnull=True)
        counts = {"unread": count(unread)}
        if may_decide(self.user):
            counts["inbox"] = count(inbox(user=self.user))
        row: Any = get_user_model().objects.filter(pk=self.user.pk).values(**counts).first() or {}
        return (int(row.get("inbox") or 0), int(row.get("unread") or 0))

    @property
    def inbox(self) -> int:
        return self._load()[0]

    @property
    def unread(self) -> int:
        return self._load()[1]


def navigation(request):
    """Counts shown in the navigation bar for the signed-in user (one query, when shown)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from products.basket import ids as basket_ids

    return {
        "nav": _NavCounts(user),
        "nav_is_platform": is_platform(user),
        "basket_ids": basket_ids(request.session),
    }


def service_banner(request):
    """Staff see when the task queue is down or tasks wait to be sent (cached, see queue.status)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_staff:
        return {}
    from meshportal.queue import status

    state = status()
    if state["broker_ok"] and not state["pending"]:
        return {}
    return {"queue_status": state}
