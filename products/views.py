from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from meshportal import audit
from meshportal.forms import apply_errors
from meshportal.permissions import (
    APPROVE_ACCESS,
    DECIDE,
    DELETE,
    DEPRECATE,
    EDIT,
    PUBLISH,
    REQUEST_ACCESS,
    RETIRE,
    VIEW_CONNECTION,
    can,
    prefetch_product_perms,
    require,
    visible,
)

from . import selectors, services, tabs
from .filters import DataProductFilter
from .forms import AccessRequestForm, DecisionForm, DeprecateForm, ProductForm
from .lineage_views import lineage_confirm_context
from .models import AccessRequest, DataProduct, Tag

PAGE_SIZE = 25


def _product_or_404(request, domain: str, product: str) -> DataProduct:
    obj = selectors.product_get(user=request.user, domain=domain, product=product)
    if obj is None:
        raise Http404("No such data product, or you may not see it.")
    return obj


def _paginate(request, qs, size=PAGE_SIZE):
    return Paginator(qs, size).get_page(request.GET.get("page"))


def product_list(request):
    qs = selectors.product_list(user=request.user)
    f = DataProductFilter(request.GET or None, queryset=qs)
    page = _paginate(request, f.qs.order_by("name"))
    return render(request, "products/product_list.html", {"filter": f, "page": page})


def tag_detail(request, tag):
    tag = get_object_or_404(Tag, slug=tag)
    qs = selectors.product_list(user=request.user).filter(tags=tag).order_by("name")
    return render(request, "products/tag_detail.html", {"tag": tag, "page": _paginate(request, qs)})


def product_detail(request, domain: str, product: str):
    obj = _product_or_404(request, domain, product)
    tab = tabs.get(request.GET.get("tab", "overview")) or tabs.get("overview")
    user = request.user
    ctx = {
        "product": obj,
        "tabs": tabs.tabs(),
        "tab": tab,
        "can_edit": can(user, EDIT, obj),
        "can_publish": can(user, PUBLISH, obj),
        "can_deprecate": can(user, DEPRECATE, obj),
        "can_retire": can(user, RETIRE, obj),
        "can_delete": can(user, DELETE, obj),
        "can_connect": can(user, VIEW_CONNECTION, obj),
        "can_request": can(user, REQUEST_ACCESS, obj),
        "can_approve": can(user, APPROVE_ACCESS, obj),
    }
    if tab is not None and tab.context:
        ctx.update(tab.context(request, obj))
    return render(request, "products/product_detail.html", ctx)


def _overview_context(request, product):
    return {"my_request": AccessRequest.objects.filter(
        product=product, requester=request.user).order_by("-created_at").first()}


def _access_context(request, product):
    ctx = _overview_context(request, product)
    ctx["consumers"] = selectors.consumers(product=product)
    return ctx


def _activity_context(request, product):
    return {"entries": audit.entries_for(product)[:100]}


tabs.register_tab(tabs.Tab("overview", "Overview", "products/tabs/overview.html",
                           _overview_context, order=10))
tabs.register_tab(tabs.Tab("schema", "Schema", "products/tabs/schema.html", order=20))
tabs.register_tab(tabs.Tab("ports", "Ports", "products/tabs/ports.html", order=30))
tabs.register_tab(tabs.Tab("access", "Access", "products/tabs/access.html",
                           _access_context, order=40))
tabs.register_tab(tabs.Tab("activity", "Activity", "products/tabs/activity.html",
                           _activity_context, order=90))


@require_http_methods(["GET", "POST"])
def product_edit(request, domain: str, product: str):
    obj = _product_or_404(request, domain, product)
    require(request.user, EDIT, obj)
    form = ProductForm(request.POST if request.method == "POST" else None, instance=obj)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        tag_names = data.pop("tags")
        fresh = DataProduct.objects.get(pk=obj.pk)
        try:
            services.product_update(product=fresh, tags=tag_names, **data)
        except ValidationError as e:
            apply_errors(form, e)
        else:
            messages.success(request, f"Saved {fresh.name}.")
            return redirect(fresh)
    return render(request, "products/product_form.html", {"form": form, "product": obj})


LIFECYCLE = {
    "publish": (PUBLISH, "Publish", "Everyone in the company will be able to find it."),
    "deprecate": (DEPRECATE, "Deprecate", "Consumers will be told to move away from it."),
    "retire": (RETIRE, "Retire", "It will no longer be available to consumers."),
    "delete": (DELETE, "Delete", "It and its ports and fields are deleted for good."),
}


@require_http_methods(["GET", "POST"])
def product_lifecycle(request, domain: str, product: str, action: str):
    if action not in LIFECYCLE:
        raise Http404
    obj = _product_or_404(request, domain, product)
    perm, label, consequence = LIFECYCLE[action]
    require(request.user, perm, obj)
    form = DeprecateForm(request.POST if request.method == "POST" else None, product=obj, user=request.user) \
        if action == "deprecate" else None
    if request.method == "POST" and (form is None or form.is_valid()):
        fresh = DataProduct.objects.get(pk=obj.pk)
        try:
            if action == "publish":
                services.product_publish(product=fresh)
            elif action == "deprecate":
                services.product_deprecate(product=fresh, **(form.cleaned_data if form else {}))
            elif action == "retire":
                services.product_retire(product=fresh, by=request.user,
                                        force=request.POST.get("force") == "1")
            else:
                services.product_delete(product=fresh)
                messages.success(request, f"Deleted {obj.name}.")
                return redirect(obj.domain)
        except ValidationError as e:
            for msg in e.messages:
                messages.error(request, msg)
        else:
            messages.success(request, f"{label}d {obj.name}." if label.endswith("e")
                             else f"{label}ed {obj.name}.")
            return redirect(fresh)
    return render(request, "products/product_confirm.html", {
        "product": obj, "action": action, "label": label, "consequence": consequence,
        "form": form, **lineage_confirm_context(request, obj, action)})


@require_http_methods(["GET", "POST"])
def access_request_create(request, domain: str, product: str):
    obj = _product_or_404(request, domain, product)
    form = AccessRequestForm(request.POST if request.method == "POST" else None, user=request.user)
    if not can(request.user, REQUEST_ACCESS, obj):
        messages.info(request, f"You already have access to {obj.name}, or it is not open for requests.")
        return redirect(obj)
    if request.method == "POST" and form.is_valid():
        try:
            services.access_request_create(product=obj, requester=request.user, **form.cleaned_data)
        except ValidationError as e:
            apply_errors(form, e)
        else:
            messages.success(request, f"Requested access to {obj.name}. Its owners have been told.")
            return redirect("products:my_requests")
    return render(request, "products/access_request_form.html", {"form": form, "product": obj})


def inbox(request):
    page = _paginate(request, selectors.inbox(user=request.user))
    return render(request, "products/inbox.html", {"page": page, "form": DecisionForm()})


def my_requests(request):
    page = _paginate(request, selectors.my_requests(user=request.user))
    return render(request, "products/my_requests.html", {"page": page})


def _visible_request_or_404(request, pk: int) -> AccessRequest:
    qs = visible(request.user, AccessRequest.objects.select_related("product__domain", "requester"))
    return get_object_or_404(qs, pk=pk)


@require_POST
def access_request_decide(request, pk: int):
    req = _visible_request_or_404(request, pk)
    prefetch_product_perms(request.user, [req.product])
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose approve or deny.")
        return redirect("products:inbox")
    if req.requester_id != request.user.pk and req.status == "pending":
        require(request.user, DECIDE, req)
    try:
        if form.cleaned_data["decision"] == "approve":
            services.access_request_approve(request=req, by=request.user,
                                            comment=form.cleaned_data["comment"])
            messages.success(request, f"Approved {req.requester} for {req.product}.")
        else:
            services.access_request_deny(request=req, by=request.user,
                                         comment=form.cleaned_data["comment"])
            messages.success(request, f"Denied {req.requester} for {req.product}.")
    except ValidationError as e:
        for msg in e.messages:
            messages.error(request, msg)
    return redirect("products:inbox")


@require_POST
def access_grant_revoke(request, pk: int):
    req = _visible_request_or_404(request, pk)
    require(request.user, APPROVE_ACCESS, req.product)
    try:
        services.access_grant_revoke(request=req, by=request.user,
                                     comment=request.POST.get("comment", ""))
    except ValidationError as e:
        for msg in e.messages:
            messages.error(request, msg)
    else:
        messages.success(request, f"Revoked {req.requester}'s access to {req.product}.")
    return redirect(f"{req.product.get_absolute_url()}?tab=access")


@require_POST
def access_request_withdraw(request, pk: int):
    req = _visible_request_or_404(request, pk)
    try:
        services.access_request_withdraw(request=req, by=request.user)
    except ValidationError as e:
        for msg in e.messages:
            messages.error(request, msg)
    else:
        messages.success(request, f"Withdrew your request for {req.product}.")
    return redirect("products:my_requests")
