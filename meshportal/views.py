from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST


def notifications(request):
    items = request.user.notifications.all()[:100]
    return render(request, "meshportal/notifications.html", {"items": items})


@require_POST
def notifications_read(request):
    request.user.notifications.filter(read_at__isnull=True).update(read_at=timezone.now())
    return redirect("notifications")


@login_not_required
def healthz(request):
    return JsonResponse({"status": "ok"})
