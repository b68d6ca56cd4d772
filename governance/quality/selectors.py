"""Shared reads for data quality: the Quality tab, the mesh-wide page, the 30-day chart."""

from collections import defaultdict
from datetime import timedelta

from django.db.models import Count, F, Prefetch, Q, QuerySet, Value
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from governance.models import ProductQuality, QualityCheck, QualityRun
from meshportal.permissions import DraftsStatement, visible

HISTORY = 10
CHART_DAYS = 30


def product_checks(*, product) -> list[QualityCheck]:
    """The product's checks with their last runs (newest first) in `recent`, in 2 queries."""
    recent = QualityRun.objects.order_by("-queued_at", "-pk")
    return list(
        QualityCheck.objects.filter(port__product=product)
        .select_related("port")
        .prefetch_related(Prefetch("runs", queryset=recent[:HISTORY], to_attr="recent"))
        .order_by("port__slug", "name")
    )


def product_state(*, product) -> ProductQuality | None:
    return ProductQuality.objects.filter(product=product).first()


def daily_chart(*, product, days: int = CHART_DAYS) -> dict:
    """Pass/fail/error counts per day for the last `days` days, shaped for an SVG bar chart."""
    today = timezone.now().date()
    start = today - timedelta(days=days - 1)
    rows = (
        QualityRun.objects.filter(
            quality_check__port__product=product,
            finished_at__date__gte=start,
            status__in=["passed", "failed", "error"],
        )
        .annotate(day=TruncDate("finished_at"))
        .values("day")
        .annotate(
            passed=Count("pk", filter=Q(status="passed")),
            failed=Count("pk", filter=Q(status="failed")),
            error=Count("pk", filter=Q(status="error")),
        )
    )
    by_day = {r["day"]: r for r in rows}
    # An SVG with axes: percentages on the left, dates below, a bar per day (green the share
    # passing, red the rest), a grey tick for a day without runs.
    bar, gap, left, top, height, bottom = 12, 3, 38, 8, 100, 22
    bars: list[dict] = []
    dates = [start + timedelta(days=i) for i in range(days)]
    for i, day in enumerate(dates):
        r = by_day.get(day, {"passed": 0, "failed": 0, "error": 0})
        total = r["passed"] + r["failed"] + r["error"]
        rate = r["passed"] / total if total else None
        h = round(height * rate) if rate is not None else 0
        bars.append(
            {
                "day": day,
                "x": left + i * (bar + gap),
                "total": total,
                "passed": r["passed"],
                "failed": r["failed"],
                "error": r["error"],
                "rate": None if rate is None else round(100 * rate),
                "pass_h": h,
                "pass_y": top + height - h,
                "fail_h": height - h if total else 0,
            }
        )
    right = left + days * (bar + gap)
    return {
        "bars": bars,
        "bar": bar,
        "top": top,
        "left": left,
        "right": right,
        "baseline": top + height,
        "empty_y": top + height - 2,
        "width": right + 4,
        "height": top + height + bottom,
        "has_runs": any(b["total"] for b in bars),
        "y_ticks": [
            {"y": top + height - round(height * pct / 100), "label": f"{pct}%"}
            for pct in (0, 50, 100)
        ],
        "x_ticks": [  # the first and last dates flush with the bars, so none is cut off
            {"x": left, "label": dates[0].strftime("%b %d"), "anchor": "start"},
            {
                "x": left + (days // 2) * (bar + gap) + bar // 2,
                "label": dates[days // 2].strftime("%b %d"),
                "anchor": "middle",
            },
            {"x": right - gap, "label": dates[-1].strftime("%b %d"), "anchor": "end"},
        ],
        "label_y": top + height + 16,
    }


def failing_by_domain(*, user) -> list[tuple]:
    """[(domain, [check, …])] of checks whose latest result failed or errored, that the user
    may see."""
    qs = (
        visible(user, QualityCheck.objects.all())
        .filter(enabled=True, last_status__in=["failed", "error"])
        .select_related("port__product__domain")
        .order_by("port__product__domain__name", "port__product__name", "name")
    )
    groups = defaultdict(list)
    for check in qs:
        groups[check.port.product.domain].append(check)
    return list(groups.items())


def _check_rows(products):
    """Per domain of products: checked products and failing ones, from the stored per-product
    state (kept current after every run), not a join over every port and check."""
    State = ProductQuality.State
    return (
        products.filter(quality_state__state__in=[State.PASSING, State.FAILING])
        .order_by()
        .values("domain_id")
        .annotate(
            total=Count("pk"), failing=Count("pk", filter=Q(quality_state__state=State.FAILING))
        )
    )


def _check_counts(rows) -> dict[int, tuple[int, int]]:
    """{domain id: (checked products, failing ones)}."""
    return {r["domain_id"]: (r["total"], r["failing"]) for r in rows}


_draft_check_rows = DraftsStatement(_check_rows)


def domain_check_shares(user, domains) -> dict[int, str]:
    """Home page tiles: per domain, the share of (visible) checked products (every enabled
    check has run, or one fails) that pass all their checks. The products everyone sees are
    counted once for everyone (meshportal.cache, forgotten when a product or its quality state
    changes); only the drafts this user may see are counted per request."""
    from meshportal import cache as shared_cache
    from meshportal.permissions import PUBLIC_PRODUCTS, signed_in
    from products.models import DataProduct

    if not signed_in(user):
        return {}
    public = shared_cache.public_get(
        shared_cache.DOMAIN_SHARES,
        lambda: _check_counts(_check_rows(DataProduct.objects.filter(PUBLIC_PRODUCTS))),
    )
    own = _check_counts(_draft_check_rows(user))
    wanted = {d.pk for d in domains}
    out = {}
    for domain_id in wanted & (public.keys() | own.keys()):
        total, failing = (
            a + b
            for a, b in zip(public.get(domain_id, (0, 0)), own.get(domain_id, (0, 0)), strict=True)
        )
        if total:
            out[domain_id] = (
                f"{(total - failing) * 100 // total}% of checked products pass their checks"
            )
    return out


def trust_badges(products) -> dict[int, dict]:
    """The trust score on each node of a lineage graph (`products.lineage.graph.NODE_BADGES`)."""
    rows = ProductQuality.objects.filter(product__in=[p.pk for p in products]).values_list(
        "product_id", "trust_score", "freshness_breached"
    )
    return {
        pk: {
            "label": f"trust {score}" + (" · stale" if stale else ""),
            "level": "success" if score >= 80 and not stale else "warning",
        }
        for pk, score, stale in rows
    }


# -- incidents ---------------------------------------------------------------------------------


def _incident_order():
    from django.db.models import Case, IntegerField, Value, When

    # Open first, then acknowledged, then resolved; newest first within each.
    return Case(
        When(status="open", then=Value(0)),
        When(status="acknowledged", then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )


def incidents_visible(*, user):
    """Incidents of products the user may see, open first, with what lists show loaded."""
    from governance.models import Incident

    return (
        visible(user, Incident.objects.all())
        .select_related("product__domain", "quality_check", "acknowledged_by", "resolved_by")
        .annotate(rank=_incident_order())
        .order_by("rank", "-opened_at", "-pk")
    )


def product_incidents_qs(*, product):
    """The product's incidents, open first (the caller has checked the product is visible)."""
    from governance.models import Incident

    return (
        Incident.objects.filter(product=product)
        .select_related("quality_check", "acknowledged_by", "resolved_by")
        .annotate(rank=_incident_order())
        .order_by("rank", "-opened_at", "-pk")
    )


def product_incidents(*, user, product, limit: int = 20) -> list:
    """The product's incidents for its Quality tab (open first; the caller has checked VIEW)."""
    return list(product_incidents_qs(product=product)[:limit])


def incident_timelines(*, incidents) -> dict[int, list]:
    """The timelines of several incidents in one query: {incident id: [events, oldest first]}."""
    from governance.models import IncidentEvent

    out: dict[int, list] = {i.pk: [] for i in incidents}
    events = IncidentEvent.objects.filter(incident__in=list(out)).select_related("by")
    for e in events.order_by("at", "pk"):
        out[e.incident_id].append(e)
    return out


def active_incidents_by_domain(*, user) -> dict[int, int]:
    """Open or acknowledged incidents of the products the user may see, counted per domain
    (the compliance matrix's column)."""
    from governance.models import Incident

    rows = (
        visible(user, Incident.objects.filter(status__in=Incident.ACTIVE))
        .values("product__domain_id")
        .annotate(n=Count("pk"))
    )
    return {r["product__domain_id"]: r["n"] for r in rows}


def incident_timeline(*, incident) -> list:
    return list(incident.events.select_related("by", "run").order_by("at", "pk"))


# The lists' "Most trusted" order: the score (0 for a product never checked), then as by name.
BY_TRUST = ("-trust", "name", "pk")


def with_trust(queryset: QuerySet) -> QuerySet:
    """Annotate products with `trust` (0–100, 0 when never checked) so lists and search can
    sort by it: `with_trust(qs).order_by("-trust")`."""
    return queryset.annotate(trust=Coalesce(F("quality_state__trust_score"), Value(0)))


def by_trust(qs: QuerySet) -> QuerySet:
    """`qs` sorted most trusted first, its page's ids read through the score's index
    (`trust_page_ids`)."""
    qs = with_trust(qs).order_by(*BY_TRUST)
    qs.query.page_ids = trust_page_ids  # type: ignore[attr-defined]
    return qs


def trust_page_ids(qs: QuerySet, bottom: int, top: int, total: int | None = None) -> list | None:
    """IdsFirstPaginator's page_ids for a list sorted by trust: rows bottom..top of the order,
    sorted among the products scoring at least a floor instead of every product joined to its
    score. The floor is the score of the (2 x top)-th checked product of the whole mesh, read
    from the score's index; when `top` or more of the list score that much, every row of the
    page does. The products list (every product its reader sees; a filtered list or a search
    reads its pages otherwise: products.discovery.facets.search) at 10,000 products: 5.6-6.1
    -> 2.9-3.4 ms for the first page's ids. None (the ORDER BY as it is) when too few score
    that much (a reader who sees few products), the floor is 0 (never-checked products score 0
    too), or `qs` was sorted otherwise."""
    if tuple(qs.query.order_by) != BY_TRUST:
        return None
    if top <= bottom:
        return []
    scores = ProductQuality.objects.order_by("-trust_score").values_list("trust_score", flat=True)
    floor = list(scores[FLOOR_AT * top - 1 : FLOOR_AT * top])
    if not floor or not floor[0]:
        return None
    # The rows from `bottom` on scoring at least the floor: when `top - bottom` of them are
    # there, `top` rows of the list score at least the floor and rank before every row below.
    ids = list(
        qs.filter(quality_state__trust_score__gte=floor[0]).values_list("pk", flat=True)[bottom:top]
    )
    return ids if len(ids) == top - bottom else None


# The floor of trust_page_ids lies at this many times a page's last row in the mesh, so that
# the list's own rows reach the page's end above it with up to half the mesh out of the list.
FLOOR_AT = 2
