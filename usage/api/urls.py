"""/api/v1/usage/…"""

from django.urls import path

from usage.api import views

urlpatterns = [
    path("ingest/", views.IngestView.as_view(), name="usage-ingest"),
    path("analytics/", views.AnalyticsView.as_view(), name="usage-analytics"),
    path(
        "products/<slug:domain>/<slug:product>/",
        views.ProductUsageView.as_view(),
        name="product-usage",
    ),
]
