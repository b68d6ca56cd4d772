"""Writes and business rules for data products, ports, fields and access requests.

Pages, API, admin and Celery tasks call these; none of them re-implement a rule.
"""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.db.models.signals import post_save
from django.utils import timezone
from django.utils.text import slugify
from guardian.shortcuts import assign_perm, remove_perm

from domains.models import Domain, Membership, Team
from meshportal import audit, bulk
from meshportal.notifications import notify
from meshportal.permissions import clear_caches
from products import extensions
from products.contracts import services as contracts
from products.discovery.search import deferred_indexing, index_product
from products.lineage import services as lineage_services
from products.models import AccessRequest, DataProduct, OutputPort, SchemaField, Tag

TEAM_PRODUCT_PERMS = ("view_dataproduct", "change_dataproduct")
CONSUME = "consume_dataproduct"


def _changed(product: DataProduct) -> None:
    """After any write to a product, its ports or fields: a new contract version when the
    contract changed (batched per transaction) and a fresh search document."""
    contracts.changed(product)
    index_product(product)


def _product_snapshot(product: DataProduct) -> dict[str, Any]:
    return audit.snapshot(product, {"tags": [t.slug for t in product.tags.all()]})


def product_sync_permissions(*, product: DataProduct) -> None:
    """The owning team's group holds the team-level object permissions, and no other group."""
    from products.models import DataProductGroupObjectPermission

    DataProductGroupObjectPermission.objects.filter(
        content_object=product, permission__codename__in=TEAM_PRODUCT_PERMS
    ).exclude(group=product.owner_team.group).delete()
    for perm in TEAM_PRODUCT_PERMS:
        assign_perm(perm, product.owner_team.group, product)


def clean_tag_names(names) -> list[str]:
    """Tag names as given (stripped, empty ones dropped), each within Tag.name's own rules
    (length, one line); ValidationError on ``tags`` naming the tag. Every door uses this."""
    from meshportal.fields import check_value

    cleaned = []
    for raw in names:
        name = str(raw).strip()
        if not name:
            continue
        try:
            check_value(Tag, "name", name)
        except ValidationError as e:
            shown = name if len(name) <= 30 else f"{name[:30]}…"
            raise ValidationError(
                {"tags": [f"Tag “{shown}”: {m}" for m in e.message_dict["name"]]}
            ) from None
        cleaned.append(name)
    return cleaned


def tags_from_names(names) -> list[Tag]:
    tags = []
    for name in clean_tag_names(names):
        slug = slugify(name)
        if not slug:
            continue
        tag, _ = Tag.objects.get_or_create(slug=slug, defaults={"name": name})
        tags.append(tag)
    return tags


def product_create(**spec: Any) -> DataProduct:
    """A new product (product_build's arguments) with its tags, ports and fields: one contract
    version, one search document, the team's rights, an audit entry for each (the path
    products_create_many takes for many)."""
    return products_create_many([product_build(**spec)])[0]


@dataclass
class NewProduct:
    """A product with its ports and fields, validated as product_create, port_create and
    fields_create validate them, not yet saved (products_create_many writes many at once)."""

    product: DataProduct
    tags: list[str]
    ports: list[tuple[OutputPort, list[SchemaField]]]


def product_build(
    *,
    domain: Domain,
    slug: str,
    name: str,
    owner_team: Team | None = None,
    tags=(),
    ports: tuple[dict[str, Any], ...] | list[dict[str, Any]] = (),
    **fields: Any,
) -> NewProduct:
    """Validate a new product as product_create would, without writing: ValidationError names
    the field. Its (domain, slug) is checked against the portal when it is written."""
    product = DataProduct(
        domain=domain, slug=slug, name=name, owner_team=owner_team or domain.owner_team, **fields
    )
    # domain and team are given as saved instances; the unique name: products_create_many.
    product.full_clean(exclude=["domain", "owner_team"], validate_constraints=False)
    built = []
    slugs: set[str] = set()
    for spec in ports:
        spec = dict(spec)
        port_fields = spec.pop("fields", [])
        port = _new_port(product, spec)
        # product: not saved yet (its clean checks the port's data source against the team)
        given = ["product"] + (["data_source"] if port.data_source_id else [])
        port.full_clean(exclude=given, validate_constraints=False)
        if port.slug in slugs:
            error = port.unique_error_message(OutputPort, ("product", "slug"))
            raise ValidationError({NON_FIELD_ERRORS: [error]})
        slugs.add(port.slug)
        rows = [{"ordinal": i, **f} for i, f in enumerate(port_fields)]
        built.append((port, _new_fields(port, rows, set())))
    return NewProduct(product=product, tags=clean_tag_names(tags), ports=built)


def _name_taken(product: DataProduct):
    error = product.unique_error_message(DataProduct, ("domain", "slug"))
    raise ValidationError({NON_FIELD_ERRORS: [error]})


@transaction.atomic
def products_create_many(new: list[NewProduct]) -> list[DataProduct]:
    """Write products built by product_build: for each, what product_create writes (the team's
    rights, tags, audit entries, ports and fields, a contract version, a search document), with
    a few statements per table for all of them instead of dozens per product. A backup restore
    of thousands of products goes through here. A name already taken: ValidationError."""
    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType

    from products.models import DataProductGroupObjectPermission
    from products.signals import products_created

    if not new:
        return []
    # The unique (domain, slug), for the batch and the portal at once, with Django's message.
    by_key: dict[tuple[int, str], DataProduct] = {}
    for n in new:
        key = (n.product.domain_id, n.product.slug)
        if key in by_key:
            _name_taken(n.product)
        by_key[key] = n.product
    taken = DataProduct.objects.filter(
        domain_id__in={d for d, _ in by_key}, slug__in={s for _, s in by_key}
    ).values_list("domain_id", "slug")
    for key in taken:
        if key in by_key:
            _name_taken(by_key[key])
    products = DataProduct.objects.bulk_create([n.product for n in new], batch_size=500)
    for p in products:
        p._loaded = p._column_values()

    # Tags: as tags_from_names for each product, with one read and one write for all.
    wanted: dict[str, str] = {}  # slug: the first name given for it
    slugs: dict[int, list[str]] = {}  # product id: its tags' slugs (as tags.set keeps them)
    for n in new:
        mine = slugs.setdefault(n.product.pk, [])
        for name in n.tags:
            slug = slugify(name)
            if slug and slug not in mine:
                wanted.setdefault(slug, name)
                mine.append(slug)
    tags = {t.slug: t for t in Tag.objects.filter(slug__in=wanted)}
    tags.update(
        {
            t.slug: t
            for t in Tag.objects.bulk_create(
                [Tag(slug=s, name=name) for s, name in wanted.items() if s not in tags]
            )
        }
    )
    links = DataProduct.tags.through
    links.objects.bulk_create(
        [
            links(dataproduct_id=pk, tag_id=tags[slug].pk)
            for pk, mine in slugs.items()
            for slug in mine
        ],
        batch_size=2000,
    )

    # The owning team's rights (product_sync_permissions on a new product).
    perms = list(
        Permission.objects.filter(
            content_type=ContentType.objects.get_for_model(DataProduct),
            codename__in=TEAM_PRODUCT_PERMS,
        )
    )
    bulk.insert(
        [
            DataProductGroupObjectPermission(
                content_object=p, group_id=p.owner_team.group_id, permission=perm
            )
            for p in products
            for perm in perms
        ]
    )

    ports = []
    for n in new:
        for port, _ in n.ports:
            port.product = n.product  # now saved: sets product_id
            ports.append(port)
    bulk.insert(ports, ids=True)
    fields = []
    for n in new:
        for port, rows in n.ports:
            for f in rows:
                f.port = port
                fields.append(f)
    bulk.insert(fields, ids=True)  # the audit entries name them

    def entries():
        for n in new:
            p = n.product
            yield "create", p, audit.diff({}, audit.snapshot(p, {"tags": slugs[p.pk]})), None
            for port, rows in n.ports:
                yield "create", port, audit.diff({}, audit.snapshot(port)), p
                for f in rows:
                    yield "create", f, audit.diff({}, audit.snapshot(f)), p

    audit.record_many(entries())
    # Other apps' hooks (bulk_create sends no post_save), then the contract versions and search
    # documents (batched by contracts.batch and search.deferred_indexing when the caller is).
    products_created.send(sender=DataProduct, products=products)
    contracts.changed_many(products)
    with deferred_indexing():  # their search documents in batches (the caller's, if it defers)
        for p in products:
            index_product(p)
    return products


@transaction.atomic
def product_update(*, product: DataProduct, tags=None, **fields: Any) -> DataProduct:
    before = _product_snapshot(product)
    if "domain" in fields and fields["domain"] != product.domain:
        raise ValidationError({"domain": "A product cannot move to another domain."})
    if "owner_team" in fields and fields["owner_team"] != product.owner_team:
        # Moving a product between teams has its own rule and service: product_transfer.
        raise ValidationError({"owner_team": "Use product_transfer to move a product."})
    for key, value in fields.items():
        setattr(product, key, value)
    product.full_clean()
    product.save()
    if tags is not None:
        product.tags.set(tags_from_names(tags))
    audit.record(
        action="update", obj=product, changes=audit.diff(before, _product_snapshot(product))
    )
    _changed(product)
    return product


@transaction.atomic
def product_transfer(*, product: DataProduct, team: Team, by) -> DataProduct:
    """Move product to team: the team-level rights follow it, the audit log records it and the
    new team's owners hear of it once it commits. Doors ask permissions.require_transfer
    first (owner of both teams, or platform staff); this checks nothing else."""
    product = (
        DataProduct.objects.select_for_update().select_related("owner_team").get(pk=product.pk)
    )
    old = product.owner_team
    if team.pk == old.pk:
        return product
    product.owner_team = team
    for port in product.ports.select_related("data_source").exclude(data_source=None):
        port.product = product  # as it would be: is each port's data source open to `team`?
        try:
            port.clean()
        except ValidationError:
            raise ValidationError(
                {
                    "owner_team": f"Its port {port.name} reads {port.data_source}, which is "
                    f"not open to {team}: ask the platform team, or clear the port's data "
                    "source first."
                }
            ) from None
    product.save(update_fields=["owner_team", "updated_at"])
    product_sync_permissions(product=product)
    clear_caches(by)
    audit.record(
        action="update", obj=product, actor=by, changes={"owner_team": [str(old), str(team)]}
    )
    _changed(product)  # the contract names the team; search facets it
    owners = [u for u in _owners(product) if u.pk != getattr(by, "pk", None)]
    title = f"{product} moved to {team}"
    body = f"{by.get_username() if by else 'The platform'} moved it from {old} to {team}."
    url = product.get_absolute_url()
    transaction.on_commit(
        lambda: notify(
            owners, kind="product_transfer", title=title, url=url, body=body, about=product
        )
    )
    return product


def _set_status(product: DataProduct, status: str, **extra: Any) -> DataProduct:
    before = _product_snapshot(product)
    product.status = status
    for key, value in extra.items():
        setattr(product, key, value)
    product.full_clean()
    product.save()
    audit.record(
        action="update", obj=product, changes=audit.diff(before, _product_snapshot(product))
    )
    return product


@transaction.atomic
def product_publish(*, product: DataProduct) -> DataProduct:
    if product.status != DataProduct.Status.DRAFT:
        raise ValidationError(f"Only drafts can be published; {product} is {product.status}.")
    extensions.check_publish(product)  # governance: blocking policies pass or are waived
    _set_status(product, DataProduct.Status.PUBLISHED, published_at=timezone.now())
    lineage_services.product_event_announce(
        product=product, kind="publication", title=f"{product} was published", body=product.summary
    )
    return product


def product_publish_preview(*, product: DataProduct) -> list:
    """What the publish checks say about product now (waived items included, marked)."""
    return extensions.publish_preview(product)


@transaction.atomic
def product_deprecate(
    *, product: DataProduct, sunset_date=None, replacement: DataProduct | None = None
) -> DataProduct:
    if product.status != DataProduct.Status.PUBLISHED:
        raise ValidationError(
            f"Only published products can be deprecated; {product} is {product.status}."
        )
    if replacement is not None and replacement.pk == product.pk:
        raise ValidationError({"replacement": "A product cannot replace itself."})
    if replacement is not None and replacement.status != DataProduct.Status.PUBLISHED:
        raise ValidationError(
            {
                "replacement": f"The replacement must be published; {replacement} is {replacement.status}."
            }
        )
    if sunset_date is not None and sunset_date <= timezone.localdate():
        raise ValidationError({"sunset_date": "The sunset date must be in the future."})
    _set_status(
        product, DataProduct.Status.DEPRECATED, sunset_date=sunset_date, replacement=replacement
    )
    body = " ".join(
        filter(
            None,
            [
                f"It will be retired on {sunset_date:%Y-%m-%d}." if sunset_date else "",
                f"Move to {replacement} ({replacement.get_absolute_url()})." if replacement else "",
            ],
        )
    )
    lineage_services.product_event_announce(
        product=product, kind="deprecation", title=f"{product} is deprecated", body=body
    )
    return product


@transaction.atomic
def product_retire(*, product: DataProduct, by=None, force: bool = False) -> DataProduct:
    """Retire product. Refused while approved consumers or live downstream products remain,
    unless platform staff force it (the override is recorded in the audit log)."""
    from meshportal.permissions import is_platform

    if product.status not in (DataProduct.Status.PUBLISHED, DataProduct.Status.DEPRECATED):
        raise ValidationError(
            f"Only published or deprecated products can be retired; {product} is {product.status}."
        )
    blockers = lineage_services.retirement_blockers(product)
    what = "; ".join(f"{k}: {', '.join(v)}" for k, v in blockers.items())
    if blockers and not force:
        raise ValidationError(
            f"{product} cannot be retired while it has active consumers or downstream products "
            f"({what}). Ask them to move off it first; platform staff can force retirement."
        )
    if blockers and not (by is not None and is_platform(by)):
        raise ValidationError("Only platform staff can force a retirement.")
    _set_status(product, DataProduct.Status.RETIRED)
    if blockers:
        audit.record(
            action="update",
            obj=product,
            actor=by,
            changes={"retirement_forced": [None, f"by {by.get_username()} over {what}"]},
        )
    lineage_services.product_event_announce(
        product=product,
        kind="retirement",
        title=f"{product} was retired",
        body=f"Retired while still used ({what})." if blockers else "",
    )
    return product


@transaction.atomic
def product_delete(*, product: DataProduct) -> None:
    audit.record(
        action="delete",
        obj=product,
        scope=product.domain,
        changes=audit.diff(_product_snapshot(product), {}),
    )
    product.delete()


# -- ports and fields --------------------------------------------------------------------------


def _new_port(product: DataProduct, fields: dict[str, Any]) -> OutputPort:
    """An unsaved port of product; its slug defaults to its name's."""
    fields.setdefault("slug", slugify(fields.get("name", "")))
    return OutputPort(product=product, **fields)


def _new_fields(
    port: OutputPort, fields: list[dict[str, Any]], taken: set[str]
) -> list[SchemaField]:
    """Unsaved, validated fields of port; `taken`: the names the port already has. The unique
    (port, name) constraint is checked against them and the batch, with Django's own message,
    instead of one query per field."""
    rows = [SchemaField(port=port, **f) for f in fields]
    for row in rows:
        # port: given. Its one unique rule is the (port, name) constraint, checked below:
        # validate_unique would find nothing to check (a restore: 509,224 fields).
        row.full_clean(exclude=["port"], validate_unique=False, validate_constraints=False)
        if row.name in taken:
            error = row.unique_error_message(SchemaField, ("port", "name"))
            raise ValidationError({NON_FIELD_ERRORS: [error]})
        taken.add(row.name)
    return rows


@transaction.atomic
def port_create(*, product: DataProduct, **fields: Any) -> OutputPort:
    port = _new_port(product, fields)
    port.full_clean()
    port.save()
    audit.record(
        action="create", obj=port, scope=product, changes=audit.diff({}, audit.snapshot(port))
    )
    _changed(product)
    return port


@transaction.atomic
def port_update(*, port: OutputPort, **fields: Any) -> OutputPort:
    before = audit.snapshot(port)
    for key, value in fields.items():
        setattr(port, key, value)
    port.full_clean()
    port.save()
    audit.record(
        action="update",
        obj=port,
        scope=port.product,
        changes=audit.diff(before, audit.snapshot(port)),
    )
    _changed(port.product)
    return port


@transaction.atomic
def port_delete(*, port: OutputPort) -> None:
    product = port.product
    audit.record(
        action="delete", obj=port, scope=product, changes=audit.diff(audit.snapshot(port), {})
    )
    product = port.product
    port.delete()
    _changed(product)


@transaction.atomic
def field_create(*, port: OutputPort, **fields: Any) -> SchemaField:
    field = SchemaField(port=port, **fields)
    field.full_clean()
    field.save()
    audit.record(
        action="create",
        obj=field,
        scope=port.product,
        changes=audit.diff({}, audit.snapshot(field)),
    )
    _changed(port.product)
    return field


@transaction.atomic
def fields_create(*, port: OutputPort, fields: list[dict[str, Any]]) -> list[SchemaField]:
    """Many fields of one port: the same validation and audit entries as `field_create` for each,
    written with one INSERT for the fields and one for their audit entries, and one new
    contract version and search document for the product (not one per field)."""
    if not fields:
        return []
    taken = set(SchemaField.objects.filter(port=port).values_list("name", flat=True))
    created = SchemaField.objects.bulk_create(_new_fields(port, fields, taken))
    audit.record_many(
        ("create", f, audit.diff({}, audit.snapshot(f)), port.product) for f in created
    )
    # bulk_create sends no post_save: one for the batch tells the product's listeners (the
    # policy hook marks the product changed), all the fields share its port.
    post_save.send(sender=SchemaField, instance=created[-1], created=True)
    _changed(port.product)
    return created


@transaction.atomic
def field_update(*, field: SchemaField, **fields: Any) -> SchemaField:
    before = audit.snapshot(field)
    for key, value in fields.items():
        setattr(field, key, value)
    field.full_clean()
    field.save()
    audit.record(
        action="update",
        obj=field,
        scope=field.port.product,
        changes=audit.diff(before, audit.snapshot(field)),
    )
    _changed(field.port.product)
    return field


@transaction.atomic
def field_delete(*, field: SchemaField) -> None:
    product = field.port.product
    audit.record(
        action="delete", obj=field, scope=product, changes=audit.diff(audit.snapshot(field), {})
    )
    product = field.port.product
    field.delete()
    _changed(product)


# -- access requests and grants ----------------------------------------------------------------


def _owners(product: DataProduct):
    return [
        m.user
        for m in Membership.objects.filter(
            team_id=product.owner_team_id, role=Membership.Role.OWNER
        ).select_related("user")
    ]


def _grantee(req: AccessRequest):
    return req.team.group if req.team is not None else req.requester


@transaction.atomic
def access_request_create(
    *,
    product: DataProduct,
    requester,
    purpose: str,
    duration_days: int = 90,
    team: Team | None = None,
) -> AccessRequest:
    from meshportal.permissions import REQUEST_ACCESS, can

    if not purpose.strip():
        raise ValidationError({"purpose": "Say what you will use the data for."})
    if team is not None and not Membership.objects.filter(team=team, user=requester).exists():
        raise ValidationError({"team": f"You are not a member of {team}."})
    if not can(requester, REQUEST_ACCESS, product):
        raise ValidationError(
            f"You already have access to {product}, or it is not open for requests."
        )
    if AccessRequest.objects.filter(
        product=product,
        requester=requester,
        team=team,
        status__in=[AccessRequest.Status.PENDING, AccessRequest.Status.APPROVED],
    ).exists():
        raise ValidationError(f"You already have a pending or approved request for {product}.")
    req = AccessRequest(
        product=product,
        requester=requester,
        purpose=purpose,
        duration_days=duration_days,
        team=team,
    )
    req.full_clean()
    req.save()
    audit.record(
        action="create", obj=req, scope=product, changes=audit.diff({}, audit.snapshot(req))
    )
    notify(
        _owners(product),
        kind="access_requested",
        title=f"{requester.get_username()} requests access to {product}",
        url="/access/inbox/",
        body=purpose,
        about=product,
    )
    return req


@transaction.atomic
def access_requests_create(
    *,
    products,
    requester,
    purpose: str,
    duration_days: int = 90,
    team: Team | None = None,
) -> list[AccessRequest]:
    """A request basket, submitted once: one access request per product, with one purpose and
    duration, each decided by that product's owners. All or nothing: if any product is refused
    (not open for requests, already requested, one the requester may not see), no request is
    made and the errors name every refused product. The page and the API both call this."""
    from meshportal.permissions import VIEW, can

    if not purpose.strip():
        raise ValidationError({"purpose": "Say what you will use the data for."})
    unique = list({p.pk: p for p in products}.values())
    if not unique:
        raise ValidationError({"products": "The basket is empty: add products first."})
    made: list[AccessRequest] = []
    errors: list[str] = []
    for product in unique:
        if not can(requester, VIEW, product):  # never name a product the requester may not see
            errors.append("A product in the basket is not one you may see.")
            continue
        try:
            with transaction.atomic():
                made.append(
                    access_request_create(
                        product=product,
                        requester=requester,
                        purpose=purpose,
                        duration_days=duration_days,
                        team=team,
                    )
                )
        except ValidationError as e:
            if hasattr(e, "error_dict") and "team" in e.error_dict:
                raise  # the same for every product: say it once, next to the field
            errors.extend(f"{product.name}: {m}" for m in e.messages)
    if errors:
        raise ValidationError(errors)  # the outer transaction undoes the requests made so far
    return made


def _locked(req: AccessRequest, by, action: str) -> AccessRequest:
    """The request, locked, once the one rule says `by` may take `action` on it: every door
    (page, API, admin) calls the transitions below and gets the same 404/403 and message;
    a request in the wrong state is a 400 (ValidationError)."""
    from meshportal.permissions import require

    req = AccessRequest.objects.select_for_update().select_related("product").get(pk=req.pk)
    require(by, action, req)
    return req


def _decide(req: AccessRequest, by, status: str, comment: str) -> AccessRequest:
    from meshportal.permissions import DECIDE

    req = _locked(req, by, DECIDE)
    if req.status != AccessRequest.Status.PENDING:
        raise ValidationError(f"This request was already {req.status}.")
    before = audit.snapshot(req)
    now = timezone.now()
    req.status, req.decided_by, req.decided_at, req.decision_comment = status, by, now, comment
    if status == AccessRequest.Status.APPROVED:
        req.expires_at = now + timedelta(days=req.duration_days)
    req.save()
    audit.record(
        action="update", obj=req, scope=req.product, changes=audit.diff(before, audit.snapshot(req))
    )
    return req


@transaction.atomic
def access_request_approve(*, request: AccessRequest, by, comment: str = "") -> AccessRequest:
    req = _decide(request, by, AccessRequest.Status.APPROVED, comment)
    assign_perm(CONSUME, _grantee(req), req.product)
    lineage_services.input_ports_approve_for_grant(request=req)
    clear_caches(request.requester)
    notify(
        [req.requester],
        kind="access_approved",
        title=f"Access to {req.product} approved",
        url=req.product.get_absolute_url(),
        body=comment,
        about=req.product,
    )
    return req


@transaction.atomic
def access_request_deny(*, request: AccessRequest, by, comment: str = "") -> AccessRequest:
    if not comment.strip():
        raise ValidationError({"decision_comment": "Tell the requester why."})
    req = _decide(request, by, AccessRequest.Status.DENIED, comment)
    notify(
        [req.requester],
        kind="access_denied",
        title=f"Access to {req.product} denied",
        url="/access/mine/",
        body=comment,
        about=req.product,
    )
    return req


@transaction.atomic
def access_request_withdraw(*, request: AccessRequest, by) -> AccessRequest:
    from meshportal.permissions import WITHDRAW

    req = _locked(request, by, WITHDRAW)
    if req.status != AccessRequest.Status.PENDING:
        raise ValidationError(f"Only a pending request can be withdrawn; this one is {req.status}.")
    audit.record(
        action="delete", obj=req, scope=req.product, changes=audit.diff(audit.snapshot(req), {})
    )
    req.delete()
    return req


def _end_grant(req: AccessRequest, status: str) -> None:
    before = audit.snapshot(req)
    req.status, req.ended_at = status, timezone.now()
    req.save(update_fields=["status", "ended_at"])
    # Another approved grant for the same grantee keeps the permission.
    still_granted = AccessRequest.objects.filter(
        product=req.product,
        status=AccessRequest.Status.APPROVED,
        **(
            {"team": req.team}
            if req.team_id
            else {"team__isnull": True, "requester": req.requester}
        ),
    ).exists()
    if not still_granted:
        remove_perm(CONSUME, _grantee(req), req.product)
    clear_caches(req.requester)
    audit.record(
        action="update", obj=req, scope=req.product, changes=audit.diff(before, audit.snapshot(req))
    )


@transaction.atomic
def access_grant_revoke(*, request: AccessRequest, by, comment: str = "") -> AccessRequest:
    from meshportal.permissions import REVOKE

    req = _locked(request, by, REVOKE)
    if req.status != AccessRequest.Status.APPROVED:
        raise ValidationError(f"Only approved access can be revoked; this request is {req.status}.")
    if comment:
        req.decision_comment = comment
    _end_grant(req, AccessRequest.Status.REVOKED)
    notify(
        [req.requester],
        kind="access_revoked",
        title=f"Access to {req.product} revoked",
        url="/access/mine/",
        body=comment,
        about=req.product,
    )
    return req


def access_grants_expire(*, now=None) -> int:
    """End every approved grant past its expiry. Idempotent; run by a periodic task."""
    now = now or timezone.now()
    expired = 0
    due = AccessRequest.objects.filter(
        status=AccessRequest.Status.APPROVED, expires_at__lte=now
    ).select_related("product", "team", "requester")
    for req in due.iterator():
        with transaction.atomic():
            _end_grant(req, AccessRequest.Status.EXPIRED)
        expired += 1
        notify(
            [req.requester],
            kind="access_expired",
            title=f"Your access to {req.product} has expired",
            url=req.product.get_absolute_url(),
            about=req.product,
        )
    return expired


# -- the self-serve form: a product with its ports and fields in one transaction ---------------


def _prefixed(error: ValidationError, prefix: str) -> ValidationError:
    """Key a port's or field's errors by its form prefix (ports-0-name, ports-0-fields-1-name)."""
    if hasattr(error, "error_dict"):
        return ValidationError({f"{prefix}-{k}": v for k, v in error.error_dict.items()})
    return ValidationError({prefix: error.messages})


@transaction.atomic
def product_save_with_ports(
    *,
    product: DataProduct | None = None,
    domain: Domain | None = None,
    tags=(),
    ports: list[dict[str, Any]] | None = None,
    owner_team: Team | None = None,
    by=None,
    **fields: Any,
) -> DataProduct:
    """Create (no `product`) or update a product together with its ports and their fields.

    Ports and fields with an "id" are updated, those without are created, and the product's
    ports and fields not listed are deleted (first, so a renamed row may take a freed name).
    Errors on a port or field are keyed by its form prefix; nothing is saved if any fails.
    `ports=None` leaves the ports as they are. One save is one contract version, so a major
    bump and the breaking edits it announces are judged together. An `owner_team` other than
    the product's moves it (product_transfer; the caller asked require_transfer).
    """
    with contracts.batch():
        saved = _save_with_ports(product=product, domain=domain, tags=tags, ports=ports, **fields)
        if owner_team is not None and owner_team.pk != saved.owner_team_id:
            saved = product_transfer(product=saved, team=owner_team, by=by)
        return saved


def _save_with_ports(*, product, domain, tags, ports, **fields: Any) -> DataProduct:
    if product is None:
        if domain is None:
            raise ValidationError({"domain": "A new product needs a domain."})
        product = product_create(domain=domain, tags=tags, **fields)
    else:
        product = product_update(product=product, tags=tags, **fields)
    if ports is None:
        return product
    keep_ports = {p["id"] for p in ports if p.get("id")}
    for stale in product.ports.exclude(pk__in=keep_ports):
        port_delete(port=stale)
    for i, raw in enumerate(ports):
        data = dict(raw)
        rows = data.pop("fields", [])
        pid = data.pop("id", None)
        if not data.get("slug"):
            data["slug"] = slugify(data.get("name", ""))
        try:
            if pid:
                port = OutputPort.objects.filter(product=product, pk=pid).first()
                if port is None:
                    raise ValidationError(f"Port {pid} is not part of {product}.")
                port = port_update(port=port, **data)
            else:
                port = port_create(product=product, **data)
        except ValidationError as e:
            raise _prefixed(e, f"ports-{i}") from e
        keep = {f["id"] for f in rows if f.get("id")}
        for stale_field in port.fields.exclude(pk__in=keep):
            field_delete(field=stale_field)
        for j, raw_field in enumerate(rows):
            fdata = {**raw_field, "ordinal": j}
            fid = fdata.pop("id", None)
            try:
                if fid:
                    field = SchemaField.objects.filter(port=port, pk=fid).first()
                    if field is None:
                        raise ValidationError(f"Field {fid} is not part of {port}.")
                    field_update(field=field, **fdata)
                else:
                    field_create(port=port, **fdata)
            except ValidationError as e:
                raise _prefixed(e, f"ports-{i}-fields-{j}") from e
    return product
