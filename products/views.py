from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods, require_POST

from domains.models import Domain
from meshportal import audit
from meshportal.forms import apply_errors
from meshportal.pagination import IdsFirstPaginator, StablePaginator
from meshportal.permissions import (
    APPROVE_ACCESS,
    CREATE_PRODUCT,
    DELETE,
    DEPRECATE,
    EDIT,
    PUBLISH,
    REQUEST_ACCESS,
    RETIRE,
    TRANSFER,
    VIEW_CONNECTION,
    can,
    prefetch_product_perms,
    require,
    require_transfer,
    team_roles,
    visible,
)
from meshportal.redirects import safe_next
from meshportal.text import past_tense
from products import basket, connection, extensions, selectors, services, tabs
from products.contracts import services as contracts
from products.discovery import facets as discovery
from products.discovery import search
from products.forms import AccessRequestForm, DecisionForm, DeprecateForm, ProductEditor
from products.lineage.views import lineage_confirm_context
from products.models import AccessRequest, DataProduct, Tag


def _product_or_404(request, domain: str, product: str, *, fields: bool = True) -> DataProduct:
    obj = selectors.product_get(user=request.user, domain=domain, product=product, fields=fields)
    if obj is None:
        raise Http404("No such data product, or you may not see it.")
    return obj


def _paginate(request, qs, size=selectors.PAGE_SIZE, *, ids_first: bool = False, result=None):
    # Ids first when no index gives the order (a search's ranking, trust, newest): the
    # headline and the joined columns are then computed for the page only. A list by name
    # reads its page straight from the name index, where a second query would only add time.
    paginator = IdsFirstPaginator(qs, size) if ids_first else StablePaginator(qs, size)
    if isinstance(paginator, IdsFirstPaginator) and not (result is not None and result.q):
        paginator.prepared()  # no words of a search: a plan that does not depend on the values
    # Counted by the search's facet pass (no COUNT(*) query): while it runs beside the request,
    # the page's rows are read first.
    if result is not None and isinstance(paginator, IdsFirstPaginator) and result.counted.beside:
        paginator.count_later(lambda: result.total, result.estimate)
    elif result is not None and result.total is not None:
        paginator.count = result.total
    return paginator.get_page(request.GET.get("page"))


def _product_page(request, qs, *, ids_first: bool = False, result=None):
    """A page of a product list, its rows read as `selectors.ListRow`s (plain values).
    `result`: the search's (facets.SearchResult), whose facet pass counted the total."""
    if ids_first:
        qs.query.page_rows = selectors.list_page_rows
    return selectors.as_list_rows(_paginate(request, qs, ids_first=ids_first, result=result))


def _search_page(request, *, title: str):
    """Search and the all-products list: one page, facets that narrow each other, sorts.
    An htmx request (search as you type) gets only the results region."""
    result = discovery.search(user=request.user, data=request.GET)
    # Ranked by a search, by trust or newest first, no index gives the order: the page's ids
    # are read first, alone ("Most trusted" sorted 8,500 wide rows, 32 ms, to keep 25 at
    # 10,000 products). Without a query, by name, the rows come straight from the name index,
    # unless the facets are being counted beside: then the page's ids are read meanwhile.
    ids_first = bool(result.q) or not result.by_name or result.counted.beside
    page = _product_page(request, result.queryset, ids_first=ids_first, result=result)
    ctx = {
        "title": title,
        "filter": result.filterset,
        "page": page,
        "q": result.q,
        "sort": result.sort,
        "sorts": discovery.sort_choices(),
        "show_basket": True,
        # the person's own teams' products need no request: no basket button on their rows
        "own_team_ids": set(team_roles(request.user)),
    }
    if not page.object_list and page.number == 1:
        ctx["suggestion"] = search.suggest(result.readable, result.q, spelling=result.spelling)
        ctx["popular"] = discovery.popular(user=request.user, readable=result.readable)
    if result.q and page.number == 1:
        extensions.searched(request, result.q, bool(page.object_list))
    # Last: the facets may still be being counted beside the request, meanwhile the above.
    ctx["facets"] = result.facets
    ctx["active_filters"] = any(f["active"] for f in result.facets)
    ctx["approximate"] = result.approximate  # counts from a sample: "about N"
    partial = request.htmx and not request.htmx.history_restore_request
    response = render(
        request, "products/_search_results.html" if partial else "products/search.html", ctx
    )
    patch_vary_headers(response, ("HX-Request",))
    return response


def search_page(request):
    return _search_page(request, title="Search")


def product_list(request):
    return _search_page(request, title="All products")


def tag_detail(request, tag):
    tag = get_object_or_404(visible(request.user, Tag.objects.all()), slug=tag)
    qs = selectors.product_list(user=request.user).filter(tags=tag).order_by("name")
    return render(
        request, "products/tag_detail.html", {"tag": tag, "page": _product_page(request, qs)}
    )


def product_detail(request, domain: str, product: str):
    tab = tabs.get(request.GET.get("tab", "overview")) or tabs.get("overview")
    obj = _product_or_404(request, domain, product, fields=bool(tab and tab.fields))
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
        "can_clone": can(user, CREATE_PRODUCT, obj.domain),
    }
    if ctx["can_publish"]:
        ctx.update(_publish_gate_context(obj))
    if tab is not None and tab.context:
        ctx.update(tab.context(request, obj))
    if not request.htmx:  # a page load, not a tab's fragment refreshing itself
        extensions.product_viewed(request, obj)
    return render(request, "products/product_detail.html", ctx)


def _publish_gate_context(product) -> dict:
    """The publish checks' verdict, for owners of a draft: shown before they press Publish."""
    gate = services.product_publish_preview(product=product)
    return {"publish_gate": gate, "publish_refused": any(not item.waived for item in gate)}


def _overview_context(request, product):
    return {
        "my_request": selectors.latest_request(user=request.user, product=product),
        "owners": selectors.product_owners(product),
    }


def _access_context(request, product):
    ctx = _overview_context(request, product)
    ctx["consumers"] = selectors.consumers(product=product)
    return ctx


def _activity_context(request, product):
    entries = audit.entries_for(product, user=request.user)
    return {"entries": audit.with_names(connection.hide_in_entries(request.user, product, entries))}


tabs.register_tab(
    tabs.Tab("overview", "Overview", "products/tabs/overview.html", _overview_context, order=10)
)
tabs.register_tab(tabs.Tab("schema", "Schema", "products/tabs/schema.html", order=20, fields=True))
tabs.register_tab(tabs.Tab("ports", "Ports", "products/tabs/ports.html", order=30))
tabs.register_tab(
    tabs.Tab("access", "Access", "products/tabs/access.html", _access_context, order=40)
)
tabs.register_tab(
    tabs.Tab("activity", "Activity", "products/tabs/activity.html", _activity_context, order=90)
)


def _editor_page(request, editor, *, domain, product=None, title, action_url):
    """Validate the whole editor, then save it through one service call (one transaction)."""
    status = 200
    if request.method == "POST" and editor.is_valid():
        data = editor.cleaned()
        team = data.pop("owner_team", None)
        try:
            if product is not None and team is not None and team != product.owner_team:
                require_transfer(request.user, product, team)
            # A breaking change to a published product needs a major version bump here too,
            # as in the API: the error lands on the Version field with what breaks.
            with contracts.enforcing():
                saved = services.product_save_with_ports(
                    product=DataProduct.objects.get(pk=product.pk) if product else None,
                    domain=domain,
                    owner_team=team,
                    by=request.user,
                    **data,
                )
        except ValidationError as e:
            editor.apply_errors(e)
        except PermissionDenied as e:  # the move: 403 and the message the API gives
            editor.product.add_error("owner_team", str(e))
            status = 403
        else:
            messages.success(
                request,
                f"Saved {saved.name}."
                if product
                else f"Created {saved.name} as a draft. Publish it when it is ready.",
            )
            return redirect(saved)
    if request.method == "POST" and status == 200:
        status = 400
    return render(
        request,
        "products/product_form.html",
        {
            "editor": editor,
            "form": editor.product,
            "product": product,
            "domain": domain,
            "title": title,
            "action_url": action_url,
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
def product_create(request, domain: str):
    dom = get_object_or_404(Domain, slug=domain)
    require(request.user, CREATE_PRODUCT, dom)
    editor = ProductEditor(request.POST if request.method == "POST" else None, domain=dom)
    return _editor_page(
        request, editor, domain=dom, title=f"New product in {dom.name}", action_url=request.path
    )


@require_http_methods(["GET"])
def product_clone(request, domain: str, product: str):
    source = _product_or_404(request, domain, product)
    require(request.user, CREATE_PRODUCT, source.domain)
    initial = {
        k: getattr(source, k)
        for k in (
            "summary",
            "description",
            "version",
            "classification",
            "freshness_slo_hours",
            "availability_slo",
        )
    }
    initial.update(
        name=f"{source.name} (copy)",
        slug=f"{source.slug}-copy",
        tags=", ".join(t.name for t in source.tags.all()),
    )
    editor = ProductEditor(
        domain=source.domain, initial=initial, ports=ProductEditor.from_product(source, copy=True)
    )
    return _editor_page(
        request,
        editor,
        domain=source.domain,
        title=f"New product from {source.name}",
        action_url=reverse("products:create", args=[source.domain.slug]),
    )


@require_http_methods(["GET", "POST"])
def product_edit(request, domain: str, product: str):
    obj = _product_or_404(request, domain, product)
    require(request.user, EDIT, obj)
    data = request.POST if request.method == "POST" else None
    editor = ProductEditor(
        data, domain=obj.domain, instance=obj, ports=ProductEditor.from_product(obj)
    )
    if not can(request.user, TRANSFER, obj):
        # Shown, not sent: the browser leaves it out; a hand-made post still meets the rule.
        editor.product.fields["owner_team"].widget.attrs["disabled"] = True
    return _editor_page(
        request,
        editor,
        domain=obj.domain,
        product=obj,
        title=f"Edit {obj.name}",
        action_url=request.path,
    )


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
    form = (
        DeprecateForm(
            request.POST if request.method == "POST" else None, product=obj, user=request.user
        )
        if action == "deprecate"
        else None
    )
    if request.method == "POST" and (form is None or form.is_valid()):
        fresh = DataProduct.objects.get(pk=obj.pk)
        try:
            if action == "publish":
                services.product_publish(product=fresh)
            elif action == "deprecate":
                services.product_deprecate(product=fresh, **(form.cleaned_data if form else {}))
            elif action == "retire":
                services.product_retire(
                    product=fresh, by=request.user, force=request.POST.get("force") == "1"
                )
            else:
                services.product_delete(product=fresh)
                messages.success(request, f"Deleted {obj.name}.")
                return redirect(obj.domain)
        except ValidationError as e:
            for msg in e.messages:
                messages.error(request, msg)
        else:
            messages.success(
                request,
                f"{past_tense(label)} {obj.name}.",
            )
            return redirect(fresh)
    return render(
        request,
        "products/product_confirm.html",
        {
            "product": obj,
            "action": action,
            "label": label,
            "consequence": consequence,
            "form": form,
            **lineage_confirm_context(request, obj, action),
            **(_publish_gate_context(obj) if action == "publish" else {}),
        },
    )


@require_http_methods(["GET", "POST"])
def access_request_create(request, domain: str, product: str):
    obj = _product_or_404(request, domain, product)
    form = AccessRequestForm(request.POST if request.method == "POST" else None, user=request.user)
    if not can(request.user, REQUEST_ACCESS, obj):
        messages.info(
            request, f"You already have access to {obj.name}, or it is not open for requests."
        )
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


@require_http_methods(["GET"])
def product_suggest(request):
    """The product picker: <option>s for its <datalist>, matching what is typed (htmx), only
    live products the user may see (selectors.product_suggest: never a draft)."""
    query = request.GET.get("q") or request.GET.get("replacement") or ""
    return render(
        request,
        "products/_product_options.html",
        {"products": selectors.product_suggest(user=request.user, query=query)},
    )


@require_http_methods(["GET"])
def data_source_suggest(request, domain: str, product: str | None = None):
    """The product form's data-source picker: <option>s for its <datalist>, matching what is
    typed (htmx sends the port's input, ports-<n>-data_source), among the sources open to the
    product's team (selectors.data_source_suggest) — for those who may edit that form only."""
    if product is None:
        dom = get_object_or_404(Domain, slug=domain)
        require(request.user, CREATE_PRODUCT, dom)
        team_id = dom.owner_team_id
    else:
        obj = _product_or_404(request, domain, product, fields=False)
        require(request.user, EDIT, obj)
        team_id = obj.owner_team_id
    typed = [v for k, v in request.GET.items() if k == "q" or k.endswith("data_source")]
    return render(
        request,
        "products/_data_source_options.html",
        {"sources": selectors.data_source_suggest(team_id=team_id, query=" ".join(typed))},
    )


@require_POST
def basket_add(request):
    """Put a product in the request basket (from search results or its page)."""
    try:
        pk = int(request.POST.get("product", ""))
    except ValueError:
        raise Http404("No such data product, or you may not see it.") from None
    obj = get_object_or_404(
        visible(request.user, DataProduct.objects.select_related("domain")), pk=pk
    )
    if not can(request.user, REQUEST_ACCESS, obj):
        messages.info(
            request, f"You already have access to {obj.name}, or it is not open for requests."
        )
    elif basket.add(request.session, obj.pk):
        messages.success(request, f"Added {obj.name} to your request basket.")
    else:
        messages.info(request, f"{obj.name} is already in your request basket.")
    return redirect(safe_next(request, request.POST.get("next"), obj.get_absolute_url()))


@require_POST
def basket_remove(request):
    try:
        basket.remove(request.session, int(request.POST.get("product", "")))
    except ValueError:
        pass
    return redirect("products:basket")


@require_http_methods(["GET", "POST"])
def basket_page(request):
    """The basket: what is in it, and one form (purpose, duration, team) that requests them all
    at once through the one service; each product's owners decide their part in their inbox."""
    items = list(basket.products(request.session, user=request.user))
    form = AccessRequestForm(request.POST if request.method == "POST" else None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            made = services.access_requests_create(
                products=items, requester=request.user, **form.cleaned_data
            )
        except ValidationError as e:
            apply_errors(form, e)
        else:
            basket.clear(request.session)
            messages.success(
                request,
                f"Requested access to {len(made)} product{'s' if len(made) != 1 else ''}. "
                "Each product's owners have been told.",
            )
            return redirect("products:my_requests")
    return render(request, "products/basket.html", {"items": items, "form": form})


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
    try:  # the service asks the one rule: 403 for someone who may not decide, as the API
        if form.cleaned_data["decision"] == "approve":
            services.access_request_approve(
                request=req, by=request.user, comment=form.cleaned_data["comment"]
            )
            messages.success(request, f"Approved {req.requester} for {req.product}.")
        else:
            services.access_request_deny(
                request=req, by=request.user, comment=form.cleaned_data["comment"]
            )
            messages.success(request, f"Denied {req.requester} for {req.product}.")
    except ValidationError as e:
        for msg in e.messages:
            messages.error(request, msg)
    return redirect("products:inbox")


@require_POST
def access_grant_revoke(request, pk: int):
    req = _visible_request_or_404(request, pk)
    try:
        services.access_grant_revoke(
            request=req, by=request.user, comment=request.POST.get("comment", "")
        )
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
