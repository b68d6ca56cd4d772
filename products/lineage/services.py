"""Writes and rules for lineage: input ports (edges), watches, lifecycle notifications.

`watchers_of(product)` and `product_event_announce(...)` are what other areas (contracts,
quality) call to tell the people who watch a product.
"""

from collections import defaultdict

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q

from domains.models import Domain, Membership
from meshportal import audit, permissions
from meshportal.notifications import notify
from meshportal.permissions import EDIT, VIEW, VIEW_CONNECTION, can
from products.lineage import graph as lineage
from products.models import AccessRequest, DataProduct, InputPort, OutputPort, Watch

# Sources of these classifications need approved access before an edge counts as approved.
RESTRICTED = {DataProduct.Classification.CONFIDENTIAL, DataProduct.Classification.RESTRICTED}

# Who hears about each kind of event, beyond the product's and its domain's watchers.
WIDE_KINDS = {"deprecation", "retirement", "major_version", "breaking_change"}


# -- input ports -------------------------------------------------------------------------------


def _slug_label(user, product: DataProduct) -> str:
    return product.slug if can(user, VIEW, product) else "(hidden product)"


@transaction.atomic
def input_port_create(
    *,
    product: DataProduct,
    by,
    source_port: OutputPort | None = None,
    external_name: str = "",
    external_kind: str = "",
    description: str = "",
    odps_kept: dict | None = None,
) -> InputPort:
    """Declare that product consumes source_port (another product's output) or an external
    source. Refuses self-loops and cycles; marks the edge unapproved when the source is
    restricted and `by` has no approved access to it."""
    if not can(by, EDIT, product):
        raise ValidationError(f"Only the team owning {product} declares its inputs.")
    external_name = external_name.strip()
    if (source_port is None) == (not external_name):
        raise ValidationError(
            {
                "source_port": "Choose another product's output port, "
                "or name an external source (not both)."
            }
        )
    inp = InputPort(product=product, description=description, odps_kept=odps_kept or {})
    if source_port is None:
        inp.external_name = external_name
        inp.external_kind = external_kind or InputPort.ExternalKind.OTHER
    else:
        # Lock both products so that two concurrent declarations cannot close a cycle.
        list(
            DataProduct.objects.select_for_update().filter(
                pk__in=[product.pk, source_port.product_id]
            )
        )
        source = source_port.product
        if not can(by, VIEW, source):
            raise ValidationError({"source_port": "No such output port."})
        if source.pk == product.pk:
            raise ValidationError(
                {
                    "source_port": (
                        f"A product cannot consume its own output: {product.slug} → {product.slug}."
                    )
                }
            )
        if source.status == DataProduct.Status.RETIRED:
            raise ValidationError({"source_port": f"{source} is retired; it has no consumers."})
        if InputPort.objects.filter(product=product, source_port=source_port).exists():
            raise ValidationError({"source_port": f"{product} already consumes {source_port}."})
        path = lineage.find_path(product.pk, source.pk)
        if path:
            names = {p.pk: p for p in DataProduct.objects.filter(pk__in=path)}
            cycle = [source.slug] + [_slug_label(by, names[pk]) for pk in path]
            raise ValidationError(
                {"source_port": ("This input would make a cycle: " + " → ".join(cycle) + ".")}
            )
        inp.source_port, inp.source_product = source_port, source
        inp.approved = source.classification not in RESTRICTED or can(by, VIEW_CONNECTION, source)
    inp.full_clean()
    inp.save()
    audit.record(
        action="create", obj=inp, scope=product, changes=audit.diff({}, audit.snapshot(inp))
    )
    return inp


def input_ports_approve_for_grant(*, request: AccessRequest) -> int:
    """Once access is approved, the grantee team's unapproved inputs from that product count."""
    teams = (
        [request.team_id]
        if request.team_id
        else Membership.objects.filter(user=request.requester_id).values_list("team_id", flat=True)
    )
    pending = InputPort.objects.filter(
        source_product=request.product, approved=False, product__owner_team__in=teams
    )
    for inp in pending:
        before = audit.snapshot(inp)
        inp.approved = True
        inp.save(update_fields=["approved"])
        audit.record(
            action="update",
            obj=inp,
            scope=inp.product,
            changes=audit.diff(before, audit.snapshot(inp)),
        )
    return len(pending)


@transaction.atomic
def input_port_delete(*, input_port: InputPort, by) -> None:
    if not can(by, EDIT, input_port.product):
        raise ValidationError(f"Only the team owning {input_port.product} changes its inputs.")
    audit.record(
        action="delete",
        obj=input_port,
        scope=input_port.product,
        changes=audit.diff(audit.snapshot(input_port), {}),
    )
    input_port.delete()


# -- watches -----------------------------------------------------------------------------------


@transaction.atomic
def watch_set(
    *, user, on: bool, product: DataProduct | None = None, domain: Domain | None = None
) -> bool:
    """Start or stop watching a product or a domain. Returns whether the user now watches."""
    if (product is None) == (domain is None):
        raise ValidationError("Watch a product or a domain.")
    if product is not None and not can(user, VIEW, product):
        raise ValidationError("No such data product.")
    target = {"product": product} if product is not None else {"domain": domain}
    if on:
        Watch.objects.get_or_create(user=user, **target)
    else:
        Watch.objects.filter(user=user, **target).delete()
    return on


def watchers_of(product: DataProduct) -> list:
    """Users watching the product or its domain who may see it (drafts: only the team)."""
    return [u for u in watchers_of_many([product])[product.pk] if can(u, VIEW, product)]


def watchers_of_many(products: list[DataProduct]) -> dict[int, list]:
    """{product id: active users watching it or its domain, by username}, in one query, for
    bulk alerts. Not filtered by who may see the product: notify() does that (drafts)."""
    product_ids = {p.pk for p in products}
    domain_ids = {p.domain_id for p in products}
    watches = (
        Watch.objects.filter(
            Q(product_id__in=product_ids) | Q(domain_id__in=domain_ids), user__is_active=True
        )
        .select_related("user")
        .order_by("user__username")
    )
    by_product: dict[int, list] = defaultdict(list)
    by_domain: dict[int, list] = defaultdict(list)
    for w in watches:
        if w.product_id is not None:
            by_product[w.product_id].append(w.user)
        elif w.domain_id is not None:
            by_domain[w.domain_id].append(w.user)
    out = {}
    for p in products:
        users = {u.pk: u for u in by_product[p.pk] + by_domain[p.domain_id]}
        out[p.pk] = sorted(users.values(), key=lambda u: u.get_username())
    return out


def is_watching(user, *, product: DataProduct | None = None, domain: Domain | None = None) -> bool:
    target = {"product": product} if product is not None else {"domain": domain}
    return Watch.objects.filter(user=user, **target).exists()


def watch_counts(user, *, product: DataProduct) -> dict:
    """{"watching": whether user watches product, "watchers": how many do}, in one query."""
    user_id = user.pk if getattr(user, "is_authenticated", False) else None
    counts = Watch.objects.filter(product=product).aggregate(
        watchers=Count("pk"), mine=Count("pk", filter=Q(user_id=user_id))
    )
    return {"watching": bool(counts["mine"]), "watchers": counts["watchers"]}


# -- who depends on a product ------------------------------------------------------------------


def consumers_of(product: DataProduct) -> list:
    """Users holding an approved grant on product (requesters, and members of granted teams)."""
    grants = AccessRequest.objects.filter(product=product, status=AccessRequest.Status.APPROVED)
    users = (
        get_user_model()
        .objects.filter(
            Q(access_requests__in=grants.filter(team__isnull=True))
            | Q(memberships__team__in=grants.filter(team__isnull=False).values("team")),
            is_active=True,
        )
        .distinct()
    )
    return list(users)


def downstream_owners(product: DataProduct) -> list:
    """Owners of the teams owning every product transitively downstream of product."""
    ids = lineage.downstream_ids(product)
    teams = DataProduct.objects.filter(pk__in=ids).values("owner_team_id")
    return [
        m.user
        for m in Membership.objects.filter(
            team_id__in=teams, role=Membership.Role.OWNER
        ).select_related("user")
    ]


def retirement_blockers(product: DataProduct) -> dict[str, list[str]]:
    """What keeps product from being retired: active consumers and live downstream products.

    Drafts are not live and do not block (their team hears of the retirement as downstream
    owners): listing them here would show their URN to the upstream owners, on the retire
    page, in the refusal and in the audit log, who may not see them."""
    consumers = [
        (f"team {r.team.name}" if r.team is not None else r.requester.get_username())
        for r in AccessRequest.objects.filter(
            product=product, status=AccessRequest.Status.APPROVED
        ).select_related("team", "requester")
    ]
    downstream = [
        f"{p.domain.slug}/{p.slug}"
        for p in DataProduct.objects.filter(
            input_ports__source_product=product,
        )
        .exclude(status__in=[DataProduct.Status.RETIRED, DataProduct.Status.DRAFT])
        .select_related("domain")
        .distinct()
    ]
    return {
        k: v
        for k, v in (("consumers", sorted(set(consumers))), ("downstream", sorted(downstream)))
        if v
    }


# -- lifecycle notifications -------------------------------------------------------------------


def product_event_announce(
    *, product: DataProduct, kind: str, title: str, body: str = "", url: str = ""
) -> None:
    """Tell the people watching product, through a Celery task once the change commits (a
    broker outage keeps the task for later instead of failing the change)."""
    from meshportal import queue
    from products.tasks import notify_product_event

    args = (product.pk, kind, title, body, url or product.get_absolute_url(), product.urn)
    queue.enqueue_on_commit(notify_product_event, *args)


def product_event_recipients(product: DataProduct, kind: str) -> list:
    users = {u.pk: u for u in watchers_of(product)}
    if kind in WIDE_KINDS:
        for u in consumers_of(product) + downstream_owners(product):
            users.setdefault(u.pk, u)
    return list(users.values())


def product_event_fanout(
    *, product_id: int, kind: str, title: str, body: str = "", url: str = "", urn: str = ""
) -> int:
    """Create the notifications (and e-mails) for one event. Run by the Celery task."""
    product = DataProduct.objects.select_related("domain").filter(pk=product_id).first()
    if product is None or (urn and product.urn != urn):
        return 0  # deleted before the task ran, or a stale message from another database
    return notify(
        product_event_recipients(product, kind),
        kind=kind,
        title=title,
        url=url,
        body=body,
        about=product,
    )


# -- permissions for the lineage models (registered once, when this module is imported) --------


def _input_port_rule(user, action: str, inp: InputPort) -> bool:
    # An input belongs to the reading product: to see it is to see that product, to change
    # it is to edit it.
    return can(user, EDIT if action != VIEW else VIEW, inp.product)


def _visible_input_ports(user, qs):
    from meshportal.permissions import visible

    return qs.filter(product__in=visible(user, DataProduct.objects.all()).values("pk"))


def _watch_rule(user, action: str, watch: Watch) -> bool:
    from meshportal.permissions import is_platform

    return watch.user_id == user.pk or is_platform(user)


def _visible_watches(user, qs):
    from meshportal.permissions import is_platform

    return qs if is_platform(user) else qs.filter(user=user)


permissions.register(InputPort, rule=_input_port_rule, visibility=_visible_input_ports)
permissions.register(Watch, rule=_watch_rule, visibility=_visible_watches)
