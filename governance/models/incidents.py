"""Incidents: a failing quality check or a breached freshness SLO, opened and resolved with the
check's state, acknowledged and resolved by the product's team, with a timeline."""

from django.conf import settings
from django.db import models

ACTIVE = ("open", "acknowledged")


class Incident(models.Model):
    class Kind(models.TextChoices):
        CHECK = "check", "Failing check"
        FRESHNESS = "freshness", "Freshness SLO breached"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"

    ACTIVE = ACTIVE

    product = models.ForeignKey(
        "products.DataProduct", on_delete=models.CASCADE, related_name="incidents"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    # The failing check (kind check); kept empty once the check is deleted (the title stays).
    quality_check = models.ForeignKey(
        "governance.QualityCheck",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="incidents",
    )
    title = models.CharField(max_length=300)
    status = models.CharField(
        max_length=12, choices=Status.choices, default=Status.OPEN, db_index=True
    )
    failures = models.PositiveIntegerField(default=1, help_text="Failing runs while open.")
    opened_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    # Empty when resolved automatically (the check passed again, the data is fresh again).
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolution_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-opened_at", "-pk"]
        constraints = [
            # One open (or acknowledged) incident per check, and one per product's freshness.
            models.UniqueConstraint(
                fields=["quality_check"],
                condition=models.Q(status__in=ACTIVE, kind="check"),
                name="incident_one_active_per_check",
            ),
            models.UniqueConstraint(
                fields=["product"],
                condition=models.Q(status__in=ACTIVE, kind="freshness"),
                name="incident_one_active_freshness",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["open", "acknowledged", "resolved"]),
                name="incident_status_valid",
            ),
        ]
        indexes = [models.Index(fields=["product", "status"], name="incident_product_status")]

    def __str__(self) -> str:
        return self.title

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE


class IncidentEvent(models.Model):
    """One line of an incident's timeline."""

    class Kind(models.TextChoices):
        OPENED = "opened", "Opened"
        FAILED = "failed", "Failed again"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    at = models.DateTimeField()
    # Empty for what the portal did itself (opening, a failing run, resolving automatically).
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.TextField(blank=True)
    run = models.ForeignKey(
        "governance.QualityRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.incident}: {self.kind} @ {self.at:%Y-%m-%d %H:%M}"
