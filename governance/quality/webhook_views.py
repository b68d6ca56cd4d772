"""A team's outgoing webhooks in the browser, for the team's owners: add (the secret is shown
once, on the page that answers the creation), edit, delete, send a test, and the recent
delivery log. Thin: rules in quality_services and quality_permissions."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from domains.models import Team
from governance.models import Webhook
from governance.quality import services
from governance.quality.forms import WebhookForm
from meshportal import queue
from meshportal.forms import apply_errors
from meshportal.permissions import EDIT, MANAGE_TEAM, require, visible


def _page(request, team, form, *, secret_for=None, secret="", status=200):
    return render(
        request,
        "governance/webhooks/team.html",
        {
            "team": team,
            "webhooks": services.team_webhooks(team=team),
            "deliveries": services.team_deliveries(team=team),
            "form": form,
            "secret_for": secret_for,
            "secret": secret,
        },
        status=status,
    )


@never_cache
@require_http_methods(["GET", "POST"])
def team_webhooks(request, team: str):
    obj = get_object_or_404(Team, slug=team)
    require(request.user, MANAGE_TEAM, obj)
    form = WebhookForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            hook, secret = services.webhook_create(team=obj, by=request.user, **form.cleaned_data)
        except ValidationError as e:
            apply_errors(form, e)
        else:
            # Rendered, not redirected: the secret lives in this one response (no-store) only.
            return _page(request, obj, WebhookForm(), secret_for=hook, secret=secret, status=201)
    return _page(request, obj, form, status=400 if form.errors else 200)


def _hook_or_404(request, pk: int) -> Webhook:
    # Invisible (another team's) -> 404; visible but not manageable cannot happen: same rule.
    return get_object_or_404(visible(request.user, Webhook.objects.select_related("team")), pk=pk)


@require_http_methods(["GET", "POST"])
def webhook_edit(request, pk: int):
    hook = _hook_or_404(request, pk)
    require(request.user, EDIT, hook)
    form = WebhookForm(request.POST or None, initial={"url": hook.url, "active": hook.active})
    if request.method == "POST" and form.is_valid():
        try:
            services.webhook_update(hook=hook, by=request.user, **form.cleaned_data)
        except ValidationError as e:
            apply_errors(form, e)
        else:
            messages.success(request, "Webhook saved.")
            return redirect("governance:team_webhooks", team=hook.team.slug)
    return render(request, "governance/webhooks/edit.html", {"hook": hook, "form": form})


@require_POST
def webhook_delete(request, pk: int):
    hook = _hook_or_404(request, pk)
    require(request.user, EDIT, hook)
    team = hook.team
    services.webhook_delete(hook=hook, by=request.user)
    messages.success(request, "Webhook deleted; it receives nothing more.")
    return redirect("governance:team_webhooks", team=team.slug)


@require_POST
def webhook_test(request, pk: int):
    hook = _hook_or_404(request, pk)
    require(request.user, EDIT, hook)
    _, result = services.webhook_send_test(hook=hook, by=request.user)
    queue.tell(request, "Test delivery sent; its status appears in the log below.", result)
    return redirect("governance:team_webhooks", team=hook.team.slug)
