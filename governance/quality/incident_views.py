"""Incident pages: the mesh-wide list, one incident with its timeline, and the team's
acknowledge / resolve forms. Thin: rules live in quality.incidents and the permission model."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from governance.filters import IncidentFilter
from governance.models import Incident
from governance.quality import incidents, selectors
from governance.quality.permissions import ACKNOWLEDGE, RESOLVE
from meshportal.pagination import StablePaginator
from meshportal.permissions import VIEW, can, require

PAGE_SIZE = 25
STATUS_TABS = [
    ("", "All"),
    ("open", "Open"),
    ("acknowledged", "Acknowledged"),
    ("resolved", "Resolved"),
]


def incident_list(request):
    qs = selectors.incidents_visible(user=request.user)
    status = request.GET.get("status", "")
    if status not in {s for s, _ in STATUS_TABS}:
        status = ""
    domain = request.GET.get("domain", "")
    data: dict = {"status": [status]} if status else {}
    if domain:
        data["domain"] = domain
    filtered = IncidentFilter(data, queryset=qs, request=request)
    page = StablePaginator(filtered.qs, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "governance/quality/incidents.html",
        {"page": page, "status": status, "status_tabs": STATUS_TABS, "domain": domain},
    )


def _incident_or_404(request, pk) -> Incident:
    return get_object_or_404(selectors.incidents_visible(user=request.user), pk=pk)


def incident_detail(request, pk: int):
    incident = _incident_or_404(request, pk)
    require(request.user, VIEW, incident)
    return render(
        request,
        "governance/quality/incident_detail.html",
        {
            "incident": incident,
            "product": incident.product,
            "timeline": selectors.incident_timeline(incident=incident),
            "can_act": can(request.user, RESOLVE, incident),
        },
    )


def _back(request, incident):
    target = request.POST.get("next", "")
    if target == "tab":
        return redirect(f"{incident.product.get_absolute_url()}?tab=quality")
    return redirect("governance:incident", pk=incident.pk)


@require_POST
def incident_acknowledge(request, pk: int):
    incident = _incident_or_404(request, pk)
    require(request.user, ACKNOWLEDGE, incident)
    try:
        incidents.incident_acknowledge(
            incident=incident, by=request.user, note=request.POST.get("note", "")
        )
    except ValidationError as e:
        messages.error(request, " ".join(e.messages))
    else:
        messages.success(request, "Acknowledged: the team is on it.")
    return _back(request, incident)


@require_POST
def incident_resolve(request, pk: int):
    incident = _incident_or_404(request, pk)
    require(request.user, RESOLVE, incident)
    try:
        incidents.incident_resolve(
            incident=incident, by=request.user, note=request.POST.get("note", "")
        )
    except ValidationError as e:
        messages.error(request, " ".join(e.messages))
    else:
        messages.success(request, "Resolved.")
    return _back(request, incident)
