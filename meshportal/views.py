import sys

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponsePermanentRedirect, HttpResponseServerError, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from meshportal import cache as portal_cache
from meshportal import health
from meshportal.middleware import DATABASE_ERRORS, database_unavailable_response
from meshportal.redirects import SafeNextMixin


class LoginView(SafeNextMixin, auth_views.LoginView):
    pass


class LogoutView(SafeNextMixin, auth_views.LogoutView):
    pass


def notifications(request):
    items = request.user.notifications.all()[:100]
    return render(request, "meshportal/notifications.html", {"items": items})


@require_POST
def notifications_read(request):
    request.user.notifications.filter(read_at__isnull=True).update(read_at=timezone.now())
    portal_cache.forget_users(portal_cache.NAV_COUNTS)  # update() sends no signals
    return redirect("notifications")


@login_not_required
def favicon(request):
    """Browsers ask for /favicon.ico whatever the page links: send them to the portal's icon
    (a static file, hashed in production)."""
    return HttpResponsePermanentRedirect(static("favicon.svg"))


@login_not_required
@never_cache
def healthz(request):
    """Liveness: the process answers. Touches nothing else, so a database outage never gets
    healthy web processes restarted."""
    return JsonResponse({"status": "ok"})


@login_not_required
@never_cache
def readyz(request):
    """Readiness: database, broker and migrations; 503 with the failing check otherwise."""
    checks = health.readiness()
    ready = all(check["ok"] for check in checks.values())
    return JsonResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status=200 if ready else 503,
    )


@never_cache
def ceiling(request):
    """The fair ceiling `make bench` compares pages with: a signed-in page that goes through the
    whole middleware stack and renders the base layout (navigation, badges, context processors)
    and does nothing else. Signed-in users only (the login middleware redirects others); it
    shows nothing the navigation bar does not already show them."""
    return render(request, "meshportal/ceiling.html")


def server_error(request):
    """handler500: database outages get the 503 page; anything else the portal's 500 page,
    rendered without the request's context (its context processors query the database)."""
    exc = sys.exc_info()[1]
    if isinstance(exc, DATABASE_ERRORS):
        return database_unavailable_response(request, exc)
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"detail": "Server error. It has been logged.", "code": "server_error"}, status=500
        )
    return HttpResponseServerError(render_to_string("500.html"))


@require_http_methods(["GET", "POST"])
def tokens(request):
    """The profile page: the user's API tokens. A new token's secret is shown once."""
    from django.contrib import messages
    from django.core.exceptions import ValidationError

    from meshportal.api.auth import token_create, token_revoke
    from meshportal.models import ApiToken

    new_key = None
    error = ""
    if request.method == "POST":
        if "revoke" in request.POST:
            token = get_object_or_404(ApiToken, pk=request.POST["revoke"], user=request.user)
            token_revoke(token=token)
            messages.success(request, f"Revoked the token “{token.name}”.")
            return redirect("tokens")
        try:
            token, new_key = token_create(user=request.user, name=request.POST.get("name", ""))
        except ValidationError as e:
            error = " ".join(e.messages)
    items = request.user.api_tokens.all()
    return render(
        request,
        "meshportal/tokens.html",
        {"items": items, "new_key": new_key, "error": error},
        status=400 if error else 200,
    )
