"""Who may propose, vote on, retire and waive policies, and who keeps the glossary.

Registered with meshportal.permissions from GovernanceConfig.ready(); pages, tasks and services
ask `can()` like everywhere else.
"""

from meshportal import permissions
from meshportal.permissions import (
    DECIDE,
    EDIT,
    RETIRE,
    VIEW,
    is_council,
    is_platform,
    is_team_owner,
    team_roles,
)

PROPOSE = "propose_policy"
VOTE = "vote"
EVALUATE = "evaluate_policies"
REQUEST_WAIVER = "request_waiver"
CREATE_TERM = "create_term"


def owns_a_domain(user) -> bool:
    from domains.models import Domain

    owned = [t for t, r in team_roles(user).items() if r == "owner"]
    return bool(owned) and Domain.objects.filter(owner_team_id__in=owned).exists()


def _domain_owner(user, domain_id, domain) -> bool:
    return domain_id is not None and is_team_owner(user, domain.owner_team_id)


def policy_rule(user, action: str, policy) -> bool:
    if action == VIEW:
        return True
    platform = is_platform(user)
    if action == EVALUATE:
        return platform or is_council(user)
    domain_owner = _domain_owner(
        user, policy.domain_id, policy.domain if policy.domain_id else None
    )
    if action == PROPOSE:
        # A global policy: any domain owner or council delegate. A domain's: that domain's owners.
        if policy.domain_id:
            return platform or domain_owner
        return platform or is_council(user) or owns_a_domain(user)
    if action == VOTE:
        return policy.status == "proposed" and policy.domain_id is None and is_council(user)
    if action == RETIRE:
        if policy.status not in ("proposed", "active"):
            return False
        return platform or (domain_owner if policy.domain_id else is_council(user))
    return platform


def waiver_rule(user, action: str, waiver) -> bool:
    if action == VIEW:
        return permissions.can(user, VIEW, waiver.product)
    if action == REQUEST_WAIVER:
        return is_platform(user) or is_team_owner(user, waiver.product.owner_team_id)
    if action == DECIDE:
        return (
            waiver.status == "requested"
            and waiver.requested_by_id != user.pk
            and (is_platform(user) or is_council(user))
        )
    return is_platform(user)


def glossary_rule(user, action: str, term) -> bool:
    if action == VIEW:
        return True
    if action == EDIT:
        return (
            is_platform(user)
            or is_council(user)
            or _domain_owner(user, term.domain_id, term.domain if term.domain_id else None)
        )
    if action == CREATE_TERM:  # the council keeps global terms, owners their domain's
        return is_platform(user) or is_council(user) or owns_a_domain(user)
    return is_platform(user)


def _everyone(user, qs):
    return qs


def register() -> None:
    from .models import GlossaryTerm, Policy, Waiver

    permissions.register(Policy, rule=policy_rule, visibility=_everyone)
    permissions.register(
        Waiver, rule=waiver_rule, visibility=permissions._visible_through_product("product")
    )
    permissions.register(GlossaryTerm, rule=glossary_rule, visibility=_everyone)
