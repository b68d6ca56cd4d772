"""Optional OpenID Connect sign-on: maps the identity provider's group claim to team memberships.

Active only when OIDC_RP_CLIENT_ID is set (see settings). Group values name teams by slug:

    team:<slug>:owner   -> owner of team <slug>
    team:<slug>         -> member of team <slug> (also team:<slug>:member)

Other values are ignored. The prefix (`team:`) comes from OIDC_TEAM_GROUP_PREFIX, the claim's
name from OIDC_GROUPS_CLAIM. At each sign-in the user's memberships follow the claim: teams
appear, roles change, teams no longer listed are left. Teams themselves are created in the
portal; a group naming an unknown team is logged and skipped. The portal's rules still hold:
a team's last owner is never demoted or removed by a sign-in.
"""

import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

log = logging.getLogger(__name__)

OWNER, MEMBER = "owner", "member"


def username_from_claims(email, claims=None) -> str:
    """The identity provider's preferred_username, else the e-mail address."""
    claims = claims or {}
    return (claims.get("preferred_username") or email or "")[:150]


def parse_team_groups(groups, prefix: str | None = None) -> dict[str, str]:
    """{team slug: role} from the claim's values; owner wins when a team is listed twice."""
    prefix = settings.OIDC_TEAM_GROUP_PREFIX if prefix is None else prefix
    if isinstance(groups, str):
        groups = [groups]
    roles: dict[str, str] = {}
    for value in groups or []:
        if not isinstance(value, str) or not value.startswith(prefix):
            continue
        slug, _, role = value[len(prefix) :].partition(":")
        role = role or MEMBER
        if not slug or role not in (OWNER, MEMBER):
            continue
        if roles.get(slug) != OWNER:
            roles[slug] = role
    return roles


def sync_teams(user, claims: dict) -> dict[str, str]:
    """Make user's memberships match the group claim; returns {slug: what happened}."""
    from domains.models import Membership, Team
    from domains.services import membership_remove, membership_set

    wanted = parse_team_groups(claims.get(settings.OIDC_GROUPS_CLAIM))
    outcome: dict[str, str] = {}
    teams = {t.slug: t for t in Team.objects.filter(slug__in=wanted).select_related("group")}
    for slug, role in wanted.items():
        team = teams.get(slug)
        if team is None:
            log.warning("OIDC group names unknown team %r; skipped", slug)
            outcome[slug] = "unknown team"
            continue
        try:
            membership_set(team=team, user=user, role=role)
            outcome[slug] = role
        except ValidationError as exc:
            log.warning("OIDC sync kept %s in %s: %s", user, slug, exc.messages)
            outcome[slug] = "kept"
    stale = Membership.objects.filter(user=user).exclude(team__slug__in=wanted)
    for membership in stale.select_related("team__group"):
        try:
            membership_remove(team=membership.team, user=user)
            outcome[membership.team.slug] = "removed"
        except ValidationError as exc:
            log.warning("OIDC sync kept %s in %s: %s", user, membership.team.slug, exc.messages)
            outcome[membership.team.slug] = "kept"
    return outcome


class TeamMappingOIDCBackend(OIDCAuthenticationBackend):
    """mozilla-django-oidc's backend, plus names from the claims and team sync at each sign-in."""

    def create_user(self, claims):
        user = super().create_user(claims)
        return self.update_user(user, claims)

    def update_user(self, user, claims):
        changed = False
        for field, claim in (
            ("email", "email"),
            ("first_name", "given_name"),
            ("last_name", "family_name"),
        ):
            value = claims.get(claim)
            if value and getattr(user, field) != value:
                setattr(user, field, value)
                changed = True
        if changed:
            user.save(update_fields=["email", "first_name", "last_name"])
        sync_teams(user, claims)
        return user
