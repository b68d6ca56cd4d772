"""Writes and business rules for policies, votes, evaluations, waivers and the glossary."""

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from domains.models import Domain
from governance.models import (
    Compliance,
    ComplianceChange,
    DirtyProduct,
    EvaluationRun,
    GlossaryTerm,
    Policy,
    PolicyRunSummary,
    PolicyVote,
    Waiver,
)
from governance.policies import rules
from governance.policies.permissions import EVALUATE, OVERRIDE, PROPOSE, REQUEST_WAIVER, VOTE
from meshportal import audit, queue
from meshportal.notifications import notify
from meshportal.permissions import DECIDE, EDIT, PUBLIC_PRODUCTS, RETIRE, can
from products.models import DataProduct

logger = logging.getLogger(__name__)
PASS, FAIL = Compliance.Outcome.PASS, Compliance.Outcome.FAIL


def quorum() -> int:
    return settings.MESH_POLICY_QUORUM


# -- policies ----------------------------------------------------------------------------------


@transaction.atomic
def policy_propose(
    *,
    by,
    key: str,
    title: str,
    rule_type: str,
    parameters: dict[str, Any] | None = None,
    rationale: str = "",
    severity: str = Policy.Severity.ADVISORY,
    domain: Domain | None = None,
) -> Policy:
    """A global policy waits for the council's votes; a domain's own policy is adopted at once."""
    policy = Policy(
        key=key,
        title=title,
        rationale=rationale,
        rule_type=rule_type,
        severity=severity,
        domain=domain,
        proposed_by=by,
    )
    if not can(by, PROPOSE, policy):
        # A right, not a state: 403 with this message from page, API and admin alike.
        raise PermissionDenied(
            f"Only owners of {domain} adopt its policies."
            if domain
            else "Only domain owners and council delegates propose global policies."
        )
    policy.parameters = policy_parameters_clean(rule_type, parameters)
    if domain is not None:
        policy.status, policy.activated_at = Policy.Status.ACTIVE, timezone.now()
    policy.full_clean()
    policy.save()
    audit.record(action="create", obj=policy, changes=audit.diff({}, audit.snapshot(policy)))
    if policy.status == Policy.Status.ACTIVE:
        _queue_first_evaluation()
    return policy


def policy_parameters_clean(rule_type: str, parameters) -> dict[str, Any]:
    rule = rules.get(rule_type)
    if parameters is not None and not isinstance(parameters, dict):
        raise ValidationError({"parameters": "Parameters must be a JSON object."})
    cleaned = rule.clean_params(parameters)
    return {k: v for k, v in cleaned.items() if v is not None}


@transaction.atomic
def policy_vote(*, policy: Policy, by, decision: str, comment: str = "") -> PolicyVote:
    """A council delegate approves or rejects; a quorum of either decides the policy."""
    policy = Policy.objects.select_for_update().get(pk=policy.pk)
    if not can(by, VOTE, policy):
        raise ValidationError("Only council delegates vote, and only on proposed global policies.")
    if decision not in PolicyVote.Decision.values:
        raise ValidationError({"decision": "Choose approve or reject."})
    if decision == PolicyVote.Decision.REJECT and not comment.strip():
        raise ValidationError({"comment": "Say why you reject it."})
    vote = PolicyVote.objects.filter(policy=policy, voter=by).first()
    before = audit.snapshot(vote) if vote else {}
    vote = vote or PolicyVote(policy=policy, voter=by)
    vote.decision, vote.comment = decision, comment
    vote.save()
    audit.record(
        action="update" if before else "create",
        obj=vote,
        scope=policy,
        changes=audit.diff(before, audit.snapshot(vote)),
    )
    tally = dict(policy.votes.values_list("decision").annotate(n=Count("pk")))
    if tally.get(PolicyVote.Decision.APPROVE, 0) >= quorum():
        _set_status(policy, Policy.Status.ACTIVE, activated_at=timezone.now())
        _queue_first_evaluation()
    elif tally.get(PolicyVote.Decision.REJECT, 0) >= quorum():
        _set_status(policy, Policy.Status.REJECTED)
    return vote


def _set_status(policy: Policy, status: str, *, note: dict | None = None, **extra) -> None:
    """Change a policy's status, audited (with `note`, e.g. the override, in the same entry)
    and its proposer told."""
    before = audit.snapshot(policy)
    policy.status = status
    for k, v in extra.items():
        setattr(policy, k, v)
    policy.save()
    changes = audit.diff(before, audit.snapshot(policy))
    audit.record(action="update", obj=policy, changes={**changes, **(note or {})})
    if policy.proposed_by_id and status != Policy.Status.RETIRED:
        notify(
            [policy.proposed_by],
            kind="policy_decided",
            title=f"Policy “{policy.title}” is {status}",
            url=policy.get_absolute_url(),
        )


@transaction.atomic
def policy_override_activate(*, policy: Policy, by, reason: str) -> Policy:
    """Make a proposed (or rejected) policy active without the council's vote: the platform
    team's override, for an emergency. One audit entry says it was an override and why; the
    council and the proposer are told."""
    policy = Policy.objects.select_for_update().get(pk=policy.pk)
    if not can(by, OVERRIDE, policy):
        raise PermissionDenied(
            "Only platform staff override the council, and only on a proposed or rejected policy."
        )
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": "Say why the council's vote is overridden."})
    _set_status(
        policy,
        Policy.Status.ACTIVE,
        note={"override": [None, f"platform override by {by.get_username()}: {reason}"]},
        activated_at=timezone.now(),
    )
    _queue_first_evaluation()
    notify(
        _council().exclude(pk=policy.proposed_by_id),  # the proposer heard it from _set_status
        kind="policy_override",
        title=f"Policy “{policy.title}” was made active by platform override (no council vote)",
        url=policy.get_absolute_url(),
        body=reason,
    )
    return policy


def _queue_first_evaluation() -> None:
    """A policy just became active: evaluate it over the mesh once the adoption commits, so its
    page shows results rather than "0 of 0" until the next scheduled run. Until that run
    finishes the page says the evaluation is queued (selectors.policy_evaluated)."""
    from governance.policies.tasks import evaluate_policies as task

    queue.enqueue_on_commit(task, trigger=EvaluationRun.Trigger.MANUAL)


def _council() -> QuerySet:
    """The council's delegates (the governance group)."""
    from django.contrib.auth import get_user_model

    from meshportal.permissions import GOVERNANCE_GROUP

    return get_user_model().objects.filter(groups__name=GOVERNANCE_GROUP)


@transaction.atomic
def policy_retire(*, policy: Policy, by) -> Policy:
    if not can(by, RETIRE, policy):
        raise ValidationError(f"You may not retire “{policy}”.")
    _set_status(policy, Policy.Status.RETIRED, retired_at=timezone.now())
    Compliance.objects.filter(policy=policy).delete()
    return policy


# -- evaluation --------------------------------------------------------------------------------


def _in_scope(policy: Policy, products: QuerySet) -> QuerySet:
    return products.filter(domain_id=policy.domain_id) if policy.domain_id else products


def _evaluate_policy(policy: Policy, products: QuerySet) -> dict[int, list[str]] | None:
    rule = rules.get(policy.rule_type)
    try:
        params = rule.clean_params(policy.parameters)
    except ValidationError:
        logger.warning("policy %s has invalid parameters; skipped", policy.key)
        return None
    return rule.evaluate(_in_scope(policy, products), params)


@transaction.atomic
def evaluate_policies(
    *, trigger: str = EvaluationRun.Trigger.MANUAL, products: QuerySet[DataProduct] | None = None
) -> EvaluationRun:
    """Evaluate every active policy over every live product (or the given ones).

    Each rule type runs over the whole set in a few queries; only outcomes that changed are
    written, with a history row each, so a run's writes grow with change, not with the mesh.
    """
    now = timezone.now()
    full = products is None
    live = DataProduct.objects.exclude(status=DataProduct.Status.RETIRED)
    products = live if products is None else live.filter(pk__in=products.values("pk"))
    policies = list(Policy.objects.filter(status=Policy.Status.ACTIVE))
    scope = dict(products.values_list("pk", "domain_id"))
    run = EvaluationRun.objects.create(trigger=trigger, products=len(scope), policies=len(policies))
    existing = (
        Compliance.objects.all()
        if full
        else Compliance.objects.filter(product__in=products.values("pk"))
    )
    current = {
        (pol, prod): (pk, outcome, reason)
        for pk, pol, prod, outcome, reason in existing.values_list(
            "pk", "policy_id", "product_id", "outcome", "reason"
        )
    }
    new, changed, history, seen = [], [], [], set()
    for policy in policies:
        failures = _evaluate_policy(policy, products)
        if failures is None:
            continue
        for product_id, domain_id in scope.items():
            if policy.domain_id and domain_id != policy.domain_id:
                continue
            reasons = failures.get(product_id)
            outcome, reason = (FAIL, "; ".join(reasons)) if reasons else (PASS, "")
            key = (policy.pk, product_id)
            seen.add(key)
            old = current.get(key)
            if old is None:
                new.append((policy.pk, product_id, outcome, reason, now, run.pk))
            elif (old[1], old[2]) != (outcome, reason):
                changed.append(
                    Compliance(pk=old[0], outcome=outcome, reason=reason, changed_at=now, run=run)
                )
            else:
                continue
            history.append((run.pk, policy.pk, product_id, outcome, reason, now))
    _insert(
        Compliance, ["policy_id", "product_id", "outcome", "reason", "changed_at", "run_id"], new
    )
    Compliance.objects.bulk_update(
        changed, ["outcome", "reason", "changed_at", "run"], batch_size=500
    )
    _insert(
        ComplianceChange,
        ["run_id", "policy_id", "product_id", "outcome", "reason", "created_at"],
        history,
    )
    gone = [current[k][0] for k in current.keys() - seen]
    for i in range(0, len(gone), 500):
        Compliance.objects.filter(pk__in=gone[i : i + 500]).delete()
    # The trend on a policy's page is shown to everyone: it counts the products everyone may
    # see (not drafts), so that it never tells how many drafts another team has.
    counts = (
        Compliance.objects.filter(policy__status=Policy.Status.ACTIVE)
        .filter(product__in=DataProduct.objects.filter(PUBLIC_PRODUCTS).values("pk"))
        .values("policy_id")
        .annotate(
            passed=Count("pk", filter=Q(outcome=PASS)), failed=Count("pk", filter=Q(outcome=FAIL))
        )
    )
    PolicyRunSummary.objects.bulk_create(
        [
            PolicyRunSummary(
                run=run, policy_id=c["policy_id"], passed=c["passed"], failed=c["failed"]
            )
            for c in counts
        ]
    )
    run.changed, run.finished_at = len(new) + len(changed), timezone.now()
    run.save(update_fields=["changed", "finished_at"])
    return run


def _insert(model, columns: list[str], rows: list[tuple]) -> None:
    """Insert many rows: COPY on PostgreSQL (a first run over 10,000 products writes ~160,000
    rows; building model instances for them costs more than evaluating), bulk_create elsewhere."""
    if not rows:
        return
    if connection.vendor == "postgresql":
        q = connection.ops.quote_name
        sql = f"COPY {q(model._meta.db_table)} ({', '.join(q(c) for c in columns)}) FROM STDIN"
        with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)
        return
    model.objects.bulk_create(
        [model(**dict(zip(columns, row, strict=True))) for row in rows], batch_size=2000
    )


def product_mark_changed(*, product_id: int) -> None:
    """Note that a product changed; the first change of a burst schedules one evaluation."""
    products_mark_changed(product_ids=[product_id])


def products_mark_changed(*, product_ids) -> None:
    """Note that products changed (those that still exist); the first change of a burst
    schedules one evaluation."""
    ids = set(DataProduct.objects.filter(pk__in=set(product_ids)).values_list("pk", flat=True))
    if not ids:
        return
    marked = DirtyProduct.objects.count()
    new = ids - set(
        DirtyProduct.objects.filter(product_id__in=ids).values_list("product_id", flat=True)
    )
    DirtyProduct.objects.bulk_create(
        [DirtyProduct(product_id=i) for i in new], batch_size=1000, ignore_conflicts=True
    )
    if new and marked == 0:
        from governance.policies.tasks import evaluate_changed_products

        # A broker outage keeps the task (with its countdown) for later; nothing else is
        # swallowed here.
        queue.enqueue_on_commit(
            evaluate_changed_products,
            options={"countdown": settings.MESH_POLICY_DEBOUNCE_SECONDS},
        )


def evaluate_on_demand(*, by):
    """The "Evaluate now" button and API action: queue a full evaluation (council or platform).
    Through meshportal.queue, so a broker outage keeps the request for later. It writes
    nothing, so there is no commit to wait for: it sends at once and tells the caller."""
    from governance.policies.tasks import evaluate_policies as task

    if not can(by, EVALUATE, Policy()):
        raise PermissionDenied("Only council delegates and the platform team evaluate on demand.")
    return queue.enqueue(task, trigger=EvaluationRun.Trigger.MANUAL)


def evaluate_changed_products() -> EvaluationRun | None:
    """Evaluate the products changed since the last time (debounced by the caller's countdown)."""
    with transaction.atomic():
        ids = list(DirtyProduct.objects.values_list("product_id", flat=True))
        if not ids:
            return None
        DirtyProduct.objects.filter(product_id__in=ids).delete()
    return evaluate_policies(
        trigger=EvaluationRun.Trigger.CHANGE, products=DataProduct.objects.filter(pk__in=ids)
    )


# -- publish gate ------------------------------------------------------------------------------


def active_waivers(now: datetime | None = None) -> QuerySet:
    return Waiver.objects.filter(status=Waiver.Status.GRANTED, expires_at__gt=now or timezone.now())


def waived_exists(policy_ref="policy_id", product_ref="product_id") -> Exists:
    """Exists(an active waiver) for annotating Compliance-like rows."""
    return Exists(
        active_waivers().filter(policy_id=OuterRef(policy_ref), product_id=OuterRef(product_ref))
    )


def applicable_policies(product: DataProduct) -> QuerySet:
    return Policy.objects.filter(status=Policy.Status.ACTIVE).filter(
        Q(domain__isnull=True) | Q(domain_id=product.domain_id)
    )


@dataclass(frozen=True)
class GateResult:
    """One blocking policy the product fails now: why, how to fix it, and whether it is waived."""

    policy: Policy
    reasons: list[str]
    fix: str
    waived: bool

    @property
    def title(self) -> str:
        return self.policy.title

    @property
    def url(self) -> str:
        return self.policy.get_absolute_url()


def publish_gate(*, product: DataProduct) -> list[GateResult]:
    """Each applicable blocking policy the product fails now, waived ones included (marked).
    The publish gate and its preview on the product and confirmation pages share it."""
    waived = set(active_waivers().filter(product=product).values_list("policy_id", flat=True))
    one = DataProduct.objects.filter(pk=product.pk)
    out = []
    for policy in applicable_policies(product).filter(severity=Policy.Severity.BLOCKING):
        rule = rules.get(policy.rule_type)
        params = rule.clean_params(policy.parameters)
        reasons = rule.evaluate(one, params).get(product.pk)
        if reasons:
            out.append(GateResult(policy, reasons, rule.fix_hint(params), policy.pk in waived))
    return out


def product_blocking_failures(*, product: DataProduct) -> list[tuple[Policy, list[str], str]]:
    """[(policy, reasons, how to fix)] for each blocking policy the product fails, now, unwaived."""
    return [(r.policy, r.reasons, r.fix) for r in publish_gate(product=product) if not r.waived]


def publish_check(product: DataProduct) -> None:
    """Publishing asks this (`products.extensions.check_publish`): every blocking policy passes
    or is waived."""
    failures = product_blocking_failures(product=product)
    if failures:
        raise ValidationError(
            [
                f"Blocking policy “{policy.title}” fails: {'; '.join(reasons)}. To fix: {fix}"
                for policy, reasons, fix in failures
            ]
        )


# -- waivers -----------------------------------------------------------------------------------


@transaction.atomic
def waiver_request(*, policy: Policy, product: DataProduct, by, justification: str) -> Waiver:
    waiver = Waiver(policy=policy, product=product, requested_by=by, justification=justification)
    if not can(by, REQUEST_WAIVER, waiver):
        raise ValidationError(f"Only owners of {product} ask for its waivers.")
    if not justification.strip():
        raise ValidationError({"justification": "Say why the product cannot comply yet."})
    if policy.status != Policy.Status.ACTIVE:
        raise ValidationError({"policy": "Only active policies can be waived."})
    if Waiver.objects.filter(
        policy=policy, product=product, status=Waiver.Status.REQUESTED
    ).exists():
        raise ValidationError("A waiver request for this policy and product is already pending.")
    waiver.save()
    audit.record(
        action="create", obj=waiver, scope=product, changes=audit.diff({}, audit.snapshot(waiver))
    )
    notify(
        list(_council()),
        kind="waiver_requested",
        title=f"Waiver asked: {policy} for {product}",
        url="/governance/waivers/",
        body=justification,
        about=product,  # the delegates it awaits see it (policy_permissions)
    )
    return waiver


@transaction.atomic
def waiver_decide(
    *, waiver: Waiver, by, grant: bool, reason: str, expires_at: datetime | None = None
) -> Waiver:
    waiver = (
        Waiver.objects.select_for_update().select_related("product", "policy").get(pk=waiver.pk)
    )
    if not can(by, DECIDE, waiver):
        raise ValidationError("Only council delegates decide pending waivers, and not their own.")
    if not reason.strip():
        raise ValidationError({"decision_reason": "Give the reason for your decision."})
    if grant and (expires_at is None or expires_at <= timezone.now()):
        raise ValidationError({"expires_at": "A waiver needs an expiry in the future."})
    before = audit.snapshot(waiver)
    waiver.status = Waiver.Status.GRANTED if grant else Waiver.Status.DENIED
    waiver.decided_by, waiver.decided_at, waiver.decision_reason = by, timezone.now(), reason
    waiver.expires_at = expires_at if grant else None
    waiver.save()
    audit.record(
        action="update",
        obj=waiver,
        scope=waiver.product,
        changes=audit.diff(before, audit.snapshot(waiver)),
    )
    if waiver.requested_by_id:
        notify(
            [waiver.requested_by],
            kind="waiver_decided",
            title=f"Waiver of {waiver.policy} for {waiver.product} {waiver.status}",
            url=waiver.product.get_absolute_url() + "?tab=governance",
            body=reason,
            about=waiver.product,
        )
    return waiver


# -- glossary ----------------------------------------------------------------------------------


@transaction.atomic
def glossary_term_save(*, term: GlossaryTerm | None = None, by=None, **fields: Any) -> GlossaryTerm:
    """Create or change a term; with `by`, only the council or the owning domain's owners may."""
    # Rights, not states: 403 with these messages from the page and the admin alike.
    if by is not None and term is not None and not can(by, EDIT, term):
        raise PermissionDenied(f"You may not change “{term}”.")
    before = audit.snapshot(term) if term else {}
    term = term or GlossaryTerm()
    for k, v in fields.items():
        setattr(term, k, v)
    if by is not None and not can(by, EDIT, term):
        raise PermissionDenied(
            "Only the council keeps global terms; domain owners keep their own domain's."
        )
    term.full_clean()
    term.save()
    audit.record(
        action="update" if before else "create",
        obj=term,
        changes=audit.diff(before, audit.snapshot(term)),
    )
    # Linked products are found by the term's name and synonyms: refresh their search text.
    from products.discovery.search import index_product

    for product in DataProduct.objects.filter(ports__fields__glossary_term=term).distinct():
        index_product(product)
    return term


def glossary_term_resolve(ref: str) -> GlossaryTerm | None:
    """The term a person typed or picked: its slug, else its exact name (case-insensitive).
    None for an empty reference; ValidationError when nothing (or more than one) matches."""
    ref = ref.strip()
    if not ref:
        return None
    terms = GlossaryTerm.objects.select_related("domain")
    term = terms.filter(slug=ref).first()
    if term is None:
        named = list(terms.filter(name__iexact=ref)[:2])
        if len(named) > 1:
            raise ValidationError({"term": f"Several terms are called “{ref}”: pick one."})
        term = named[0] if named else None
    if term is None:
        raise ValidationError({"term": f"No glossary term “{ref}”."})
    return term


@transaction.atomic
def field_glossary_link(*, field, term: GlossaryTerm | None, by):
    """Link a schema field to a glossary term (None unlinks). Only the product's team may; a
    deprecated term is refused. Through field_update, so the product's search document is
    rebuilt, the audit log records it and the debounced policy evaluation (glossary usage)
    is scheduled."""
    from products.services import field_update

    product = field.port.product
    if not can(by, EDIT, product):
        raise ValidationError(f"Only the team owning {product} links its fields to terms.")
    if term is not None and term.status == GlossaryTerm.Status.DEPRECATED:
        raise ValidationError({"term": f"“{term}” is deprecated; link a current term."})
    if field.glossary_term_id == (term.pk if term else None):
        return field
    return field_update(field=field, glossary_term=term)


def glossary_suggest(query: str, *, limit: int = 10) -> list[GlossaryTerm]:
    """Terms to offer while someone types a field's term: names first, then synonyms."""
    q = query.strip()
    if not q:
        return []
    terms = GlossaryTerm.objects.exclude(status=GlossaryTerm.Status.DEPRECATED).select_related(
        "domain"
    )
    found = list(terms.filter(Q(name__icontains=q) | Q(slug__icontains=q))[:limit])
    if len(found) < limit:
        more = terms.filter(synonyms__icontains=q).exclude(pk__in=[t.pk for t in found])
        found += list(more[: limit - len(found)])
    return found


def glossary_document_part(product):
    """Search text for a product: the glossary terms (and synonyms) its fields are linked to."""
    names = set()
    for port in product.ports.all():
        for field in port.fields.all():
            if field.glossary_term_id:
                term = field.glossary_term
                names.add(term.name)
                names.update(term.synonym_list)
    return [("C", " ".join(sorted(names)))]


def glossary_search(query: str, *, limit: int = 20) -> QuerySet:
    """Terms whose name, synonyms or definition mention the query: the portal search's hook."""
    q = query.strip()
    if not q:
        return GlossaryTerm.objects.none()
    return (
        GlossaryTerm.objects.exclude(status=GlossaryTerm.Status.DEPRECATED)
        .filter(Q(name__icontains=q) | Q(synonyms__icontains=q) | Q(definition__icontains=q))
        .select_related("domain")[:limit]
    )


def compliance_share(product: DataProduct) -> float | None:
    """Share of the active policies that apply to the product which it passes (or has waived);
    None when no policy has judged it yet. One term of the trust score."""
    return compliance_shares([product])[product.pk]


def compliance_shares(products: list[DataProduct]) -> dict[int, float | None]:
    """compliance_share of many products in one query: {product id: share or None}."""
    domain_of = {p.pk: p.domain_id for p in products}
    rows = (
        Compliance.objects.filter(
            product_id__in=list(domain_of), policy__status=Policy.Status.ACTIVE
        )
        .annotate(waived=waived_exists())
        .values_list("product_id", "policy__domain_id", "outcome", "waived")
        .order_by()
    )
    judged: dict[int, list[bool]] = {pk: [] for pk in domain_of}
    for product_id, policy_domain, outcome, waived in rows:
        if policy_domain is None or policy_domain == domain_of[product_id]:
            judged[product_id].append(outcome == "pass" or bool(waived))
    return {pk: (sum(ok) / len(ok) if ok else None) for pk, ok in judged.items()}
