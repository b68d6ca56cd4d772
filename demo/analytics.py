"""Demo portal analytics: a fortnight of product page views and searches, recorded through the
same services as the pages, so the platform team's `/analytics/` shows something right after
`make run` (most viewed products, top searches, searches that found nothing).

Idempotent: recorded only when nothing was recorded in the last week.
"""

import random
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model

from products.models import DataProduct
from usage import services as usage_services
from usage.models import ProductView, SearchDay

DAYS = 14
# username -> the products (slugs) they open most days
VIEWERS = {
    "carl": ["orders", "customer-profiles"],
    "tariq": ["orders", "daily-revenue"],
    "mia": ["customer-profiles", "orders", "login-events"],
    "pat": ["daily-revenue"],
    "olivia": ["orders", "order-items", "returns"],
    "uma": ["customer-profiles", "user-accounts"],
}
# (query, found something, times a day at most): two that the mesh cannot answer
SEARCHES = [
    ("orders", True, 4),
    ("revenue", True, 2),
    ("customer", True, 2),
    ("churn", False, 2),
    ("gdpr consent", False, 1),
    ("returns", True, 1),
]


def seed() -> int:
    """Record the fortnight; returns the page views recorded (0: skipped)."""
    now = datetime.now(UTC)
    since = (now - timedelta(days=7)).date()
    if (
        ProductView.objects.filter(day__gte=since).exists()
        or SearchDay.objects.filter(day__gte=since).exists()
    ):
        return 0
    rng = random.Random(19)  # noqa: S311  # nosec B311 - demo data
    users = get_user_model().objects.in_bulk(list(VIEWERS), field_name="username")
    products = {
        p.slug: p
        for p in DataProduct.objects.filter(
            slug__in={slug for slugs in VIEWERS.values() for slug in slugs}
        ).order_by("pk")
    }
    views = 0
    for day in range(DAYS, 0, -1):
        at = now - timedelta(days=day)
        for username, slugs in VIEWERS.items():
            for slug in slugs:
                if username in users and slug in products and rng.random() < 0.7:
                    for _ in range(rng.randint(1, 3)):
                        usage_services.product_view_record(
                            product=products[slug], user=users[username], now=at
                        )
                        views += 1
        for query, found, most in SEARCHES:
            for _ in range(rng.randint(0, most)):
                usage_services.search_record(query=query, found=found, now=at)
    return views
