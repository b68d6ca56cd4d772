from django.urls import path

from products.lineage import views

app_name = "lineage"

P = "products/<slug:domain>/<slug:product>/lineage"

urlpatterns = [
    path(f"{P}/graph.json", views.graph_json, name="graph"),
    path(f"{P}/impact.json", views.impact_json, name="impact"),
    path(f"{P}/impact/", views.impact_html, name="impact_html"),
    path(f"{P}/inputs/add/", views.input_add, name="input_add"),
    path(f"{P}/inputs/<int:pk>/delete/", views.input_delete, name="input_delete"),
    path(f"{P}/watch/", views.product_watch, name="watch"),
    path("domains/<slug:domain>/watch/", views.domain_watch, name="domain_watch"),
    path("lineage/ports/suggest/", views.port_suggest, name="port_suggest"),
    path("lineage/mesh/", views.mesh_map, name="mesh"),
    path("lineage/mesh.json", views.mesh_json, name="mesh_json"),
    path("notifications/preferences/", views.notification_preferences, name="preferences"),
]
