"""/api/v1/usage/…"""

from django.urls import path

from usage.api import views

urlpatterns = [
    path("ingest/", views.IngestView.as_view(), name="usage-ingest"),
    path(
        "products/<slug:domain>/<slug:product>/",
        views.ProductUsageView.as_view(),
        name="product-usage",
    ),
]
