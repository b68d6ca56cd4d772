"""The one permission model. Pages, API, admin and tasks all ask `can()` and `visible()`.

Team-level rights on a product (see drafts, edit, see connection details) are django-guardian
object permissions held by the owning team's group, in guardian's direct foreign-key tables so
that lists filter in SQL. Owner-only actions additionally need the owner role in that team.
Approved consumers hold `consume_dataproduct` (on themselves or on their team's group).
Platform staff (superusers, or staff in the `platform` group) may do everything.
"""

from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import (
    CharField,
    Exists,
    IntegerField,
    Model,
    OuterRef,
    Q,
    QuerySet,
    Value,
)
from django.db.models.expressions import RawSQL
from django.http import Http404

from meshportal import statements
from meshportal.statements import Statement, array_text

PLATFORM_GROUP = "platform"
GOVERNANCE_GROUP = "governance"

# Actions, one name each across pages, API, admin and tasks.
VIEW = "view"
VIEW_CONNECTION = "view_connection"
EDIT = "edit"
PUBLISH = "publish"
DEPRECATE = "deprecate"
RETIRE = "retire"
DELETE = "delete"
APPROVE_ACCESS = "approve_access"
REQUEST_ACCESS = "request_access"
CREATE_PRODUCT = "create_product"
MANAGE_TEAM = "manage_team"
TRANSFER = "transfer"
DECIDE = "decide"
OWN = "own"  # an owner of the product's team (or platform): whoever may take its lifecycle steps
REVOKE = "revoke"  # end an approved access grant
WITHDRAW = "withdraw"  # the requester takes back a pending access request
GOVERN = "govern"

OWNER_ACTIONS = {PUBLISH, DEPRECATE, RETIRE, DELETE, APPROVE_ACCESS}


# -- who the user is (cached on the user object, which lives for one request) -----------------


def _cache(user) -> dict:
    return user.__dict__.setdefault("_mesh_perm_cache", {})


def is_platform(user) -> bool:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.is_superuser:
        return True
    c = _cache(user)
    if "platform" not in c:
        c["platform"] = user.is_staff and user.groups.filter(name=PLATFORM_GROUP).exists()
    return c["platform"]


def is_council(user) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    c = _cache(user)
    if "council" not in c:
        c["council"] = user.groups.filter(name=GOVERNANCE_GROUP).exists()
    return c["council"]


def team_roles(user) -> dict[int, str]:
    """{team_id: "owner" | "member"} for the user, one query per request."""
    if not getattr(user, "is_authenticated", False):
        return {}
    c = _cache(user)
    if "roles" not in c:
        c["roles"] = dict(_roles_of(user=user.pk))
    return c["roles"]


def _roles(user: int) -> QuerySet:
    from domains.models import Membership

    # order_by(): Membership's default ordering would join teams and users for nothing.
    return Membership.objects.filter(user_id=user).order_by().values_list("team_id", "role")


_roles_of = Statement(_roles)


def is_team_owner(user, team_id: int | None) -> bool:
    return team_id is not None and team_roles(user).get(team_id) == "owner"


def is_team_member(user, team_id: int | None) -> bool:
    return team_id in team_roles(user)


@cache
def _permission_id(app_label: str, codename: str) -> int:
    return Permission.objects.get(content_type__app_label=app_label, codename=codename).pk


@cache
def _product_codenames() -> dict[int, str]:
    """{permission id: codename} of the data product's permissions, read once per process."""
    return dict(
        Permission.objects.filter(
            content_type__app_label="products", content_type__model="dataproduct"
        ).values_list("pk", "codename")
    )


def forget_permission_ids() -> None:
    """A flush (tests) or migration may renumber the permissions: read them again, and compile
    again the statements that hold them (visible()'s draft part and every statement built on
    it)."""
    _permission_id.cache_clear()
    _product_codenames.cache_clear()
    statements.forget_all()


def clear_caches(user=None) -> None:
    """Forget cached roles and permissions (after a membership or grant changes)."""
    if user is not None:
        user.__dict__.pop("_mesh_perm_cache", None)


# -- product object permissions ----------------------------------------------------------------


def _group_ids(user_id: int) -> QuerySet:
    """The user's group (team) ids as a subquery: a group permission is found by its group id,
    with no join through auth_group, which only the planner pays for."""
    return Group.user_set.through.objects.filter(user_id=user_id).values("group_id")


def _grant_rows(user_id: int, ids: list[int]) -> tuple[QuerySet, QuerySet]:
    """The user's grants on these products: through a team (group), and their own. The
    group's rows by the user's group ids, not a join through auth_group, and permission ids
    rather than a join to auth_permission: the joins cost more to plan than the statement takes
    to run (1.3 against 0.5 ms warm, on every product page)."""
    from products.models import DataProductGroupObjectPermission, DataProductUserObjectPermission

    return (
        DataProductGroupObjectPermission.objects.filter(
            content_object_id__in=ids, group_id__in=_group_ids(user_id)
        ),
        DataProductUserObjectPermission.objects.filter(content_object_id__in=ids, user_id=user_id),
    )


def _product_perm_rows(user_id: int, ids: list[int]) -> QuerySet:
    """(product id, permission id) of the user's grants on these products."""
    by_group, by_user = _grant_rows(user_id, ids)
    columns = ("content_object_id", "permission_id")
    return by_group.values_list(*columns).union(by_user.values_list(*columns), all=True)


def _roles_and(user: int, parts: list[tuple[QuerySet, str]]) -> QuerySet:
    """The user's team roles and another read in one statement: (team id, role, None) rows,
    then (None, None, value) of each (queryset, column) part."""
    none = Value(None, output_field=IntegerField())
    roles = _roles(user).order_by().values_list("team_id", "role", none)
    rest = [
        part.order_by().values_list(none, Value(None, output_field=CharField()), column)
        for part, column in parts
    ]
    return roles.union(*rest, all=True).order_by()


def _split_roles(rows) -> tuple[dict[int, str], list]:
    """`_roles_and`'s rows as the roles and the other values."""
    roles: dict[int, str] = {}
    values = []
    for team, role, value in rows:
        if value is None:
            roles[team] = role
        else:
            values.append(value)
    return roles, values


def _roles_and_grants(user: int, product: int) -> QuerySet:
    """The user's team roles and their grants on one product (a product's page asks for both)."""
    return _roles_and(user, [(part, "permission_id") for part in _grant_rows(user, [product])])


# One product's page asks for one product's rows (with the roles, where not read yet): the same
# text every time, compiled once.
_one_product_perm_rows = Statement(lambda user, product: _product_perm_rows(user, [product]))
_one_product_roles_and_grants = Statement(_roles_and_grants)


def prefetch_product_perms(user, products: Iterable[Model]) -> None:
    """Load the user's object permissions for many products in one query (list pages)."""
    if not getattr(user, "is_authenticated", False):
        return
    c = _cache(user).setdefault("product_perms", {})
    missing = [p.pk for p in products if p.pk not in c]
    if not missing:
        return
    for pk in missing:
        c[pk] = set()
    codenames = _product_codenames()
    rows: Iterable[tuple[int, int]]
    if len(missing) == 1 and "roles" not in _cache(user):
        # the roles come along: the product's page asks is_team_owner() next
        roles, permissions = _split_roles(
            _one_product_roles_and_grants(user=user.pk, product=missing[0])
        )
        rows = [(missing[0], permission) for permission in permissions]
        _cache(user)["roles"] = roles
    elif len(missing) == 1:
        rows = _one_product_perm_rows(user=user.pk, product=missing[0])
    else:
        rows = _product_perm_rows(user.pk, missing)
    for pk, permission_id in rows:
        if permission_id not in codenames:  # a permission added since this process read them
            _product_codenames.cache_clear()
            codenames = _product_codenames()
        if permission_id in codenames:
            c[pk].add(codenames[permission_id])


def product_perms(user, product) -> set[str]:
    prefetch_product_perms(user, [product])
    return _cache(user)["product_perms"][product.pk]


# -- can() -----------------------------------------------------------------------------------

Rule = Callable[[Any, str, Any], bool]
_rules: dict[type, Rule] = {}
_visibility: dict[type, Callable[[Any, QuerySet], QuerySet]] = {}


def register(model: type, *, rule: Rule | None = None, visibility=None) -> None:
    """Apps add rules for their own models here (e.g. governance policies)."""
    if rule:
        _rules[model] = rule
    if visibility:
        _visibility[model] = visibility


def has_rule(model: type) -> bool:
    """Whether a rule of its own (or of a parent class) answers for model's objects."""
    return any(m in _rules for m in model.__mro__)


def can(user, action: str, obj: Any) -> bool:
    """May `user` do `action` on `obj`? The single answer every door asks."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    for model in type(obj).__mro__:
        if model in _rules:
            return _rules[model](user, action, obj)
    return is_platform(user)


def refusal(user, action: str, obj: Any) -> str:
    """The one message for "you may see obj but not do action to it", at every door."""
    if action == CREATE_PRODUCT:
        return f"Only the team owning {obj}, {obj.owner_team}, creates products in it."
    if action == DECIDE and getattr(obj, "requester_id", None) == user.pk:
        return "You cannot decide your own request."
    if action in (DECIDE, REVOKE) and hasattr(obj, "requester_id"):
        verb = "decide requests for" if action == DECIDE else "revoke access to"
        return f"Only owners of {obj.product.owner_team} {verb} {obj.product}."
    if action == WITHDRAW:
        return "Only the requester withdraws a request."
    if action == OWN:
        return f"Only owners of {obj.owner_team} take {obj} through its lifecycle."
    return f"You may not {action.replace('_', ' ')} {obj}."


def require(user, action: str, obj: Any) -> None:
    """Raise 404 when the user may not even see obj, 403 when they may see it but not act.
    Pages, the API, contract uploads, the admin and the services all ask here, so every door
    answers alike."""
    if action != VIEW and can(user, VIEW, obj) and not can(user, action, obj):
        raise PermissionDenied(refusal(user, action, obj))
    if not can(user, action, obj):
        raise Http404


def signed_in(user) -> bool:
    """An active, signed-in user: the only kind that sees anything (the public products first)."""
    return bool(getattr(user, "is_authenticated", False) and user.is_active)


def visible(user, queryset: QuerySet) -> QuerySet:
    """The rows of queryset the user may see, filtered in SQL."""
    if not signed_in(user):
        return queryset.none()
    for model in queryset.model.__mro__:
        if model in _visibility:
            return _visibility[model](user, queryset)
    return queryset if is_platform(user) else queryset.none()


def product_viewers(wanted: Iterable[tuple[Any, Any]]) -> set[tuple[int, int]]:
    """Of the (user, product) pairs asked, (user id, product id) of those where the user may
    VIEW the product: what can(user, VIEW, product) answers, for many at once (bulk
    notifications). Products that are not drafts cost nothing; drafts one query over the
    object permissions for all the pairs, then one UNION of what visible() says for each user
    still refused some (platform staff, a council delegate who decides a waiver on it)."""
    from products.models import DataProductGroupObjectPermission, DataProductUserObjectPermission

    allowed: set[tuple[int, int]] = set()
    users: dict[int, Any] = {}
    drafts: dict[int, dict[int, Any]] = {}  # user id -> {draft id: draft}
    for user, product in wanted:
        if not getattr(user, "is_authenticated", False) or not user.is_active:
            continue
        if product.status != "draft":
            allowed.add((user.pk, product.pk))
        else:
            users[user.pk] = user
            drafts.setdefault(user.pk, {})[product.pk] = product
    if not drafts:
        return allowed
    ids = {d for per_user in drafts.values() for d in per_user}
    view = _permission_id("products", "view_dataproduct")
    granted = set(
        DataProductGroupObjectPermission.objects.filter(
            content_object_id__in=ids, permission_id=view, group__user__in=list(users)
        )
        .values_list("group__user", "content_object_id")
        .union(
            DataProductUserObjectPermission.objects.filter(
                content_object_id__in=ids, permission_id=view, user_id__in=list(users)
            ).values_list("user_id", "content_object_id")
        )
    )
    others = []  # what visible() says of the drafts the object permissions did not grant
    for pk, per_user in drafts.items():
        allowed.update((pk, d) for d in per_user if (pk, d) in granted)
        missing = [d for d in per_user if (pk, d) not in granted]
        if missing:
            model = type(per_user[missing[0]])
            others.append(
                visible(users[pk], model._default_manager.filter(pk__in=missing))
                .order_by()
                .annotate(asker=Value(pk))
                .values_list("asker", "pk")
            )
    for i in range(0, len(others), VIEWER_UNION):  # one UNION per VIEWER_UNION users
        first, *rest = others[i : i + VIEWER_UNION]
        allowed.update(first.union(*rest, all=True).order_by() if rest else first)
    return allowed


VIEWER_UNION = 400  # SQLite allows 500 terms in a compound SELECT


# -- giving rights and moving products between teams -------------------------------------------


def may_grant(user) -> bool:
    """Giving anyone rights — object permissions, groups (platform, governance), team
    memberships, staff and superuser flags, tokens — in the admin console is the platform
    team's alone. (Team owners manage their own team on its page, under MANAGE_TEAM.)"""
    return is_platform(user)


def can_transfer(user, product, team) -> bool:
    """May user move product to team? An owner of both the current and the new team, or platform
    staff. A new product named for another team than its domain's is the same move (pass an
    unsaved product whose owner_team is the domain's team)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return is_platform(user) or (
        is_team_owner(user, product.owner_team_id) and is_team_owner(user, team.pk)
    )


def require_transfer(user, product, team) -> None:
    """403 with one message at every door (API, contract upload, edit page, admin). Doors have
    already answered 404 to someone who may not see the product."""
    if not can_transfer(user, product, team):
        raise PermissionDenied(
            f"Only an owner of both {product.owner_team} and {team}, or platform staff, "
            "may move a product between them."
        )


# -- rules for the core models ---------------------------------------------------------------


def _product_rule(user, action: str, product) -> bool:
    if action == VIEW and product.status != "draft":
        return True  # every signed-in user (can() checked that): no query, e.g. per recipient
    platform = is_platform(user)
    perms = set() if platform else product_perms(user, product)
    team = platform or "change_dataproduct" in perms
    owner = platform or (team and is_team_owner(user, product.owner_team_id))
    if action == VIEW:
        return (
            platform
            or product.status != "draft"
            or "view_dataproduct" in perms
            or _reads_draft(user, product)
        )
    if action == VIEW_CONNECTION:
        return team or "consume_dataproduct" in perms
    if action == EDIT:
        return team and product.status != "retired"
    if action == PUBLISH:
        return owner and product.status == "draft"
    if action == DEPRECATE:
        return owner and product.status == "published"
    if action == RETIRE:
        return owner and product.status in ("published", "deprecated")
    if action in (DELETE, APPROVE_ACCESS, OWN):
        return owner
    if action == TRANSFER:  # may move it away at all; to which team: can_transfer()
        return owner
    if action == REQUEST_ACCESS:
        return (
            product.status in ("published", "deprecated")
            and not team
            and "consume_dataproduct" not in perms
        )
    return platform


def _port_rule(user, action: str, port) -> bool:
    # Ports and fields follow their product: to see one is to see the product, to change one
    # is to edit it.
    return _product_rule(user, action, port.product)


def _field_rule(user, action: str, field) -> bool:
    return _product_rule(user, action, field.port.product)


def _domain_rule(user, action: str, domain) -> bool:
    if is_platform(user):
        return True
    if action == VIEW:
        return True
    if action == CREATE_PRODUCT:
        return is_team_member(user, domain.owner_team_id)
    if action == EDIT:
        return is_team_owner(user, domain.owner_team_id)
    return False  # TRANSFER and anything else: platform only


def _team_rule(user, action: str, team) -> bool:
    if is_platform(user) or action == VIEW:
        return True
    if action == MANAGE_TEAM:
        return is_team_owner(user, team.pk)
    return False


def _access_request_rule(user, action: str, req) -> bool:
    if action == VIEW:
        return (
            req.requester_id == user.pk
            or is_platform(user)
            or _product_rule(user, APPROVE_ACCESS, req.product)
        )
    # Who may act; whether the request's state allows it is the service's to say (400).
    if action == DECIDE:
        return req.requester_id != user.pk and _product_rule(user, APPROVE_ACCESS, req.product)
    if action == REVOKE:
        return _product_rule(user, APPROVE_ACCESS, req.product)
    if action == WITHDRAW:
        return req.requester_id == user.pk
    return is_platform(user)


# The products every signed-in user sees (anything but drafts); beyond them a user sees the
# drafts their team's or their own object permissions show. Views cached for everyone (the
# mesh map) are built from these and add the user's own on top.
PUBLIC_PRODUCTS = ~Q(status="draft")


# Drafts are seen only by their team, with one exception, registered by the governance app
# (governance.policies.permissions): a council delegate sees the draft a pending waiver asks them
# to decide. `may_see(user, product)` answers for one draft (can VIEW); `drafts(user_id)` is the
# same rule for visible(), asked for signed-in users: a query of the ids of the drafts it shows
# the user (`.values(<id>)`), uncorrelated with the products it filters, whose text is the same
# for every user (compiled once per process, meshportal.statements).
_draft_readers: list[tuple[Callable[[Any, Any], bool], Statement]] = []
_reader_builds: set[Callable[[int], QuerySet]] = set()


def register_draft_reader(
    *, may_see: Callable[[Any, Any], bool], drafts: Callable[[int], QuerySet]
) -> None:
    if drafts not in _reader_builds:
        _reader_builds.add(drafts)
        _draft_readers.append((may_see, Statement(lambda user: drafts(user).order_by())))


def _reads_draft(user, product) -> bool:
    return any(may_see(user, product) for may_see, _ in _draft_readers)


def _granted(user: int) -> QuerySet:
    """The part of `_readable_drafts` this module owns: the ids of the products the user's teams
    or the user may view by an object permission."""
    from products.models import DataProductGroupObjectPermission, DataProductUserObjectPermission

    view = _permission_id("products", "view_dataproduct")
    by_group = DataProductGroupObjectPermission.objects.filter(
        permission_id=view, group_id__in=_group_ids(user)
    ).values("content_object_id")
    by_user = DataProductUserObjectPermission.objects.filter(
        permission_id=view, user_id=user
    ).values("content_object_id")
    # order_by(): no part may carry its model's default ordering into a UNION
    return by_group.order_by().union(by_user.order_by(), all=True)


# Its text is the same for every user, the user's id a parameter: compiled once per process
# (0.6 ms of CPU a request), as each draft reader's part is (register_draft_reader).
_granted_drafts = Statement(_granted)


def _readable_drafts(user) -> RawSQL:
    """`SELECT` of the ids of the drafts the user may read beyond what every user sees: their
    teams' and their own view permissions, and what the draft readers add. Uncorrelated, so its
    text is reused by every statement that filters products by visibility: compiling visible()'s
    condition again for each of a search page's five statements was 1.3 ms of CPU each. Being
    SQL text bound to the user's id, not a result, it cannot go stale within the request."""
    c = _cache(user)
    if "drafts_sql" not in c:
        c["drafts_sql"] = _readable_drafts_sql(user.pk, readers=signed_in(user))
    return _drafts_raw(*c["drafts_sql"])


def _readable_drafts_sql(user_id: int, *, readers: bool = True) -> tuple[str, list]:
    parts = [_granted_drafts.sql(user=user_id)]
    if readers:  # the readers' parts, as each reader says for this user
        parts += [drafts.sql(user=user_id) for _, drafts in _draft_readers]
    # No part is ordered or limited, so they join as they are (SQLite takes no brackets).
    return " UNION ALL ".join(s for s, _ in parts), [p for _, ps in parts for p in ps]


def _drafts_raw(sql: str, params: list) -> RawSQL:
    # SQL the ORM compiled, with its parameters bound: no user text in it.
    return RawSQL(sql, params)  # noqa: S611  # nosec B611


def drafts_readable_by(user_id: int, queryset: QuerySet) -> QuerySet:
    """visible_drafts() for a signed-in user who is not platform staff, from their id alone (a
    statement compiled once for every such user: its text must not depend on the user)."""
    return queryset.exclude(PUBLIC_PRODUCTS).filter(
        pk__in=_drafts_raw(*_readable_drafts_sql(user_id))
    )


class DraftsStatement:
    """A read over the drafts a user may read (visible_drafts), compiled once per process for
    every user who is not platform staff (their readable drafts are one text with their id a
    parameter); the platform's, every draft, is built per request. `build(drafts)` makes the
    read from the drafts' queryset."""

    def __init__(self, build: Callable[[QuerySet], QuerySet]):
        self.build = build
        self._team = Statement(lambda user: build(drafts_readable_by(user, _all_products())))

    def __call__(self, user) -> list:
        if not signed_in(user):
            return []
        if is_platform(user):
            return list(self.build(visible_drafts(user, _all_products())))
        return self._team(user=user.pk)


def _all_products() -> QuerySet:
    from products.models import DataProduct

    return DataProduct.objects.all()


def visible_drafts(user, queryset: QuerySet) -> QuerySet:
    """The drafts of a product queryset (what not every signed-in user sees) that the user may
    read: visible(user, queryset.exclude(PUBLIC_PRODUCTS)), said so that the planner drives
    from the few readable-draft ids instead of testing the whole table against them (the home
    page's quality counts over a user's drafts: 3.9 -> 0.5 ms at 10,000 products)."""
    if not signed_in(user):
        return queryset.none()
    drafts = queryset.exclude(PUBLIC_PRODUCTS)
    return drafts if is_platform(user) else drafts.filter(pk__in=_readable_drafts(user))


def _visible_products(user, qs: QuerySet) -> QuerySet:
    if is_platform(user):
        return qs
    return _public_or(_readable_drafts(user), qs)


def visible_to_member(user_id: int, queryset: QuerySet) -> QuerySet:
    """visible() of products for a signed-in user who is not platform staff, from their id
    alone: the same rule, for a statement compiled once for every such user (its text must not
    depend on the user; the caller asks is_platform() first)."""
    return _public_or(_drafts_raw(*_readable_drafts_sql(user_id)), queryset)


def _roles_and_drafts(user: int) -> QuerySet:
    """The user's team roles and the ids of the drafts they may read (a search asks for both)."""
    return _roles_and(user, [(drafts_readable_by(user, _all_products()), "pk")])


# The same text for every member: compiled once.
_member_roles_and_drafts = Statement(_roles_and_drafts)


def _draft_ids(user) -> list[int]:
    """The ids of the drafts a member may read, read now; their team roles come along when
    this request has not read them yet (the search page asks for them next)."""
    roles, ids = _split_roles(_member_roles_and_drafts(user=user.pk))
    _cache(user).setdefault("roles", roles)
    return ids


class ReadFirst:
    """The products a user may read, their readable drafts read first (one prepared statement)
    and given to each statement as one array of ids: for a read of several statements that are
    planned anew on every request (a search's probe, facet pass and page ids: their words decide
    their plans). Each planned visible()'s subqueries of grants and draft readers again, 0.8-1.8
    ms of planning and 0.5-1.6 ms of running a statement on the bench machine, against 0.3 ms
    for the array. `drafts`: the ids as an array's text; None for platform staff (every
    product). Its statements' text is the same for every member, so they can be compiled once
    with the ids as a parameter."""

    def __init__(self, drafts: str | None):
        self.drafts = drafts

    @property
    def kind(self) -> str:
        """Which form of a statement compiled over a scope applies: every product's (platform
        staff) or a member's, whose readable drafts are a parameter (`parameters`)."""
        return "every" if self.drafts is None else "member"

    def parameters(self) -> dict:
        """The scope's values in such a statement: a member's readable drafts."""
        return {} if self.drafts is None else {"drafts": self.drafts}

    def products(self, queryset: QuerySet) -> QuerySet:
        if self.drafts is None:
            return queryset
        # Uncorrelated (no outer column), so a statement that nests the queryset keeps it right.
        return _public_or(_drafts_raw("SELECT unnest(%s::bigint[])", [self.drafts]), queryset)


def read_first(user) -> ReadFirst | None:
    """The user's ReadFirst, the ids read now (never kept: a draft made or shared since the
    last call is there); None where visible() itself applies: not signed in, off PostgreSQL."""
    if connection.vendor != "postgresql" or not signed_in(user):
        return None
    return ReadFirst(None if is_platform(user) else array_text(_draft_ids(user)))


def _public_or(readable_drafts: RawSQL, qs: QuerySet) -> QuerySet:
    """A member's products: what every signed-in user sees, and the drafts they may read."""
    return qs.filter(PUBLIC_PRODUCTS | Q(pk__in=readable_drafts))


def _visible_through_product(path: str):
    def visibility(user, qs: QuerySet) -> QuerySet:
        if is_platform(user):
            return qs
        from products.models import DataProduct

        products = _visible_products(user, DataProduct.objects.all())
        return qs.filter(**{f"{path}__in": products.values("pk")})

    return visibility


def _visible_access_requests(user, qs: QuerySet) -> QuerySet:
    if is_platform(user):
        return qs
    owned = [t for t, r in team_roles(user).items() if r == "owner"]
    return qs.filter(Q(requester=user) | Q(product__owner_team_id__in=owned))


def _visible_tags(user, qs: QuerySet) -> QuerySet:
    """A tag exists for a reader through the products they may see: a tag used only by another
    team's drafts is as private as those drafts (its page, lists and widgets answer as for a tag
    that does not exist)."""
    if is_platform(user):
        return qs
    from products.models import DataProduct

    tagged = DataProduct.tags.through.objects.filter(
        tag_id=OuterRef("pk"),
        dataproduct_id__in=_visible_products(user, DataProduct.objects.all()).values("pk"),
    )
    return qs.filter(Exists(tagged))


def _everyone(user, qs: QuerySet) -> QuerySet:
    return qs


def _register_core() -> None:
    from domains.models import Domain, Membership, Team
    from products.models import AccessRequest, DataProduct, OutputPort, SchemaField, Tag

    register(DataProduct, rule=_product_rule, visibility=_visible_products)
    register(OutputPort, rule=_port_rule, visibility=_visible_through_product("product"))
    register(SchemaField, rule=_field_rule, visibility=_visible_through_product("port__product"))
    register(Domain, rule=_domain_rule, visibility=_everyone)
    register(Team, rule=_team_rule, visibility=_everyone)
    register(Membership, visibility=_everyone)
    register(Tag, visibility=_visible_tags)
    register(AccessRequest, rule=_access_request_rule, visibility=_visible_access_requests)
