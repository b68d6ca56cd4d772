"""Reads for governance pages: scorecards, a policy's failures and trend, the product tab."""

from django.db.models import Count, Q, QuerySet

from governance.models import (
    Compliance,
    ComplianceChange,
    EvaluationRun,
    GlossaryTerm,
    Policy,
    PolicyRunSummary,
    PolicyVote,
    Waiver,
)
from governance.policies import rules
from governance.policies.permissions import REQUEST_WAIVER
from governance.policies.services import PASS, active_waivers, waived_exists
from meshportal.permissions import can, visible
from products.models import DataProduct


def _visible_ids(user) -> QuerySet:
    return visible(user, DataProduct.objects.all()).values("pk")


def compliance(*, user) -> QuerySet:
    """Current results on products the user may see, each marked waived or not."""
    return Compliance.objects.filter(product__in=_visible_ids(user)).annotate(
        waived=waived_exists()
    )


def compliance_changes(*, user) -> QuerySet:
    """Outcome history on products the user may see."""
    return ComplianceChange.objects.filter(product__in=_visible_ids(user)).select_related(
        "policy", "product__domain"
    )


def _compliant() -> Q:
    return Q(outcome=PASS) | Q(waived_exists())


def policy_list() -> QuerySet:
    return (
        Policy.objects.select_related("domain", "proposed_by")
        .annotate(
            approvals=Count("votes", filter=Q(votes__decision=PolicyVote.Decision.APPROVE)),
            rejections=Count("votes", filter=Q(votes__decision=PolicyVote.Decision.REJECT)),
        )
        .order_by("status", "key")
    )


def compliance_matrix(*, user) -> dict:
    """Domains × active policies: {(domain_id, policy_id): (compliant, total)}."""
    from domains.models import Domain

    policies = list(Policy.objects.filter(status=Policy.Status.ACTIVE).select_related("domain"))
    rows = (
        Compliance.objects.filter(
            product__in=_visible_ids(user), policy__status=Policy.Status.ACTIVE
        )
        .values("product__domain_id", "policy_id")
        .annotate(total=Count("pk"), ok=Count("pk", filter=_compliant()))
    )
    cells = {(r["product__domain_id"], r["policy_id"]): (r["ok"], r["total"]) for r in rows}
    domains = list(Domain.objects.order_by("name"))
    return {
        "policies": policies,
        "rows": [(d, [(p, cells.get((d.pk, p.pk))) for p in policies]) for d in domains],
    }


def policy_failures(*, policy: Policy, user, domain_slug: str | None = None) -> QuerySet:
    qs = compliance(user=user).filter(policy=policy, outcome=Compliance.Outcome.FAIL)
    if domain_slug:
        qs = qs.filter(product__domain__slug=domain_slug)
    return qs.select_related("product__domain").order_by("product__domain__name", "product__name")


def policy_counts(*, policy: Policy, user) -> dict:
    return Compliance.objects.filter(product__in=_visible_ids(user), policy=policy).aggregate(
        total=Count("pk"),
        passing=Count("pk", filter=Q(outcome=PASS)),
        waived=Count("pk", filter=Q(outcome=Compliance.Outcome.FAIL) & Q(waived_exists())),
    )


def policy_evaluated(*, policy: Policy) -> bool:
    """Has an evaluation covered this active policy since it was adopted? Until one has, its
    page says the evaluation is queued rather than "0 of 0 products pass"."""
    if Compliance.objects.filter(policy=policy).exists():
        return True
    runs = EvaluationRun.objects.filter(finished_at__isnull=False).exclude(
        trigger=EvaluationRun.Trigger.CHANGE  # a run over changed products only
    )
    if policy.activated_at:
        runs = runs.filter(started_at__gte=policy.activated_at)
    return runs.exists()


def policy_trend(*, policy: Policy, limit: int = 30) -> list[PolicyRunSummary]:
    rows = list(
        PolicyRunSummary.objects.filter(policy=policy)
        .select_related("run")
        .order_by("-run__started_at")[:limit]
    )
    return rows[::-1]


def domain_scorecard(*, domain, user) -> list[dict]:
    rows = (
        compliance(user=user)
        .filter(product__domain=domain, policy__status=Policy.Status.ACTIVE)
        .values("policy_id")
        .annotate(total=Count("pk"), ok=Count("pk", filter=_compliant()))
    )
    counts = {r["policy_id"]: r for r in rows}
    policies = (
        Policy.objects.filter(status=Policy.Status.ACTIVE)
        .filter(Q(domain__isnull=True) | Q(domain=domain))
        .select_related("domain")
    )
    return [{"policy": p, **counts.get(p.pk, {"total": 0, "ok": 0})} for p in policies]


def domain_failures(*, domain, user) -> QuerySet:
    return (
        compliance(user=user)
        .filter(
            product__domain=domain,
            policy__status=Policy.Status.ACTIVE,
            outcome=Compliance.Outcome.FAIL,
        )
        .select_related("product__domain", "policy")
        .order_by("product__name", "policy__key")
    )


def product_tab_context(request, product: DataProduct) -> dict:
    """The product's Governance tab: each applicable policy's state and reason."""
    probe = Waiver(product=product)
    return {
        "governance_rows": product_compliance(product=product),
        "can_request_waiver": can(request.user, REQUEST_WAIVER, probe),
    }


def product_compliance(*, product: DataProduct) -> list[dict]:
    """Each policy that applies to product: its state (pass, fail, waived, unknown), its stored
    status (with the reason), the active waiver, whether a waiver is pending, and how to fix a
    failure. The Governance tab and the MCP server read it."""
    from governance.policies.services import applicable_policies

    by_policy = {s.policy_id: s for s in Compliance.objects.filter(product=product)}
    waived = {w.policy_id: w for w in active_waivers().filter(product=product)}
    pending = set(
        Waiver.objects.filter(product=product, status=Waiver.Status.REQUESTED).values_list(
            "policy_id", flat=True
        )
    )
    rows = []
    for policy in applicable_policies(product).select_related("domain"):
        status = by_policy.get(policy.pk)
        if status is None:
            state = "unknown"
        elif status.outcome == PASS:
            state = "pass"
        else:
            state = "waived" if policy.pk in waived else "fail"
        rows.append(
            {
                "policy": policy,
                "status": status,
                "state": state,
                "waiver": waived.get(policy.pk),
                "pending": policy.pk in pending,
                "fix": rules.get(policy.rule_type).fix_hint(
                    rules.get(policy.rule_type).clean_params(policy.parameters)
                )
                if state == "fail"
                else "",
            }
        )
    return rows


def waiver_queue(*, user) -> QuerySet:
    return (
        visible(user, Waiver.objects.all())
        .select_related("policy", "product__domain", "requested_by", "decided_by")
        .order_by("-created_at")
    )


def glossary_terms(*, query: str = "") -> QuerySet:
    qs = GlossaryTerm.objects.select_related("domain").annotate(n_fields=Count("fields"))
    if query:
        qs = qs.filter(Q(name__icontains=query) | Q(synonyms__icontains=query))
    return qs.order_by("name")


def term_fields(*, term: GlossaryTerm, user) -> QuerySet:
    from products.models import SchemaField

    return (
        SchemaField.objects.filter(glossary_term=term, port__product__in=_visible_ids(user))
        .select_related("port__product__domain")
        .order_by("port__product__name", "port__slug", "name")
    )
