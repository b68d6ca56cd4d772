"""The request basket: products a consumer collects while browsing, kept in their session, and
submitted once (one purpose, one duration) through `services.access_requests_create`.

Only ids live in the session; every read goes through `visible()`, so a product that became
invisible meanwhile (unpublished, deleted) simply drops out of the basket."""

from django.db.models import QuerySet

from meshportal.permissions import visible
from products import selectors

SESSION_KEY = "access_basket"
MAX_ITEMS = 50


def ids(session) -> list[int]:
    raw = session.get(SESSION_KEY, [])
    return [int(i) for i in raw if isinstance(i, int)][:MAX_ITEMS]


def add(session, product_id: int) -> bool:
    """Put a product in the basket; False when it was already there or the basket is full."""
    current = ids(session)
    if product_id in current or len(current) >= MAX_ITEMS:
        return False
    session[SESSION_KEY] = [*current, product_id]
    return True


def remove(session, product_id: int) -> None:
    session[SESSION_KEY] = [i for i in ids(session) if i != product_id]


def clear(session) -> None:
    session.pop(SESSION_KEY, None)


def products(session, *, user) -> QuerySet:
    """The basket's products that the user may still see, in list order of name."""
    return (
        visible(user, selectors.product_queryset())
        .filter(pk__in=ids(session))
        .order_by("domain__name", "name")
    )
