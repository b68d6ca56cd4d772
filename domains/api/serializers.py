from rest_framework import serializers

from domains.models import Domain, Membership, Team


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Membership
        fields = ["username", "role"]


class TeamSerializer(serializers.ModelSerializer):
    memberships = MembershipSerializer(many=True, read_only=True)

    class Meta:
        model = Team
        fields = [
            "slug",
            "name",
            "description",
            "contact_email",
            "memberships",
            "created_at",
            "updated_at",
        ]


class DomainSerializer(serializers.ModelSerializer):
    # mypy sees Field.parent here, but DRF's metaclass takes declared fields off the class.
    parent: serializers.SlugRelatedField[Domain] = serializers.SlugRelatedField(  # type: ignore[assignment]
        slug_field="slug", read_only=True, allow_null=True
    )
    owner_team: serializers.SlugRelatedField[Team] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )

    class Meta:
        model = Domain
        fields = ["slug", "name", "description", "parent", "owner_team", "created_at", "updated_at"]
