from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from domains.models import Domain
from governance.models import GlossaryTerm, Policy, Waiver
from governance.policies import rules, selectors, services
from governance.policies.forms import (
    GlossaryTermForm,
    PolicyForm,
    VoteForm,
    WaiverDecisionForm,
    WaiverRequestForm,
)
from governance.policies.permissions import CREATE_TERM, EVALUATE, PROPOSE, REQUEST_WAIVER, VOTE
from governance.quality import selectors as quality_selectors
from meshportal.forms import apply_errors
from meshportal.pagination import StablePaginator
from meshportal.permissions import DECIDE, EDIT, RETIRE, VIEW, can, require
from meshportal.text import past_tense
from products import selectors as product_selectors
from products.models import DataProduct, SchemaField

PAGE_SIZE = 25


def _page(request, qs):
    return StablePaginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))


def _errors(request, e: ValidationError) -> None:
    for msg in e.messages:
        messages.error(request, msg)


def policy_list(request):
    return render(
        request,
        "governance/policies/policy_list.html",
        {
            "page": _page(request, selectors.policy_list()),
            "can_propose": can(request.user, PROPOSE, Policy()),
            "can_evaluate": can(request.user, EVALUATE, Policy()),
        },
    )


@require_http_methods(["GET", "POST"])
def policy_propose(request):
    require(request.user, PROPOSE, Policy())
    if request.method == "POST":
        form = PolicyForm(request.POST)
    else:  # htmx asks again when the rule type changes, with what was typed so far
        form = PolicyForm(
            initial={k: v for k, v in request.GET.items() if k in PolicyForm.base_fields}
        )
    if request.method == "POST" and form.is_valid():
        try:
            policy = services.policy_propose(by=request.user, **form.service_kwargs())
        except ValidationError as e:
            form.add_service_errors(e)
        else:
            messages.success(
                request,
                f"Adopted “{policy}” for {policy.domain}."
                if policy.domain
                else f"Proposed “{policy}”; the council votes on it.",
            )
            return redirect(policy)
    return render(
        request,
        "governance/policies/policy_form.html",
        {"form": form, "rule_types": rules.all_types()},
    )


def _policy(key: str) -> Policy:
    return get_object_or_404(Policy.objects.select_related("domain", "proposed_by"), key=key)


def policy_detail(request, key: str):
    policy = _policy(key)
    user = request.user
    domain = request.GET.get("domain") or None
    rule = rules.get(policy.rule_type)
    return render(
        request,
        "governance/policies/policy_detail.html",
        {
            "policy": policy,
            "rule": rule,
            "votes": policy.votes.select_related("voter"),
            "quorum": services.quorum(),
            "counts": selectors.policy_counts(policy=policy, user=user),
            "evaluated": policy.status != Policy.Status.ACTIVE
            or selectors.policy_evaluated(policy=policy),
            "trend": selectors.policy_trend(policy=policy),
            "page": _page(
                request, selectors.policy_failures(policy=policy, user=user, domain_slug=domain)
            ),
            "domain_filter": domain,
            "can_vote": can(user, VOTE, policy),
            "can_retire": can(user, RETIRE, policy),
            "vote_form": VoteForm(),
        },
    )


@require_POST
def policy_vote(request, key: str):
    policy = _policy(key)
    require(request.user, VOTE, policy)
    form = VoteForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose approve or reject.")
        return redirect(policy)
    try:
        services.policy_vote(policy=policy, by=request.user, **form.cleaned_data)
    except ValidationError as e:
        _errors(request, e)
    else:
        adopted = Policy.objects.filter(pk=policy.pk, status=Policy.Status.ACTIVE).exists()
        messages.success(
            request,
            "Your vote is counted. The policy is now active; its first evaluation is queued."
            if adopted
            else "Your vote is counted.",
        )
    return redirect(policy)


@require_POST
def policy_retire(request, key: str):
    policy = _policy(key)
    require(request.user, RETIRE, policy)
    try:
        services.policy_retire(policy=policy, by=request.user)
    except ValidationError as e:
        _errors(request, e)
    else:
        messages.success(request, f"Retired “{policy}”.")
    return redirect(policy)


@require_POST
def evaluate_now(request):
    require(request.user, EVALUATE, Policy())
    result = services.evaluate_on_demand(by=request.user)
    if result.queued:
        messages.success(request, "Evaluation started; results appear in a moment.")
    else:
        messages.add_message(request, result.level, result.message)
    return redirect("governance:compliance")


def compliance(request):
    matrix = selectors.compliance_matrix(user=request.user)
    incidents = quality_selectors.active_incidents_by_domain(user=request.user)
    return render(
        request,
        "governance/policies/compliance.html",
        {
            "policies": matrix["policies"],
            "rows": [(d, cells, incidents.get(d.pk, 0)) for d, cells in matrix["rows"]],
            "can_evaluate": can(request.user, EVALUATE, Policy()),
        },
    )


def domain_scorecard(request, domain: str):
    obj = get_object_or_404(Domain, slug=domain)
    return render(
        request,
        "governance/policies/domain_scorecard.html",
        {
            "domain": obj,
            "scores": selectors.domain_scorecard(domain=obj, user=request.user),
            "page": _page(request, selectors.domain_failures(domain=obj, user=request.user)),
        },
    )


# -- waivers -----------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def waiver_request(request, key: str, product_id: int):
    policy = _policy(key)
    product = get_object_or_404(
        selectors.visible(request.user, DataProduct.objects.select_related("domain")), pk=product_id
    )
    require(request.user, REQUEST_WAIVER, Waiver(policy=policy, product=product))
    form = WaiverRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.waiver_request(
                policy=policy, product=product, by=request.user, **form.cleaned_data
            )
        except ValidationError as e:
            apply_errors(form, e)
        else:
            messages.success(request, "Waiver requested; the council has been told.")
            return redirect(product.get_absolute_url() + "?tab=governance")
    return render(
        request,
        "governance/policies/waiver_form.html",
        {"form": form, "policy": policy, "product": product},
    )


def waiver_list(request):
    page = _page(request, selectors.waiver_queue(user=request.user))
    for w in page:
        w.can_decide = can(request.user, DECIDE, w)
        # A waiver its delegate decided stays in their list; the draft it is about may be
        # its team's alone again (then named, not linked).
        w.product_visible = can(request.user, VIEW, w.product)
    return render(
        request,
        "governance/policies/waiver_list.html",
        {"page": page, "form": WaiverDecisionForm()},
    )


@require_POST
def waiver_decide(request, pk: int):
    waiver = get_object_or_404(selectors.waiver_queue(user=request.user), pk=pk)
    require(request.user, DECIDE, waiver)
    form = WaiverDecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose grant or deny and give a reason.")
        return redirect("governance:waivers")
    data = form.cleaned_data
    try:
        services.waiver_decide(
            waiver=waiver,
            by=request.user,
            grant=data["decision"] == "grant",
            reason=data["decision_reason"],
            expires_at=data["expires_at"],
        )
    except ValidationError as e:
        _errors(request, e)
    else:
        messages.success(request, f"Waiver {past_tense(data['decision'])}.")
    return redirect("governance:waivers")


# -- glossary ----------------------------------------------------------------------------------


def glossary(request):
    q = request.GET.get("q", "").strip()
    return render(
        request,
        "governance/policies/glossary_list.html",
        {
            "page": _page(request, selectors.glossary_terms(query=q)),
            "q": q,
            "can_create": can(request.user, CREATE_TERM, GlossaryTerm()),
        },
    )


def glossary_term(request, slug: str):
    term = get_object_or_404(GlossaryTerm.objects.select_related("domain"), slug=slug)
    return render(
        request,
        "governance/policies/glossary_detail.html",
        {
            "term": term,
            "can_edit": can(request.user, EDIT, term),
            "page": _page(request, selectors.term_fields(term=term, user=request.user)),
        },
    )


@require_http_methods(["GET", "POST"])
def glossary_term_edit(request, slug: str | None = None):
    term = get_object_or_404(GlossaryTerm, slug=slug) if slug else None
    if term is None:
        require(request.user, CREATE_TERM, GlossaryTerm())
    else:
        require(request.user, EDIT, term)
    form = GlossaryTermForm(request.POST or None, instance=term)
    if request.method == "POST" and form.is_valid():
        data = {f: form.cleaned_data[f] for f in form.Meta.fields}
        fresh = GlossaryTerm.objects.get(pk=term.pk) if term else None
        try:
            saved = services.glossary_term_save(term=fresh, by=request.user, **data)
        except ValidationError as e:
            apply_errors(form, e)
        else:
            messages.success(request, f"Saved “{saved}”.")
            return redirect(saved)
    return render(request, "governance/policies/glossary_form.html", {"form": form, "term": term})


def glossary_suggest(request):
    """Autocomplete for a field's term: <option>s for the field's <datalist> (htmx)."""
    query = request.GET.get("term") or request.GET.get("q") or ""
    return render(
        request,
        "governance/policies/_term_options.html",
        {"terms": services.glossary_suggest(query)},
    )


@require_POST
def field_glossary_link(request, domain: str, product: str, field: int):
    """Link or unlink one schema field and a glossary term, from the product's Schema tab.
    htmx gets the field's glossary cell back; a plain form post goes back to the tab."""
    obj = product_selectors.product_get(user=request.user, domain=domain, product=product)
    if obj is None:
        raise Http404("No such data product, or you may not see it.")
    require(request.user, EDIT, obj)
    schema_field = get_object_or_404(
        SchemaField.objects.select_related("port__product", "glossary_term"),
        pk=field,
        port__product=obj,
    )
    ref = "" if request.POST.get("action") == "unlink" else request.POST.get("term", "")
    error = ""
    try:
        term = services.glossary_term_resolve(ref)
        schema_field = services.field_glossary_link(field=schema_field, term=term, by=request.user)
    except ValidationError as e:
        error = " ".join(e.messages)
    if request.htmx:
        return render(
            request,
            "products/_field_glossary.html",
            {
                "f": schema_field,
                "product": obj,
                "can_edit": True,
                "error": error,
                "typed": ref if error else "",
            },
        )  # 200 even with an error: htmx swaps only successful responses
    if error:
        messages.error(request, error)
    elif schema_field.glossary_term_id:
        messages.success(request, f"Linked {schema_field.name} to “{schema_field.glossary_term}”.")
    else:
        messages.success(request, f"Unlinked {schema_field.name} from the glossary.")
    return redirect(obj.get_absolute_url() + "?tab=schema")
