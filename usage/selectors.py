"""Reads of the usage app that pages and API share: a product's usage (aggregates for everyone
who sees it, consumers by name for its owners), unmanaged consumers, observed lineage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import F, Max, Q, Sum
from django.utils import timezone

from meshportal.permissions import EDIT, can, visible
from products.models import AccessRequest, DataProduct, InputPort
from usage.models import ConsumerMapping, ObservedEdge, ProductUsage
from usage.permissions import may_see_consumers

WINDOW_DAYS = 30
UNUSED_DAYS = 30


@dataclass
class Consumer:
    principal: str
    queries: int
    last_day: date
    mapping: ConsumerMapping | None
    managed: bool

    @property
    def who(self) -> str:
        if self.mapping is None:
            return ""
        return str(self.mapping.team or self.mapping.user)


def _since(days: int) -> date:
    return timezone.now().date() - timedelta(days=days - 1)


def daily_queries(*, product: DataProduct, days: int = WINDOW_DAYS) -> list[tuple[date, int]]:
    """Read queries per day over the last `days` days, zeros included (aggregates: no names)."""
    since = _since(days)
    totals = dict(
        ProductUsage.objects.filter(product=product, kind="read", day__gte=since)
        .values_list("day")
        .annotate(n=Sum("queries"))
        .order_by()
    )
    return [(since + timedelta(d), totals.get(since + timedelta(d), 0)) for d in range(days)]


def _mappings(principals: list[str], product: DataProduct) -> dict[str, ConsumerMapping]:
    """The mapping of each principal: one for the product's data sources wins over a global one."""
    sources = set(product.ports.exclude(data_source=None).values_list("data_source_id", flat=True))
    found: dict[str, ConsumerMapping] = {}
    rows = ConsumerMapping.objects.filter(principal__in=principals).filter(
        Q(data_source=None) | Q(data_source_id__in=sources)
    )
    for m in rows.select_related("team", "user").order_by("data_source_id"):
        if m.principal not in found or m.data_source_id is not None:
            found[m.principal] = m
    return found


def consumers(*, product: DataProduct, days: int = WINDOW_DAYS) -> list[Consumer]:
    """Who read the product in the last `days` days, most queries first, each with its mapping
    and whether it is managed: the owning team itself, or holder of an approved grant."""
    rows = list(
        ProductUsage.objects.filter(product=product, kind="read", day__gte=_since(days))
        .values("principal")
        .annotate(queries=Sum("queries"), last_day=Max("day"))
        .order_by("-queries", "principal")
    )
    mappings = _mappings([r["principal"] for r in rows], product)
    grants = AccessRequest.objects.filter(product=product, status=AccessRequest.Status.APPROVED)
    granted_users = set(grants.values_list("requester_id", flat=True))
    granted_teams = set(grants.exclude(team=None).values_list("team_id", flat=True))
    granted_teams.add(product.owner_team_id)
    user_ids = [m.user_id for m in mappings.values() if m.user_id]
    from domains.models import Membership

    teams_of: dict[int, set[int]] = {}
    for user_id, team_id in Membership.objects.filter(user_id__in=user_ids).values_list(
        "user_id", "team_id"
    ):
        teams_of.setdefault(user_id, set()).add(team_id)

    def managed(m: ConsumerMapping | None) -> bool:
        if m is None:
            return False
        if m.team_id is not None:
            return m.team_id in granted_teams
        return m.user_id in granted_users or bool(
            teams_of.get(m.user_id or 0, set()) & granted_teams
        )

    return [
        Consumer(
            r["principal"],
            r["queries"],
            r["last_day"],
            mappings.get(r["principal"]),
            managed(mappings.get(r["principal"])),
        )
        for r in rows
    ]


def unmanaged_consumers(*, product: DataProduct, days: int = WINDOW_DAYS) -> list[Consumer]:
    return [c for c in consumers(product=product, days=days) if not c.managed]


def own_usage(*, user, product: DataProduct, days: int = WINDOW_DAYS) -> list[dict]:
    """The reads of the product the user may see by name (usage.permissions: for anyone not
    owning it, their own principals' — consumers see their own usage)."""
    rows = ProductUsage.objects.filter(product=product, kind="read", day__gte=_since(days))
    return [
        dict(row)
        for row in visible(user, rows)
        .values("principal")
        .annotate(queries=Sum("queries"), last_day=Max("day"))
        .order_by("principal")
    ]


def chart(series: Sequence[tuple[date, int]], width: int = 600, height: int = 120) -> dict:
    """Bars for an inline SVG: x, y, w, h per point (a day, or a run's time), in the viewBox's
    units."""
    peak = max((n for _, n in series), default=0) or 1
    step = width / max(len(series), 1)
    bars = [
        {
            "day": day,
            "n": n,
            "x": round(i * step + 1, 1),
            "w": round(max(step - 2, 1), 1),
            "h": round(n / peak * (height - 4), 1),
            "y": round(height - n / peak * (height - 4), 1),
        }
        for i, (day, n) in enumerate(series)
    ]
    return {"bars": bars, "width": width, "height": height, "peak": peak}


def product_usage(*, user, product: DataProduct, days: int = WINDOW_DAYS) -> dict:
    """What the Usage tab and `GET /api/v1/usage/products/…` show this user: aggregates for
    whoever sees the product; consumers by name for its owners; their own usage for others."""
    series = daily_queries(product=product, days=days)
    distinct = (
        ProductUsage.objects.filter(product=product, kind="read", day__gte=_since(days))
        .values("principal")
        .distinct()
        .count()
    )
    data: dict = {
        "days": series,
        "total_queries": sum(n for _, n in series),
        "distinct_consumers": distinct,
        "may_see_consumers": may_see_consumers(user, product),
    }
    if data["may_see_consumers"]:
        data["consumers"] = consumers(product=product, days=days)
        data["unmanaged"] = [c for c in data["consumers"] if not c.managed]
    else:
        data["own"] = own_usage(user=user, product=product, days=days)
    return data


def usage_tab_context(request, product: DataProduct) -> dict:
    usage = product_usage(user=request.user, product=product)
    return {"usage": usage, "usage_chart": chart(usage["days"]), "window_days": WINDOW_DAYS}


# -- observed lineage ----------------------------------------------------------------------------


def observed_inputs(*, user, product: DataProduct) -> list[dict]:
    """Products this one was seen reading while writing its own ports, each marked declared or
    not; only sources the user may see."""
    edges = list(
        ObservedEdge.objects.filter(target_product=product).select_related(
            "source_product__domain", "source_port"
        )
    )
    seen = set(
        visible(
            user, DataProduct.objects.filter(pk__in={e.source_product_id for e in edges})
        ).values_list("pk", flat=True)
    )
    declared = set(
        InputPort.objects.filter(product=product).values_list("source_port_id", flat=True)
    )
    out: dict[int, dict] = {}
    for e in edges:
        if e.source_product_id not in seen:
            continue
        item = out.setdefault(
            e.source_port_id,
            {"port": e.source_port, "product": e.source_product, "queries": 0,
             "last_seen": e.last_seen, "declared": e.source_port_id in declared},
        )  # fmt: skip
        item["queries"] += e.queries
        item["last_seen"] = max(item["last_seen"], e.last_seen)
    return sorted(out.values(), key=lambda i: (i["declared"], -i["queries"]))


def observed_product_edges() -> list[tuple[int, int, int]]:
    """Every observed edge as (source product id, source port id, product id), one query; the
    caller (products.lineage) filters them by what the user may see."""
    return list(
        ObservedEdge.objects.exclude(source_product_id=F("target_product_id"))
        .order_by()
        .values_list("source_product_id", "source_port_id", "target_product_id")
        .distinct()
    )


def declared_unused(*, user, product: DataProduct, days: int = UNUSED_DAYS) -> list[InputPort]:
    """Declared inputs no observed query has read in `days` days; only when the product's own
    writes are observed at all (without usage data, nothing can be called unused)."""
    since = _since(days)
    if not ProductUsage.objects.filter(product=product, kind="write", day__gte=since).exists():
        return []
    used = ObservedEdge.objects.filter(target_product=product, last_seen__gte=since).values(
        "source_port_id"
    )
    sources = visible(user, DataProduct.objects.all()).values("pk")
    return list(
        InputPort.objects.filter(product=product, source_product__in=sources)
        .exclude(source_port_id__in=used)
        .select_related("source_product__domain", "source_port")
    )


def observed_lineage_section(request, product: DataProduct) -> dict | None:
    """The Lineage tab's "Observed" section (products.lineage.views.TAB_SECTIONS). One query
    when the logs say nothing about the product."""
    if not ProductUsage.objects.filter(product=product, kind="write").exists():
        return None  # no observed writes: no observed inputs, nothing to call unused
    inputs = observed_inputs(user=request.user, product=product)
    unused = declared_unused(user=request.user, product=product)
    if not inputs and not unused:
        return None
    return {
        "template": "usage/lineage_section.html",
        "observed_inputs": inputs,
        "declared_unused": unused,
        "unused_days": UNUSED_DAYS,
        "can_declare": can(request.user, EDIT, product),
    }


# -- consumer mappings (console) ---------------------------------------------------------------


@dataclass
class Suggestion:
    principal: str
    queries: int
    team: object | None = None
    user: object | None = None


def _words(text: str) -> set[str]:
    import re

    return {w for w in re.split(r"[^a-z0-9]+", text.lower()) if len(w) > 2}


def mapping_suggestions(*, days: int = WINDOW_DAYS, limit: int = 50) -> list[Suggestion]:
    """Principals seen in the last `days` days that no mapping names, busiest first, each with
    a guess: the person whose user name it is, else the team whose slug words it shares."""
    from django.contrib.auth import get_user_model

    from domains.models import Team

    mapped = ConsumerMapping.objects.values("principal")
    rows = list(
        ProductUsage.objects.filter(day__gte=_since(days))
        .exclude(principal__in=mapped)
        .values("principal")
        .annotate(queries=Sum("queries"))
        .order_by("-queries", "principal")[:limit]
    )
    users = get_user_model().objects.in_bulk(
        [r["principal"].lower() for r in rows], field_name="username"
    )
    teams = [(t, _words(t.slug)) for t in Team.objects.all()]
    out = []
    for r in rows:
        s = Suggestion(r["principal"], r["queries"])
        s.user = users.get(r["principal"].lower())
        if s.user is None:
            words = _words(r["principal"])
            s.team = next((t for t, tw in teams if tw & words), None)
        out.append(s)
    return out
