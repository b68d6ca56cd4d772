"""Pages and JSON endpoints for lineage, impact, watching and notification preferences."""

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse, reverse_lazy
from django.views.decorators.http import require_http_methods, require_POST

from domains.models import Domain
from meshportal.forms import SuggestInput, apply_errors
from meshportal.notifications import SUBSCRIPTION_KINDS, preferences_get, preferences_set
from meshportal.permissions import EDIT, can, require, visible
from meshportal.redirects import safe_next
from products import extensions, selectors, tabs
from products.lineage import graph as lineage
from products.lineage import services as lineage_services
from products.models import DataProduct, InputPort, OutputPort


def _product_or_404(request, domain: str, product: str) -> DataProduct:
    obj = selectors.product_get(user=request.user, domain=domain, product=product)
    if obj is None:
        raise Http404("No such data product, or you may not see it.")
    return obj


def _depth(request) -> int:
    try:
        return max(1, min(int(request.GET.get("depth", lineage.DEFAULT_DEPTH)), lineage.MAX_DEPTH))
    except ValueError:
        return lineage.DEFAULT_DEPTH


def _observed(request) -> bool:
    """`?observed=1`: add the edges seen in the query logs to the declared ones."""
    return request.GET.get("observed", "") in ("1", "on", "true")


class InputPortForm(forms.Form):
    source = forms.CharField(
        required=False,
        label="Output port of another product",
        help_text="Type part of a domain, product or port name and pick from the list "
        "(domain/product/port, e.g. orders/orders/orders).",
        widget=SuggestInput(url=reverse_lazy("lineage:port_suggest"), list_id="lineage-ports"),
    )
    external_name = forms.CharField(required=False, max_length=200, label="…or an external source")
    external_kind = forms.ChoiceField(
        required=False,
        label="External source kind",
        choices=[("", "—")] + InputPort.ExternalKind.choices,
    )
    description = forms.CharField(required=False, max_length=300)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_source(self):
        raw = self.cleaned_data["source"].strip().strip("/")
        if not raw:
            return None
        parts = raw.split("/")
        if len(parts) != 3:
            raise ValidationError("Write domain/product/port, e.g. orders/orders/orders.")
        port = (
            visible(self.user, OutputPort.objects.select_related("product__domain"))
            .filter(product__domain__slug=parts[0], product__slug=parts[1], slug=parts[2])
            .first()
        )
        if port is None:
            raise ValidationError(f"No output port {raw} that you may see.")
        return port


def _port_choices(user, query: str = ""):
    return selectors.port_suggest(user=user, query=query)


def port_suggest(request):
    """The input form's port picker: <option>s for its <datalist>, matching what is typed
    (htmx), only ports the user may see."""
    query = request.GET.get("source") or request.GET.get("q") or ""
    return render(
        request,
        "products/lineage/_port_options.html",
        {"port_choices": _port_choices(request.user, query)},
    )


def lineage_context(request, product: DataProduct) -> dict:
    """Context of the product page's Lineage tab."""
    user = request.user
    inputs = list(product.input_ports.select_related("source_product__domain", "source_port"))
    sources = [i.source_product for i in inputs if i.source_product is not None]
    seen = lineage.seen_among(user, sources)
    consumers = list(
        InputPort.objects.filter(source_product=product).select_related(
            "product__domain", "product__owner_team", "source_port"
        )
    )
    shown = lineage.seen_among(user, [i.product for i in consumers])
    # A product the user may not see is not there: neither listed nor counted. Its own team
    # keeps the inputs it declared from a source it can no longer see, to remove them.
    may_edit = can(user, EDIT, product)
    ports = list(product.ports.all())
    port = next((p for p in ports if p.slug == request.GET.get("port")), None)
    params = {"port": port.slug} if port else {}
    if _observed(request):
        params["observed"] = "1"
    query = urlencode(params)
    impact_url = reverse("lineage:impact_html", args=[product.domain.slug, product.slug])
    return {
        "ports": ports,
        "impact_port": port,
        "impact_observed": _observed(request),
        "impact_url": f"{impact_url}?{query}" if query else impact_url,
        "inputs": [
            (i, visible_source)
            for i in inputs
            if (visible_source := i.source_product_id is None or i.source_product_id in seen)
            or may_edit
        ],
        "consumed_by": [i for i in consumers if i.product_id in shown],
        "depth": _depth(request),
        "depths": range(1, lineage.MAX_DEPTH + 1),
        **lineage_services.watch_counts(user, product=product),
        "input_form": InputPortForm(user=user),
        # Sections other apps add (usage: observed lineage), {"template": ..., **context} each.
        "extra_sections": extensions.lineage_sections(request, product),
    }


tabs.register_tab(
    tabs.Tab("lineage", "Lineage", "products/lineage/tab.html", lineage_context, order=70)
)


def graph_json(request, domain: str, product: str):
    obj = _product_or_404(request, domain, product)
    return JsonResponse(
        lineage.product_graph(
            user=request.user, product=obj, depth=_depth(request), observed=_observed(request)
        )
    )


def _impact(request, domain: str, product: str) -> tuple[DataProduct, lineage.Impact]:
    obj = _product_or_404(request, domain, product)
    port = field = None
    if request.GET.get("port"):
        port = get_object_or_404(obj.ports, slug=request.GET["port"])
        if request.GET.get("field"):
            field = get_object_or_404(port.fields, name=request.GET["field"])
    return obj, lineage.impact(
        user=request.user, product=obj, port=port, field=field, observed=_observed(request)
    )


def impact_json(request, domain: str, product: str):
    return JsonResponse(_impact(request, domain, product)[1].as_json())


def impact_html(request, domain: str, product: str):
    """The Lineage tab's impact table, fetched after the tab renders: a transitive walk can
    reach thousands of products, and the tab itself stays within its query budget."""
    obj, result = _impact(request, domain, product)
    template = "impact.html" if request.htmx else "impact_page.html"  # a page without JavaScript
    return render(
        request,
        f"products/lineage/{template}",
        {"product": obj, "impact": result, "impact_toggle": not request.htmx},
    )


def _lineage_tab(product: DataProduct):
    return redirect(f"{product.get_absolute_url()}?tab=lineage")


@require_http_methods(["GET", "POST"])
def input_add(request, domain: str, product: str):
    obj = _product_or_404(request, domain, product)
    require(request.user, EDIT, obj)
    form = InputPortForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            inp = lineage_services.input_port_create(
                product=obj,
                by=request.user,
                source_port=data["source"],
                external_name=data["external_name"],
                external_kind=data["external_kind"],
                description=data["description"],
            )
        except ValidationError as e:
            apply_errors(
                form,
                ValidationError(
                    {("source" if k == "source_port" else k): v for k, v in e.message_dict.items()}
                    if hasattr(e, "error_dict")
                    else e.messages
                ),
            )
        else:
            if inp.approved or inp.source_product is None:  # external inputs need no approval
                messages.success(
                    request, f"{obj.name} now consumes {inp.source_port or inp.external_name}."
                )
            else:
                messages.warning(
                    request,
                    (
                        f"Declared, but marked unapproved: {inp.source_product} is "
                        f"{inp.source_product.get_classification_display().lower()} and you have no "
                        "approved access to it. Request access: the input counts once it is approved."
                    ),
                )
            return _lineage_tab(obj)
    return render(
        request,
        "products/lineage/input_form.html",
        {"product": obj, "form": form},
    )


@require_POST
def input_delete(request, domain: str, product: str, pk: int):
    obj = _product_or_404(request, domain, product)
    require(request.user, EDIT, obj)
    inp = get_object_or_404(InputPort, pk=pk, product=obj)
    lineage_services.input_port_delete(input_port=inp, by=request.user)
    messages.success(request, "Input removed.")
    return _lineage_tab(obj)


@require_POST
def product_watch(request, domain: str, product: str):
    obj = _product_or_404(request, domain, product)
    on = request.POST.get("on") == "1"
    lineage_services.watch_set(user=request.user, product=obj, on=on)
    messages.success(request, f"{'Watching' if on else 'Stopped watching'} {obj.name}.")
    return redirect(safe_next(request, request.POST.get("next"), obj.get_absolute_url()))


@require_POST
def domain_watch(request, domain: str):
    obj = get_object_or_404(Domain, slug=domain)
    on = request.POST.get("on") == "1"
    lineage_services.watch_set(user=request.user, domain=obj, on=on)
    messages.success(request, f"{'Watching' if on else 'Stopped watching'} the {obj.name} domain.")
    return redirect(safe_next(request, request.POST.get("next"), obj.get_absolute_url()))


def mesh_map(request):
    """The map (drawn from mesh.json) and the same dependencies as a table, its text
    alternative; `?observed=1` adds those seen in the query logs but not declared."""
    observed = _observed(request)
    data = lineage.mesh_map(user=request.user, observed=observed)
    return render(
        request,
        "products/lineage/mesh.html",
        {"observed": observed, "dependencies": lineage.mesh_dependencies(data)},
    )


def mesh_json(request):
    return JsonResponse(lineage.mesh_map(user=request.user, observed=_observed(request)))


@require_http_methods(["GET", "POST"])
def notification_preferences(request):
    if request.method == "POST":
        preferences_set(
            user=request.user,
            email_kinds={k for k in SUBSCRIPTION_KINDS if request.POST.get(k) == "on"},
        )
        messages.success(request, "Saved your notification preferences.")
        return redirect("lineage:preferences")
    wanted = preferences_get(user=request.user)
    return render(
        request,
        "products/lineage/preferences.html",
        {
            "kinds": [(k, label, wanted[k]) for k, label in SUBSCRIPTION_KINDS.items()],
            "watches": request.user.watches.select_related("product__domain", "domain"),
        },
    )


def lineage_confirm_context(request, product: DataProduct, action: str) -> dict:
    """What the deprecate/retire confirm pages show: the impact, and what blocks retirement."""
    if action not in ("deprecate", "retire"):
        return {}
    from meshportal.permissions import is_platform

    ctx: dict[str, Any] = {
        "impact": lineage.impact(user=request.user, product=product, observed=_observed(request)),
        "impact_toggle": True,  # the page offers "include observed dependencies"
    }
    if action == "retire":
        ctx["blockers"] = lineage_services.retirement_blockers(product)
        ctx["can_force"] = is_platform(request.user)
    return ctx
