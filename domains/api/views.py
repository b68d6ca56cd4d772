from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets

from domains.api.serializers import DomainSerializer, TeamSerializer
from domains.models import Domain, Membership, Team
from meshportal.api.common import ERROR_RESPONSES
from meshportal.permissions import visible


@extend_schema_view(
    list=extend_schema(responses={200: TeamSerializer(many=True)}),
    retrieve=extend_schema(responses={200: TeamSerializer, **ERROR_RESPONSES}),
)
class TeamViewSet(viewsets.ReadOnlyModelViewSet):
    """Teams and their members. Teams are managed on the portal's team pages and the admin."""

    serializer_class = TeamSerializer
    lookup_field = "slug"
    ordering_fields = ["name", "slug", "created_at"]
    filterset_fields = ["slug"]

    def get_queryset(self):
        return visible(
            self.request.user,
            Team.objects.prefetch_related(
                Prefetch("memberships", queryset=Membership.objects.select_related("user"))
            ),
        ).order_by("name")


@extend_schema_view(
    list=extend_schema(responses={200: DomainSerializer(many=True)}),
    retrieve=extend_schema(responses={200: DomainSerializer, **ERROR_RESPONSES}),
)
class DomainViewSet(viewsets.ReadOnlyModelViewSet):
    """Business domains. Domains are managed on the portal's pages and the admin."""

    serializer_class = DomainSerializer
    lookup_field = "slug"
    ordering_fields = ["name", "slug", "created_at"]
    filterset_fields = ["slug"]

    def get_queryset(self):
        return visible(
            self.request.user, Domain.objects.select_related("parent", "owner_team")
        ).order_by("name")
