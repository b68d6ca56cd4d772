"""Who may propose, vote on, retire and waive policies, and who keeps the glossary.

Registered with meshportal.permissions from GovernanceConfig.ready(); pages, tasks and services
ask `can()` like everywhere else.
"""

from django.db.models import Exists, Q, QuerySet

from meshportal import permissions
from meshportal.permissions import (
    DECIDE,
    EDIT,
    GOVERNANCE_GROUP,
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
# Make a policy active without the council's vote: the platform team's, audited as such.
OVERRIDE = "override_policy"


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
    if action == OVERRIDE:
        return platform and policy.status in ("proposed", "rejected")
    if action == RETIRE:
        if policy.status not in ("proposed", "active"):
            return False
        return platform or (domain_owner if policy.domain_id else is_council(user))
    return platform


def waiver_rule(user, action: str, waiver) -> bool:
    if action == VIEW:
        # The delegate who decided a waiver keeps it in their list (their own decision), even
        # once the draft it is about is private to its team again.
        return (
            waiver.decided_by_id is not None and waiver.decided_by_id == user.pk
        ) or permissions.can(user, VIEW, waiver.product)
    if action == REQUEST_WAIVER:
        return is_platform(user) or is_team_owner(user, waiver.product.owner_team_id)
    if action == DECIDE:
        return (
            waiver.status == "requested"
            and waiver.requested_by_id != user.pk
            and (is_platform(user) or is_council(user))
        )
    return is_platform(user)


# -- the one exception to "drafts only to their team" ------------------------------------------
#
# A council delegate must read the draft a waiver is asked of them for, to decide it. They see
# that draft, and only it, while a waiver on it waits for their decision (one they may DECIDE:
# pending, and not their own request); once it is decided the draft is private to its team
# again. Registered with meshportal.permissions, so can(VIEW) and visible() — every page, API
# list, filter, count and notification — follow it; nothing else grants it.


def _awaiting_delegate(user_id: int) -> QuerySet:
    from governance.models import Waiver

    return Waiver.objects.filter(status=Waiver.Status.REQUESTED).exclude(requested_by_id=user_id)


def delegate_sees_draft(user, product) -> bool:
    return is_council(user) and _awaiting_delegate(user.pk).filter(product_id=product.pk).exists()


def delegate_drafts(user_id: int) -> QuerySet:
    """The ids of the drafts awaiting this delegate's decision, for visible(). The council test
    is inside the query rather than an is_council() here: most users are not on the council,
    and a separate group lookup would cost every page one more query."""
    from django.contrib.auth import get_user_model

    in_council = get_user_model().groups.through.objects.filter(
        user_id=user_id, group__name=GOVERNANCE_GROUP
    )
    return _awaiting_delegate(user_id).filter(Exists(in_council)).values("product_id")


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


def _visible_waivers(user, qs):
    """Waivers on products the user sees (a delegate sees the drafts awaiting their decision:
    delegate_drafts), and the waivers they decided themselves."""
    if is_platform(user):
        return qs
    through_product = permissions._visible_through_product("product")(user, qs)
    return qs.filter(Q(pk__in=through_product.values("pk")) | Q(decided_by_id=user.pk))


def register() -> None:
    from governance.models import GlossaryTerm, Policy, Waiver

    permissions.register(Policy, rule=policy_rule, visibility=_everyone)
    permissions.register(Waiver, rule=waiver_rule, visibility=_visible_waivers)
    permissions.register(GlossaryTerm, rule=glossary_rule, visibility=_everyone)
    permissions.register_draft_reader(may_see=delegate_sees_draft, drafts=delegate_drafts)
