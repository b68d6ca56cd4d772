from django.db.models import QuerySet

from domains.models import Domain, Membership, Team
from meshportal.audit import entries_for, with_names
from meshportal.statements import Statement


def domain_list() -> QuerySet:
    return Domain.objects.select_related("owner_team", "parent")


def _members(team: int) -> QuerySet:
    return (
        Membership.objects.filter(team_id=team)
        .select_related("user")
        .order_by("-role", "user__username")
    )


def team_members(*, team: Team) -> QuerySet:
    return _members(team.pk)


_owners = Statement(lambda team: _members(team).filter(role="owner"))


def team_owners(*, team: Team) -> list[Membership]:
    """The team's owners with their users (a product page names them), by name."""
    return _owners(team=team.pk)


def team_activity(*, team: Team, user):
    return with_names(entries_for(team, user=user))
