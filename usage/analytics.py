"""Portal analytics for the platform team (`/analytics/`): active people, the most used
products (by the warehouses' query logs, watchers and access requests), how long access
requests wait for a decision, and policy compliance over the last evaluation runs. Reads only;
every figure comes from rows the portal already keeps."""

from __future__ import annotations

import statistics
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db.models import Count, Q, Sum
from django.utils import timezone

from governance.models import PolicyRunSummary
from products.models import AccessRequest, DataProduct
from usage.models import ProductUsage
from usage.selectors import chart

TOP = 10
RUNS = 30


def _hours(delta: timedelta) -> float:
    return round(delta.total_seconds() / 3600, 1)


def active_people(now) -> dict:
    users = get_user_model().objects.filter(is_active=True)
    return {
        "last_7_days": users.filter(last_login__gte=now - timedelta(days=7)).count(),
        "last_30_days": users.filter(last_login__gte=now - timedelta(days=30)).count(),
        "accounts": users.count(),
    }


def top_products(now) -> dict:
    since = (now - timedelta(days=30)).date()
    queried = list(
        ProductUsage.objects.filter(kind="read", day__gte=since)
        .values("product__domain__slug", "product__slug", "product__name")
        .annotate(queries=Sum("queries"), consumers=Count("principal", distinct=True))
        .order_by("-queries")[:TOP]
    )
    watched = list(
        DataProduct.objects.annotate(watchers=Count("watches"))
        .filter(watchers__gt=0)
        .values("domain__slug", "slug", "name", "watchers")
        .order_by("-watchers", "name")[:TOP]
    )
    requested = list(
        DataProduct.objects.annotate(
            requests=Count(
                "access_requests",
                filter=Q(access_requests__created_at__gte=now - timedelta(days=30)),
            )
        )
        .filter(requests__gt=0)
        .values("domain__slug", "slug", "name", "requests")
        .order_by("-requests", "name")[:TOP]
    )
    return {"queried": queried, "watched": watched, "requested": requested}


def access_decisions(now) -> dict:
    """Hours from an access request to its decision (decided in the last 90 days), and what
    still waits."""
    decided = AccessRequest.objects.filter(
        decided_at__isnull=False, decided_at__gte=now - timedelta(days=90)
    ).values_list("created_at", "decided_at")
    waits = sorted(_hours(d - c) for c, d in decided if d is not None)
    pending = AccessRequest.objects.filter(status=AccessRequest.Status.PENDING)
    oldest = pending.order_by("created_at").values_list("created_at", flat=True).first()
    return {
        "decided": len(waits),
        "median_hours": statistics.median(waits) if waits else None,
        "p90_hours": waits[max(int(len(waits) * 0.9) - 1, 0)] if waits else None,
        "pending": pending.count(),
        "oldest_pending_hours": _hours(now - oldest) if oldest else None,
    }


def compliance_trend() -> dict:
    """Share of (policy, product) results passing after each of the last evaluation runs."""
    rows = list(
        PolicyRunSummary.objects.values("run_id", "run__started_at")
        .annotate(passed=Sum("passed"), failed=Sum("failed"))
        .order_by("-run__started_at")[:RUNS]
    )[::-1]
    points = [
        (
            r["run__started_at"],
            round(100 * r["passed"] / (r["passed"] + r["failed"]))
            if r["passed"] + r["failed"]
            else 0,
        )
        for r in rows
    ]
    return {"points": points, "chart": chart(points, height=100)}


def portal_analytics() -> dict:
    now = timezone.now()
    return {
        "people": active_people(now),
        "top": top_products(now),
        "access": access_decisions(now),
        "compliance": compliance_trend(),
    }
