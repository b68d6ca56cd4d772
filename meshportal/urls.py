from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from domains import views as domain_views
from meshportal import views

urlpatterns = [
    path("", domain_views.home, name="home"),
    path(
        "login/",
        views.LoginView.as_view(
            redirect_authenticated_user=True,
            extra_context={"oidc_enabled": settings.OIDC_ENABLED},
        ),
        name="login",
    ),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("notifications/", views.notifications, name="notifications"),
    path("notifications/read/", views.notifications_read, name="notifications_read"),
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("readyz", views.readyz, name="readyz"),
    path("ceiling/", views.ceiling, name="ceiling"),
    path("admin/", admin.site.urls),
    path("api/", include("meshportal.api.urls")),
    path("profile/tokens/", views.tokens, name="tokens"),
    path("", include("products.lineage.urls")),
    path("", include("products.urls")),
    path("", include("domains.urls")),
    path("", include("governance.urls")),
    path("", include("usage.urls")),
]
if settings.OIDC_ENABLED:
    urlpatterns.insert(0, path("oidc/", include("mozilla_django_oidc.urls")))

handler500 = "meshportal.views.server_error"
