from django.urls import path

from domains import views

app_name = "domains"

urlpatterns = [
    path("domains/", views.domain_list, name="list"),
    path("domains/<slug:domain>/", views.domain_detail, name="domain"),
    path("teams/<slug:team>/", views.team_detail, name="team"),
    path("teams/<slug:team>/members/", views.team_member_add, name="member_add"),
    path(
        "teams/<slug:team>/members/<int:user_id>/role/", views.team_member_role, name="member_role"
    ),
    path(
        "teams/<slug:team>/members/<int:user_id>/remove/",
        views.team_member_remove,
        name="member_remove",
    ),
]
