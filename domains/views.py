from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from domains import selectors, services
from domains.forms import MemberForm
from domains.models import Domain, Team
from meshportal import audit
from meshportal.forms import apply_errors
from meshportal.pagination import IdsFirstPaginator
from meshportal.permissions import CREATE_PRODUCT, MANAGE_TEAM, can, require
from products import selectors as product_selectors
from products.discovery import facets as discovery


def home(request):
    return render(request, "domains/home.html", discovery.home(user=request.user))


def domain_detail(request, domain: str):
    obj = selectors.domain_get(slug=domain)
    if obj is None:
        raise Http404("No such domain.")
    page = _products_page(
        request, product_selectors.product_list(user=request.user).filter(domain=obj)
    )
    return render(
        request,
        "domains/domain_detail.html",
        {
            "domain": obj,
            "page": page,
            "children": obj.children.all(),
            "owners": selectors.team_members(team=obj.owner_team),
            "can_create": can(request.user, CREATE_PRODUCT, obj),
            "entries": audit.with_names(audit.entries_for(obj, user=request.user, limit=50)),
        },
    )


def _products_page(request, products):
    """A page of a domain's or team's products by name, read as list rows: on PostgreSQL the
    page's ids by name, then their rows in a statement compiled once, while the total is
    counted beside them (meshportal.beside)."""
    products = products.order_by("name")
    products.query.page_rows = product_selectors.list_page_rows
    paginator = IdsFirstPaginator(products, product_selectors.PAGE_SIZE)
    paginator.prepared()
    paginator.count_beside()
    return product_selectors.as_list_rows(paginator.get_page(request.GET.get("page")))


def _team_context(request, team: Team, form: MemberForm) -> dict:
    # Paged as the domain page is: it showed the first 50 and said nothing of the others.
    products = product_selectors.product_list(user=request.user).filter(owner_team=team)
    return {
        "team": team,
        "members": selectors.team_members(team=team),
        "domains": team.domains.all(),
        "page": _products_page(request, products),
        "can_manage": can(request.user, MANAGE_TEAM, team),
        "entries": selectors.team_activity(team=team, user=request.user),
        "form": form,
    }


def team_detail(request, team: str):
    obj = get_object_or_404(Team, slug=team)
    return render(request, "domains/team_detail.html", _team_context(request, obj, MemberForm()))


@require_http_methods(["POST"])
def team_member_add(request, team: str):
    obj = get_object_or_404(Team, slug=team)
    require(request.user, MANAGE_TEAM, obj)
    form = MemberForm(request.POST)
    if form.is_valid():
        try:
            services.membership_set(
                team=obj, user=form.cleaned_data["username"], role=form.cleaned_data["role"]
            )
        except ValidationError as e:
            apply_errors(form, e)
        else:
            messages.success(
                request,
                f"{form.cleaned_data['username']} is now {form.cleaned_data['role']} of {obj}.",
            )
            return redirect(obj)
    # the page as it was, its products included, with the form's errors next to its fields
    return render(
        request, "domains/team_detail.html", _team_context(request, obj, form), status=400
    )


def _member_or_404(team: Team, user_id: int):
    return get_object_or_404(get_user_model(), pk=user_id, memberships__team=team)


@require_POST
def team_member_role(request, team: str, user_id: int):
    obj = get_object_or_404(Team, slug=team)
    require(request.user, MANAGE_TEAM, obj)
    user = _member_or_404(obj, user_id)
    try:
        services.membership_set(team=obj, user=user, role=request.POST.get("role", ""))
    except ValidationError as e:
        for msg in e.messages:
            messages.error(request, msg)
    else:
        messages.success(request, f"{user} is now {request.POST['role']} of {obj}.")
    return redirect(obj)


@require_POST
def team_member_remove(request, team: str, user_id: int):
    obj = get_object_or_404(Team, slug=team)
    require(request.user, MANAGE_TEAM, obj)
    user = _member_or_404(obj, user_id)
    try:
        services.membership_remove(team=obj, user=user)
    except ValidationError as e:
        for msg in e.messages:
            messages.error(request, msg)
    else:
        messages.success(request, f"Removed {user} from {obj}.")
    return redirect(obj)


def domain_list(request):
    counts = product_selectors.domain_product_counts(user=request.user)
    domains = list(selectors.domain_list())
    for d in domains:
        d.product_count = counts.get(d.pk, 0)
    return render(request, "domains/domain_list.html", {"domains": domains})


__all__ = ["Domain"]
