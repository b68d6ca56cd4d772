"""Portal analytics for the platform team (`/analytics/`, `GET /api/v1/usage/analytics/`):
active people, the most used products (page views, the warehouses' query logs, watchers and
access requests), top searches and searches that found nothing, how long access requests wait
for a decision, and policy compliance over the last evaluation runs. Reads only; page views and
searches are recorded by usage.services (`product_view_record`, `search_record`)."""

from __future__ import annotations

import statistics
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db.models import Count, Q, Sum
from django.utils import timezone

from governance.models import PolicyRunSummary
from products.models import AccessRequest, DataProduct
from usage.models import ProductUsage, ProductView, SearchDay
from usage.selectors import chart

TOP = 10
RUNS = 30
WINDOW_DAYS = 30
WEEKS = 12


def _days(now) -> list:
    since = now.date() - timedelta(days=WINDOW_DAYS - 1)
    return [since + timedelta(days=i) for i in range(WINDOW_DAYS)]


def _hours(delta: timedelta) -> float:
    return round(delta.total_seconds() / 3600, 1)


def active_people(now) -> dict:
    """Sign-ins, and the people who opened a product page each day of the last 30."""
    users = get_user_model().objects.filter(is_active=True)
    days = _days(now)
    per_day = dict(
        ProductView.objects.filter(day__gte=days[0])
        .values_list("day")
        .annotate(n=Count("user", distinct=True))
        .order_by()
    )
    series = [(d, per_day.get(d, 0)) for d in days]
    return {
        "last_7_days": users.filter(last_login__gte=now - timedelta(days=7)).count(),
        "last_30_days": users.filter(last_login__gte=now - timedelta(days=30)).count(),
        "accounts": users.count(),
        "viewers_30_days": ProductView.objects.filter(day__gte=days[0])
        .values("user")
        .distinct()
        .count(),
        "daily": series,
        "chart": chart(series, height=100),
    }


def top_viewed(now) -> list[dict]:
    """Products by page views over the last 30 days, with how many people opened each."""
    return [
        dict(row)
        for row in ProductView.objects.filter(day__gte=_days(now)[0])
        .values("product__domain__slug", "product__slug", "product__name")
        .annotate(views=Sum("views"), viewers=Count("user", distinct=True))
        .order_by("-views", "product__name")[:TOP]
    ]


def searches(now) -> dict:
    """The most frequent searches, the searches that found nothing, and searches per day."""
    days = _days(now)
    recent = SearchDay.objects.filter(day__gte=days[0], searches__gt=0)
    top = list(
        recent.values("query")
        .annotate(n=Sum("searches"), empty=Sum("empty"))
        .order_by("-n", "query")[:TOP]
    )
    empty = list(
        recent.filter(empty__gt=0)
        .values("query")
        .annotate(n=Sum("empty"))
        .order_by("-n", "query")[:TOP]
    )
    per_day = dict(recent.values_list("day").annotate(n=Sum("searches")).order_by())
    series = [(d, per_day.get(d, 0)) for d in days]
    return {
        "top": top,
        "empty": empty,
        "total": sum(n for _, n in series),
        "daily": series,
        "chart": chart(series, height=100),
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
    return {
        "viewed": top_viewed(now),
        "queried": queried,
        "watched": watched,
        "requested": requested,
    }


def access_decisions(now) -> dict:
    """Hours from an access request to its decision (decided in the last 90 days), and what
    still waits."""
    decided = AccessRequest.objects.filter(
        decided_at__isnull=False, decided_at__gte=now - timedelta(days=90)
    ).values_list("created_at", "decided_at")
    waits = sorted(_hours(d - c) for c, d in decided if d is not None)
    weekly = _weekly_medians(now)
    pending = AccessRequest.objects.filter(status=AccessRequest.Status.PENDING)
    oldest = pending.order_by("created_at").values_list("created_at", flat=True).first()
    return {
        "decided": len(waits),
        "median_hours": statistics.median(waits) if waits else None,
        "p90_hours": waits[max(int(len(waits) * 0.9) - 1, 0)] if waits else None,
        "pending": pending.count(),
        "oldest_pending_hours": _hours(now - oldest) if oldest else None,
        "weekly": weekly,
        "chart": chart(weekly, height=100),
    }


def _weekly_medians(now) -> list:
    """(first day of the week, median hours to a decision) for the last WEEKS weeks, 0 for a
    week without a decision."""
    start = (now - timedelta(weeks=WEEKS - 1)).date()
    start -= timedelta(days=start.weekday())
    waits: dict = {}
    for created, decided in AccessRequest.objects.filter(
        decided_at__isnull=False, decided_at__date__gte=start
    ).values_list("created_at", "decided_at"):
        if decided is None:  # filtered out above; for the type checker
            continue
        week = decided.date() - timedelta(days=decided.weekday())
        waits.setdefault(week, []).append(_hours(decided - created))
    weeks = [start + timedelta(weeks=i) for i in range(WEEKS)]
    return [(w, statistics.median(waits[w]) if w in waits else 0) for w in weeks]


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
        "searches": searches(now),
        "access": access_decisions(now),
        "compliance": compliance_trend(),
    }


def analytics_json(data: dict) -> dict:
    """The figures of `portal_analytics` without the charts' geometry, for the API."""

    def product(row: dict, prefix: str = "product__") -> dict:
        return {
            "product": f"{row[prefix + 'domain__slug']}/{row[prefix + 'slug']}",
            "name": row[prefix + "name"],
        }

    people, top, found, access = data["people"], data["top"], data["searches"], data["access"]
    return {
        "people": {
            **{
                k: people[k] for k in ("last_7_days", "last_30_days", "accounts", "viewers_30_days")
            },
            "daily": [{"day": d, "people": n} for d, n in people["daily"]],
        },
        "top_products": {
            "viewed": [
                {**product(r), "views": r["views"], "viewers": r["viewers"]} for r in top["viewed"]
            ],
            "queried": [
                {**product(r), "queries": r["queries"], "consumers": r["consumers"]}
                for r in top["queried"]
            ],
            "watched": [{**product(r, ""), "watchers": r["watchers"]} for r in top["watched"]],
            "requested": [{**product(r, ""), "requests": r["requests"]} for r in top["requested"]],
        },
        "searches": {
            "total": found["total"],
            "top": [
                {"query": r["query"], "searches": r["n"], "empty": r["empty"]} for r in found["top"]
            ],
            "no_result": [{"query": r["query"], "searches": r["n"]} for r in found["empty"]],
            "daily": [{"day": d, "searches": n} for d, n in found["daily"]],
        },
        "access_requests": {
            **{
                k: access[k]
                for k in ("decided", "median_hours", "p90_hours", "pending", "oldest_pending_hours")
            },
            "weekly_median_hours": [{"week": w, "hours": h} for w, h in access["weekly"]],
        },
        "compliance": [
            {"run_started_at": at, "passing_percent": share}
            for at, share in data["compliance"]["points"]
        ],
    }
