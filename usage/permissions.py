"""Who sees what of usage (see meshportal.permissions, the one model).

- Sending query logs (the ingest API): platform staff, or an account (a service account's
  token) holding the `usage.ingest_queryevent` permission, which only the platform team gives.
- A product's consumers by name (principals, their teams, unmanaged ones) and the queries they
  run: the product's owners and platform staff (OWN). Everyone who sees the product sees the
  aggregates only (queries per day, how many distinct consumers).
- Daily usage rows (`visible`): owners see their products' rows; anyone sees the rows of the
  principals mapped to them or to their teams (consumers see their own usage).
- Consumer mappings, ingest runs and raw events: platform staff only (the default rule).
- Portal analytics (page views, searches, the `/analytics/` page and its API): platform staff
  only (`may_see_analytics`; their rows: the default rule).
"""

from django.db.models import Q, QuerySet

from meshportal import permissions as p

INGEST_PERMISSION = "usage.ingest_queryevent"


def may_ingest(user) -> bool:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return p.is_platform(user) or user.has_perm(INGEST_PERMISSION)


def may_see_analytics(user) -> bool:
    """Portal analytics are the platform team's."""
    return p.is_platform(user)


def may_see_consumers(user, product) -> bool:
    return p.can(user, p.OWN, product)


def own_principals(user) -> QuerySet:
    """The principals mapped to the user or to one of their teams."""
    from usage.models import ConsumerMapping

    teams = list(p.team_roles(user))
    return ConsumerMapping.objects.filter(Q(user=user) | Q(team_id__in=teams)).values("principal")


def _visible_usage(user, qs: QuerySet) -> QuerySet:
    if p.is_platform(user):
        return qs
    owned = [t for t, role in p.team_roles(user).items() if role == "owner"]
    return qs.filter(Q(product__owner_team_id__in=owned) | Q(principal__in=own_principals(user)))


def register() -> None:
    from usage.models import ProductUsage

    p.register(ProductUsage, visibility=_visible_usage)
