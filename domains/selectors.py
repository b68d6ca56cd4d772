from django.db.models import QuerySet

from domains.models import Domain, Membership, Team
from meshportal.audit import entries_for, with_names
from meshportal.statements import Statement


def domain_list() -> QuerySet:
    return Domain.objects.select_related("owner_team", "parent")


_domain_by_slug = Statement(lambda slug: domain_list().filter(slug=slug))


def domain_get(*, slug: str) -> Domain | None:
    found = _domain_by_slug(slug=slug)
    return found[0] if found else None


_top_domains = Statement(
    lambda: Domain.objects.filter(parent__isnull=True).select_related("owner_team")
)


def top_domains() -> list[Domain]:
    """The domains at the top of the tree (the home page's tiles), in the model's order."""
    return _top_domains()


def _members(team: int) -> QuerySet:
    return (
        Membership.objects.filter(team_id=team)
        .select_related("user")
        .order_by("-role", "user__username")
    )


_members_of = Statement(_members)


def team_members(*, team: Team) -> list[Membership]:
    """The team's members with their users, owners first, then by user name."""
    return _members_of(team=team.pk)


def owners_of(team) -> QuerySet:
    """A team's owners with their users, by user name: `team` an id, or an outer reference
    (a product's page reads its team's owners in the product's own statement)."""
    return _members(team).filter(role="owner")


_owners = Statement(owners_of)


def team_owners(*, team: Team) -> list[Membership]:
    """The team's owners with their users (a product page names them), by name."""
    return _owners(team=team.pk)


def team_activity(*, team: Team, user):
    return with_names(entries_for(team, user=user))
