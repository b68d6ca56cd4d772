from django.urls import path

from usage import views

app_name = "usage"

urlpatterns = [
    path("analytics/", views.analytics, name="analytics"),
    path(
        "products/<slug:domain>/<slug:product>/usage/ask/",
        views.ask_to_request,
        name="ask_to_request",
    ),
]
