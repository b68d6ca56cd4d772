from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from domains import views as domain_views

from . import views

urlpatterns = [
    path("", domain_views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("notifications/", views.notifications, name="notifications"),
    path("notifications/read/", views.notifications_read, name="notifications_read"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("", include("products.lineage_urls")),
    path("", include("products.urls")),
    path("", include("domains.urls")),
    path("", include("governance.urls")),
]
