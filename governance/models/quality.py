"""Quality: checks on output ports' real tables, their runs, per-product quality state, and
outgoing webhooks per team."""

from django.conf import settings
from django.db import models

from meshportal.fields import NameField


class QualityCheck(models.Model):
    class Kind(models.TextChoices):
        ROW_COUNT = "row_count", "Row count within a range"
        MISSING = "missing", "Missing values"
        DUPLICATES = "duplicates", "Duplicates"
        ACCEPTED_VALUES = "accepted_values", "Values in an accepted set"
        RANGE = "range", "Values within a range"
        PATTERN = "pattern", "Values match a pattern"
        FRESHNESS = "freshness", "Freshness"
        SCHEMA = "schema", "Schema conformance"
        CUSTOM_SQL = "custom_sql", "Custom SQL"

    class Status(models.TextChoices):
        PASSED = "passed", "Passed"
        FAILED = "failed", "Failed"
        ERROR = "error", "Error"

    port = models.ForeignKey(
        "products.OutputPort", on_delete=models.CASCADE, related_name="quality_checks"
    )
    name = NameField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    # Columns the check reads (one for most kinds, several for duplicates, none for row count,
    # schema and custom SQL).
    columns = models.JSONField(default=list, blank=True)
    # Per kind: min/max, threshold + unit (count|percent), values, pattern, hours, sql.
    params = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    interval_minutes = models.PositiveIntegerField(
        default=60, help_text="Run every N minutes (ignored when a cron expression is set)."
    )
    cron = models.CharField(
        max_length=100, blank=True, help_text='Five cron fields, e.g. "0 6 * * *" (UTC).'
    )
    timeout_seconds = models.PositiveIntegerField(default=60)
    next_run_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_status = models.CharField(max_length=10, choices=Status.choices, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["port", "name"]
        constraints = [
            models.UniqueConstraint(fields=["port", "name"], name="qualitycheck_unique_name"),
            models.CheckConstraint(
                condition=models.Q(
                    kind__in=[
                        "row_count",
                        "missing",
                        "duplicates",
                        "accepted_values",
                        "range",
                        "pattern",
                        "freshness",
                        "schema",
                        "custom_sql",
                    ]
                ),
                name="qualitycheck_kind_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(interval_minutes__gte=1), name="qualitycheck_interval_min"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def product(self):
        return self.port.product


class QualityRun(models.Model):
    """One execution of one check. It exists (queued) before its task is sent."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        PASSED = "passed", "Passed"
        FAILED = "failed", "Failed"
        ERROR = "error", "Error"

    ACTIVE = ("queued", "running")

    quality_check = models.ForeignKey(
        QualityCheck, on_delete=models.CASCADE, related_name="runs", db_column="check_id"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    trigger = models.CharField(max_length=10, default="schedule")  # schedule | manual
    observed = models.FloatField(null=True, blank=True)
    threshold = models.CharField(max_length=200, blank=True)
    message = models.TextField(blank=True)
    sample = models.JSONField(default=list, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    queued_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # After this the sweeper marks a queued/running run as error (worker lost, query hung).
    deadline = models.DateTimeField()

    class Meta:
        ordering = ["-queued_at", "-pk"]
        constraints = [
            # The same check never runs twice at once.
            models.UniqueConstraint(
                fields=["quality_check"],
                condition=models.Q(status__in=["queued", "running"]),
                name="qualityrun_one_active_per_check",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["queued", "running", "passed", "failed", "error"]),
                name="qualityrun_status_valid",
            ),
        ]
        indexes = [models.Index(fields=["status", "deadline"], name="qualityrun_sweep")]

    def __str__(self) -> str:
        return f"{self.quality_check} @ {self.queued_at:%Y-%m-%d %H:%M} ({self.status})"


class ProductQuality(models.Model):
    """Per product: trust score and freshness state, kept current after every run so lists
    and search can sort on it in SQL."""

    product = models.OneToOneField(
        "products.DataProduct", on_delete=models.CASCADE, related_name="quality_state"
    )
    trust_score = models.PositiveSmallIntegerField(default=0, db_index=True)
    components = models.JSONField(default=dict, blank=True)
    newest_data_at = models.DateTimeField(null=True, blank=True)
    freshness_breached = models.BooleanField(default=False)

    class State(models.TextChoices):
        PASSING = "passing", "Passing"
        FAILING = "failing", "Failing"
        UNCHECKED = "unchecked", "Not yet checked"

    # Derived from the checks' latest results; stored so search can facet on it in SQL.
    state = models.CharField(
        max_length=10, choices=State.choices, default=State.UNCHECKED, db_index=True
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "product quality"
        verbose_name_plural = "product quality"
        indexes = [
            # A list's facet pass reads each sampled product's state from the index alone.
            models.Index(fields=["product"], include=["state"], name="productquality_state_cover")
        ]

    def __str__(self) -> str:
        return f"{self.product}: trust {self.trust_score}"


class Webhook(models.Model):
    team = models.ForeignKey("domains.Team", on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=500)
    secret = models.CharField(
        max_length=200, help_text="Shared secret for the X-Mesh-Signature HMAC-SHA256 header."
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.team}: {self.url}"


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=50)
    body = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event} → {self.webhook.url} ({self.status})"
