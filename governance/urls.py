from django.urls import include, path  # noqa: F401

app_name = "governance"

urlpatterns: list = []

from . import quality_views  # noqa: E402

urlpatterns += [
    path("quality/", quality_views.quality_overview, name="quality"),
    path("quality/products/<slug:domain>/<slug:product>/checks/new/", quality_views.check_create,
         name="quality_check_create"),
    path("quality/products/<slug:domain>/<slug:product>/run/", quality_views.product_run,
         name="quality_product_run"),
    path("quality/checks/<int:pk>/", quality_views.check_detail, name="quality_check"),
    path("quality/checks/<int:pk>/run/", quality_views.check_run, name="quality_check_run"),
    path("quality/checks/<int:pk>/delete/", quality_views.check_delete,
         name="quality_check_delete"),
]
