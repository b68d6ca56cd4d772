"""Data sources in the portal, for platform staff: the list, add, edit and "test connection"
(the same read-only connection the runs use). Anyone else gets 403. Thin: the rules are
DataSource.clean and quality_services.data_source_save's."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from governance.models import DataSource
from governance.quality import engine, services
from governance.quality.forms import DataSourceForm
from meshportal.forms import apply_errors
from meshportal.permissions import is_platform


def _platform_only(request) -> None:
    if not is_platform(request.user):
        raise PermissionDenied("Only the platform team manages data sources.")


def _save(request, form, source) -> bool:
    if not form.is_valid():
        return False
    try:
        services.data_source_save(
            source=form.instance, by=request.user, teams=form.cleaned_data.get("teams")
        )
    except ValidationError as e:
        apply_errors(form, e)
        return False
    return True


@require_http_methods(["GET", "POST"])
def data_sources(request):
    _platform_only(request)
    form = DataSourceForm(request.POST or None)
    if request.method == "POST" and _save(request, form, None):
        messages.success(request, f"Data source {form.instance} added.")
        return redirect("governance:data_sources")
    return render(
        request,
        "governance/sources/list.html",
        {
            "sources": DataSource.objects.order_by("name").prefetch_related("teams"),
            "form": form,
        },
        status=400 if form.errors else 200,
    )


@require_http_methods(["GET", "POST"])
def data_source_edit(request, pk: int):
    _platform_only(request)
    source = get_object_or_404(DataSource, pk=pk)
    form = DataSourceForm(request.POST or None, instance=source)
    if request.method == "POST" and _save(request, form, source):
        messages.success(request, f"Data source {source} saved.")
        return redirect("governance:data_sources")
    return render(
        request,
        "governance/sources/edit.html",
        {"source": source, "form": form},
        status=400 if form.errors else 200,
    )


@require_POST
def data_source_test(request, pk: int):
    _platform_only(request)
    source = get_object_or_404(DataSource, pk=pk)
    try:
        messages.success(request, f"{source}: {engine.test_connection(source)}")
    except engine.EngineError as e:
        messages.error(request, f"{source}: {e}")
    return redirect("governance:data_sources")
