from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from meshportal.fields import NameField
from meshportal.links import cached_reverse

slug_validator_help = "Lower-case letters, digits and hyphens; used in URLs and URNs."


class Team(models.Model):
    """A group of people who own domains. Wraps one Django Group that carries its permissions."""

    slug = models.SlugField(max_length=80, unique=True, help_text=slug_validator_help)
    name = NameField(max_length=200)
    description = models.TextField(blank=True)
    contact_email = models.EmailField(blank=True)
    group = models.OneToOneField(Group, on_delete=models.PROTECT, related_name="team")
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="teams"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return cached_reverse("domains:team", team=self.slug)


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        MEMBER = "member", "Member"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["team", "-role", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="membership_unique_team_user"),
            models.CheckConstraint(
                condition=models.Q(role__in=["owner", "member"]), name="membership_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"


class Domain(models.Model):
    slug = models.SlugField(max_length=80, unique=True, help_text=slug_validator_help)
    name = NameField(max_length=200)
    description = models.TextField(blank=True, help_text="Markdown.")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    owner_team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="domains")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [("transfer_domain", "Can move a domain to another team")]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(parent=models.F("id")), name="domain_not_own_parent"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return cached_reverse("domains:domain", domain=self.slug)


# guardian's direct foreign-key permission tables: rows cascade with their object and list views
# filter with an indexed join instead of the generic table's text object_pk.
class DomainUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Domain, on_delete=models.CASCADE)


class DomainGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Domain, on_delete=models.CASCADE)
