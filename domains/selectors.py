from django.db.models import QuerySet

from domains.models import Domain, Membership, Team
from meshportal.audit import entries_for, with_names


def domain_list() -> QuerySet:
    return Domain.objects.select_related("owner_team", "parent")


def team_members(*, team: Team) -> QuerySet:
    return (
        Membership.objects.filter(team=team)
        .select_related("user")
        .order_by("-role", "user__username")
    )


def team_activity(*, team: Team, user):
    return with_names(entries_for(team, user=user))
