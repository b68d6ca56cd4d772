from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.urls import path

from meshportal.urls import handler500
from meshportal.urls import urlpatterns as portal_urlpatterns


@login_not_required
def probe(request):
    """An API endpoint that reads the database, like every real one does."""
    return JsonResponse({"users": get_user_model().objects.count()})


urlpatterns = [path("api/_probe", probe), *portal_urlpatterns]
__all__ = ["handler500", "urlpatterns"]
