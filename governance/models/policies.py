"""Federated governance: policies, council votes, evaluation results, waivers and the glossary."""

from django.conf import settings
from django.db import models
from django.urls import reverse

from meshportal.fields import NameField


class Policy(models.Model):
    class Severity(models.TextChoices):
        ADVISORY = "advisory", "Advisory"
        BLOCKING = "blocking", "Blocking"

    class Status(models.TextChoices):
        PROPOSED = "proposed", "Proposed"
        ACTIVE = "active", "Active"
        REJECTED = "rejected", "Rejected"
        RETIRED = "retired", "Retired"

    key = models.SlugField(
        max_length=80, unique=True, help_text="Short unique name, e.g. snake-case-fields."
    )
    title = NameField(max_length=200)
    rationale = models.TextField(blank=True, help_text="Markdown: why the mesh wants this.")
    rule_type = models.CharField(max_length=40)
    parameters = models.JSONField(default=dict, blank=True)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.ADVISORY)
    domain = models.ForeignKey(
        "domains.Domain",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="policies",
        help_text="Empty: a global policy the council adopts.",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PROPOSED)
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    activated_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        verbose_name_plural = "policies"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(severity__in=["advisory", "blocking"]),
                name="policy_severity_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["proposed", "active", "rejected", "retired"]),
                name="policy_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("governance:policy", kwargs={"key": self.key})

    @property
    def is_global(self) -> bool:
        return self.domain_id is None


class PolicyVote(models.Model):
    class Decision(models.TextChoices):
        APPROVE = "approve", "Approve"
        REJECT = "reject", "Reject"

    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="votes")
    voter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    decision = models.CharField(max_length=8, choices=Decision.choices)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "voter"], name="policyvote_one_per_voter"),
            models.CheckConstraint(
                condition=models.Q(decision__in=["approve", "reject"]),
                name="policyvote_decision_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.voter} {self.decision}s {self.policy}"


class EvaluationRun(models.Model):
    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Schedule"
        MANUAL = "manual", "On demand"
        CHANGE = "change", "Product changed"
        COMMAND = "command", "Command"

    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    products = models.PositiveIntegerField(default=0)
    policies = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0, help_text="Results whose outcome changed.")

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"Evaluation {self.pk} ({self.trigger})"


class Compliance(models.Model):
    """A product's compliance with a policy: its current outcome, what scorecards read. The
    one name for it everywhere: the Compliance page, `/api/v1/compliance/`, the MCP tool."""

    class Outcome(models.TextChoices):
        PASS = "pass", "Passes"
        FAIL = "fail", "Fails"

    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="compliance")
    product = models.ForeignKey(
        "products.DataProduct", on_delete=models.CASCADE, related_name="compliance"
    )
    outcome = models.CharField(max_length=4, choices=Outcome.choices)
    reason = models.TextField(blank=True)
    changed_at = models.DateTimeField()
    run = models.ForeignKey(EvaluationRun, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name = verbose_name_plural = "compliance"
        constraints = [
            models.UniqueConstraint(fields=["policy", "product"], name="policystatus_unique"),
        ]
        indexes = [models.Index(fields=["policy", "outcome"], name="policystatus_policy_outcome")]

    def __str__(self) -> str:
        return f"{self.policy_id} on {self.product_id}: {self.outcome}"


class ComplianceChange(models.Model):
    """Compliance history: a row each time a policy's outcome or reason on a product changes
    (`/api/v1/compliance/history/`)."""

    run = models.ForeignKey(
        EvaluationRun, on_delete=models.CASCADE, related_name="compliance_changes"
    )
    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="compliance_changes")
    product = models.ForeignKey("products.DataProduct", on_delete=models.CASCADE, related_name="+")
    outcome = models.CharField(max_length=4, choices=Compliance.Outcome.choices)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["policy", "product"], name="policyresult_policy_product")]

    def __str__(self) -> str:
        return f"{self.policy_id} on {self.product_id}: {self.outcome}"


class PolicyRunSummary(models.Model):
    """How many products passed each policy after a run: the trend line on a policy's page."""

    run = models.ForeignKey(EvaluationRun, on_delete=models.CASCADE, related_name="summaries")
    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="summaries")
    passed = models.PositiveIntegerField()
    failed = models.PositiveIntegerField()

    class Meta:
        ordering = ["-run__started_at"]
        verbose_name_plural = "policy run summaries"

    def __str__(self) -> str:
        return f"{self.policy_id}: {self.passed} pass, {self.failed} fail"


class Waiver(models.Model):
    class Status(models.TextChoices):
        REQUESTED = "requested", "Requested"
        GRANTED = "granted", "Granted"
        DENIED = "denied", "Denied"

    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="waivers")
    product = models.ForeignKey(
        "products.DataProduct", on_delete=models.CASCADE, related_name="waivers"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    justification = models.TextField(help_text="Why this product cannot comply yet.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.REQUESTED)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=["requested", "granted", "denied"]),
                name="waiver_status_valid",
            ),
        ]
        indexes = [models.Index(fields=["policy", "product", "status"], name="waiver_lookup")]

    def __str__(self) -> str:
        return f"Waiver of {self.policy} for {self.product} ({self.status})"


class GlossaryTerm(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        APPROVED = "approved", "Approved"
        DEPRECATED = "deprecated", "Deprecated"

    slug = models.SlugField(max_length=100, unique=True)
    name = NameField(max_length=200)
    definition = models.TextField(help_text="Markdown.")
    synonyms = models.CharField(max_length=500, blank=True, help_text="Comma-separated.")
    domain = models.ForeignKey(
        "domains.Domain",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="glossary_terms",
        help_text="Empty: a global term.",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=["draft", "approved", "deprecated"]),
                name="glossaryterm_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("governance:term", kwargs={"slug": self.slug})

    @property
    def synonym_list(self) -> list[str]:
        return [s.strip() for s in self.synonyms.split(",") if s.strip()]


class DirtyProduct(models.Model):
    """A product changed since its last evaluation; a debounced task evaluates and clears these."""

    product = models.OneToOneField(
        "products.DataProduct", on_delete=models.CASCADE, related_name="+"
    )
    since = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"product {self.product_id} changed"
