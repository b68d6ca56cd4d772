"""Writes for teams, memberships and domains. Every door (page, API, admin, task) calls these."""

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from guardian.shortcuts import assign_perm, remove_perm

from domains.models import Domain, Membership, Team
from meshportal import audit
from meshportal.permissions import clear_caches

DOMAIN_TEAM_PERMS = ("change_domain",)


@transaction.atomic
def team_create(
    *, slug: str, name: str, description: str = "", contact_email: str = "", owners=()
) -> Team:
    if Team.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": f"A team with the slug “{slug}” already exists."})
    group, _ = Group.objects.get_or_create(name=f"team:{slug}")
    team = Team(
        slug=slug, name=name, description=description, contact_email=contact_email, group=group
    )
    team.full_clean()
    team.save()
    audit.record(action="create", obj=team, changes=audit.diff({}, audit.snapshot(team)))
    for user in owners:
        membership_set(team=team, user=user, role=Membership.Role.OWNER)
    return team


@transaction.atomic
def team_update(*, team: Team, **fields) -> Team:
    before = audit.snapshot(team)
    for key, value in fields.items():
        setattr(team, key, value)
    team.full_clean()
    team.save()
    audit.record(action="update", obj=team, changes=audit.diff(before, audit.snapshot(team)))
    return team


def check_role(role: str) -> None:
    """A membership's role is owner or member (membership_set, members_add, the restore)."""
    if role not in Membership.Role.values:
        raise ValidationError({"role": f"Unknown role “{role}”: choose owner or member."})


def _owner_count(team: Team) -> int:
    return team.memberships.filter(role=Membership.Role.OWNER).count()


@transaction.atomic
def membership_set(*, team: Team, user, role: str) -> Membership:
    """Add user to team with role, or change their role. The last owner stays an owner."""
    check_role(role)
    membership = Membership.objects.select_for_update().filter(team=team, user=user).first()
    if membership is None:
        membership = Membership.objects.create(team=team, user=user, role=role)
        team.group.user_set.add(user)
        audit.record(
            action="create",
            obj=membership,
            scope=team,
            changes={"user": [None, user.get_username()], "role": [None, role]},
        )
    elif membership.role != role:
        if membership.role == Membership.Role.OWNER and _owner_count(team) <= 1:
            raise ValidationError(
                {
                    "role": f"{user.get_username()} is the last owner of {team}; "
                    "make someone else an owner first."
                }
            )
        audit.record(
            action="update", obj=membership, scope=team, changes={"role": [membership.role, role]}
        )
        membership.role = role
        membership.save(update_fields=["role"])
    clear_caches(user)
    return membership


@transaction.atomic
def members_add(*, team: Team, members: list[tuple]) -> list[Membership]:
    """Many new members of team at once, [(user, role)] (a restore): as membership_set adds
    each (the role checked, the team's group, an audit entry), with a few statements. Someone
    already in it, or named twice: ValidationError."""
    if not members:
        return []
    for _user, role in members:
        check_role(role)
    users = [u.pk for u, _ in members]
    if len(set(users)) < len(users) or team.memberships.filter(user_id__in=users).exists():
        raise ValidationError({"user": f"Someone is named twice among the members of {team}."})
    created = Membership.objects.bulk_create(
        [Membership(team=team, user=user, role=role) for user, role in members]
    )
    team.group.user_set.add(*[u for u, _ in members])
    audit.record_many(
        ("create", m, {"user": [None, m.user.get_username()], "role": [None, m.role]}, team)
        for m in created
    )
    for user, _ in members:
        clear_caches(user)
    return created


@transaction.atomic
def membership_remove(*, team: Team, user) -> None:
    membership = Membership.objects.select_for_update().filter(team=team, user=user).first()
    if membership is None:
        raise ValidationError({"user": f"{user.get_username()} is not in {team}."})
    if membership.role == Membership.Role.OWNER and _owner_count(team) <= 1:
        raise ValidationError(
            {"user": f"{user.get_username()} is the last owner of {team} and cannot be removed."}
        )
    audit.record(
        action="delete",
        obj=membership,
        scope=team,
        changes={"user": [user.get_username(), None], "role": [membership.role, None]},
    )
    membership.delete()
    team.group.user_set.remove(user)
    clear_caches(user)


def _assign_domain_perms(domain: Domain, team: Team, old_team: Team | None = None) -> None:
    for perm in DOMAIN_TEAM_PERMS:
        if old_team is not None:
            remove_perm(perm, old_team.group, domain)
        assign_perm(perm, team.group, domain)


@transaction.atomic
def domain_create(
    *, slug: str, name: str, owner_team: Team, description: str = "", parent: Domain | None = None
) -> Domain:
    domain = Domain(
        slug=slug, name=name, owner_team=owner_team, description=description, parent=parent
    )
    domain.full_clean()
    domain.save()
    _assign_domain_perms(domain, owner_team)
    audit.record(action="create", obj=domain, changes=audit.diff({}, audit.snapshot(domain)))
    return domain


@transaction.atomic
def domain_update(*, domain: Domain, **fields) -> Domain:
    if "owner_team" in fields and fields["owner_team"] != domain.owner_team:
        raise ValidationError({"owner_team": "Use the transfer action to move a domain."})
    before = audit.snapshot(domain)
    for key, value in fields.items():
        setattr(domain, key, value)
    _check_parent_cycle(domain)
    domain.full_clean()
    domain.save()
    audit.record(action="update", obj=domain, changes=audit.diff(before, audit.snapshot(domain)))
    return domain


def _check_parent_cycle(domain: Domain) -> None:
    seen, node = {domain.pk}, domain.parent
    while node is not None:
        if node.pk in seen:
            raise ValidationError({"parent": "A domain cannot be inside itself."})
        seen.add(node.pk)
        node = node.parent


@transaction.atomic
def domain_transfer(*, domain: Domain, to_team: Team) -> Domain:
    """Move a domain (and the products its old team owned) to another team; re-sync perms."""
    from products.services import product_sync_permissions

    old_team = domain.owner_team
    if old_team == to_team:
        raise ValidationError({"owner_team": f"{domain} already belongs to {to_team}."})
    domain.owner_team = to_team
    domain.save(update_fields=["owner_team", "updated_at"])
    _assign_domain_perms(domain, to_team, old_team)
    audit.record(action="update", obj=domain, changes={"owner_team": [str(old_team), str(to_team)]})
    for product in domain.products.filter(owner_team=old_team):
        product.owner_team = to_team
        product.save(update_fields=["owner_team", "updated_at"])
        product_sync_permissions(product=product)
        audit.record(
            action="update", obj=product, changes={"owner_team": [str(old_team), str(to_team)]}
        )
    return domain
