from meshportal.permissions import is_platform


def navigation(request):
    """Counts shown in the navigation bar for the signed-in user (two small queries)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from products.basket import ids as basket_ids
    from products.selectors import inbox_count

    return {
        "nav_inbox_count": inbox_count(user),
        "nav_unread_count": user.notifications.filter(read_at__isnull=True).count(),
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
