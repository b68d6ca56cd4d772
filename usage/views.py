"""Usage pages: the product page's Usage tab is declared in apps.py; here the owners' action
"ask them to request access", and the platform team's portal analytics."""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from products import selectors as product_selectors
from usage import services
from usage.analytics import portal_analytics
from usage.permissions import may_see_analytics


@require_POST
def ask_to_request(request, domain: str, product: str):
    obj = product_selectors.product_get(user=request.user, domain=domain, product=product)
    if obj is None:
        raise Http404("No such data product, or you may not see it.")
    principal = request.POST.get("principal", "")
    try:
        told = services.consumer_ask_to_request(product=obj, principal=principal, by=request.user)
    except ValidationError as e:
        messages.error(request, " ".join(e.messages))
    else:
        messages.success(
            request,
            f"Asked {principal} to request access ({told} {'person' if told == 1 else 'people'} told).",
        )
    return redirect(obj.get_absolute_url() + "?tab=usage")


def analytics(request):
    """Portal analytics: the platform team's page."""
    if not may_see_analytics(request.user):
        raise PermissionDenied("Portal analytics are the platform team's.")
    return render(
        request,
        "usage/analytics.html",
        {**portal_analytics(), "retention_days": settings.MESH_ANALYTICS_RETENTION_DAYS},
    )
