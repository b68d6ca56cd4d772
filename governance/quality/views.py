"""Quality pages: the product's Quality tab, defining/running/deleting checks, and the
mesh-wide page of failing checks. Thin: rules live in quality_services and permissions."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from governance.models import QualityCheck
from governance.quality import odcs, selectors, services
from governance.quality.forms import CheckForm
from meshportal import queue
from meshportal.permissions import EDIT, VIEW, can, require, visible
from products import selectors as product_selectors
from products import tabs
from products.connection import hide_in_runs
from products.contracts import services as contracts


def _product_or_404(request, domain, product):
    obj = product_selectors.product_get(user=request.user, domain=domain, product=product)
    if obj is None:
        raise Http404("No such data product, or you may not see it.")
    return obj


def _checkable_ports(product):
    return product.ports.filter(data_source__isnull=False).order_by("slug")


def quality_tab_context(request, product) -> dict:
    checks = selectors.product_checks(product=product)
    can_edit = can(request.user, EDIT, product)
    # `recent` is a to_attr prefetch (quality_selectors.product_checks), unknown to mypy
    hide_in_runs(request.user, product, [r for c in checks for r in c.recent])  # type: ignore[attr-defined]
    return {
        "checks": checks,
        "quality_state": selectors.product_state(product=product),
        # Open incidents first; the team acknowledges and resolves them here (incident_views).
        "incidents": selectors.product_incidents(user=request.user, product=product),
        "trust_formula": services.TRUST_FORMULA,
        "chart": selectors.daily_chart(product=product),
        "can_edit_checks": can_edit,
        "check_form": CheckForm(ports=_checkable_ports(product)) if can_edit else None,
        # The contract's quality rules the portal keeps but does not run (odcs.py).
        "documented_rules": odcs.documented_rules(product, contracts.current_extras(product)),
        # `recent` is a to_attr prefetch (quality_selectors.product_checks), unknown to mypy
        "any_active": any(
            c.recent and c.recent[0].status in ("queued", "running")  # type: ignore[attr-defined]
            for c in checks
        ),
    }


tabs.register_tab(
    tabs.Tab("quality", "Quality", "governance/quality/tab.html", quality_tab_context, order=50)
)


def _tab_url(product) -> str:
    return f"{product.get_absolute_url()}?tab=quality"


@require_GET
def trust_help(request):
    """How the trust score is computed (docs/quality.md "Freshness SLO and trust"), with the
    weights the portal uses now."""
    return render(
        request,
        "governance/quality/trust_help.html",
        {"weights": services.TRUST_WEIGHTS, "formula": services.TRUST_FORMULA},
    )


@require_http_methods(["GET", "POST"])
def check_create(request, domain: str, product: str):
    obj = _product_or_404(request, domain, product)
    require(request.user, EDIT, obj)
    ports = _checkable_ports(obj)
    if request.method == "POST" and "choose" not in request.POST:
        form = CheckForm(request.POST, ports=ports)
    else:
        # Step one (or the type changed: htmx asks again with the values typed so far): the
        # form for the chosen type, unbound so nothing is flagged as missing yet.
        source = request.POST if request.method == "POST" else request.GET
        form = CheckForm(
            initial={k: v for k, v in source.items() if k != "csrfmiddlewaretoken"}, ports=ports
        )
    if form.is_bound and form.complete and form.is_valid():
        try:
            check = services.check_create(by=request.user, **form.service_kwargs())
        except ValidationError as e:
            form.add_service_errors(e)
        else:
            messages.success(request, f"Added the check “{check.name}”; its first run is queued.")
            services.run_now(checks=[check], by=request.user)
            return redirect(_tab_url(obj))
    return render(request, "governance/quality/check_form.html", {"form": form, "product": obj})


def _check_or_404(request, pk) -> QualityCheck:
    qs = visible(request.user, QualityCheck.objects.select_related("port__product__domain"))
    return get_object_or_404(qs, pk=pk)


@require_POST
def check_run(request, pk: int):
    check = _check_or_404(request, pk)
    require(request.user, EDIT, check)
    runs = services.run_now(checks=[check], by=request.user)
    if runs:
        queue.tell(request, f"“{check.name}” is queued; the result appears here shortly.")
    else:
        messages.info(request, f"“{check.name}” is already queued or running.")
    return redirect(_tab_url(check.port.product))


@require_POST
def product_run(request, domain: str, product: str):
    obj = _product_or_404(request, domain, product)
    require(request.user, EDIT, obj)
    checks = QualityCheck.objects.filter(port__product=obj, enabled=True).select_related("port")
    runs = services.run_now(checks=checks, by=request.user)
    queue.tell(request, f"Queued {len(runs)} checks; results appear here shortly.")
    return redirect(_tab_url(obj))


@require_http_methods(["GET", "POST"])
def check_delete(request, pk: int):
    """GET asks for confirmation (a page of its own, so it works without JavaScript); POST
    deletes."""
    check = _check_or_404(request, pk)
    require(request.user, EDIT, check)
    product = check.port.product
    if request.method == "GET":
        return render(
            request,
            "governance/quality/check_confirm_delete.html",
            {"check": check, "product": product, "runs": check.runs.count()},
        )
    services.check_delete(check=check, by=request.user)
    messages.success(request, f"Deleted the check “{check.name}”.")
    return redirect(_tab_url(product))


def check_detail(request, pk: int):
    check = _check_or_404(request, pk)
    require(request.user, VIEW, check)
    runs = hide_in_runs(request.user, check.port.product, check.runs.all()[:100])
    return render(
        request,
        "governance/quality/check_detail.html",
        {
            "check": check,
            "product": check.port.product,
            "runs": runs,
            "can_edit_checks": can(request.user, EDIT, check),
        },
    )


def quality_overview(request):
    return render(
        request,
        "governance/quality/overview.html",
        {"groups": selectors.failing_by_domain(user=request.user)},
    )
