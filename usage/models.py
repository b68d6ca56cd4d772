"""Usage: what the warehouses' own query logs say about who reads and writes which product.

Raw query events are kept `MESH_USAGE_RAW_RETENTION_DAYS` days; what pages read are the daily
aggregates (`ProductUsage`, per port, principal, day and kind) and the observed lineage edges
(`ObservedEdge`), both kept as long as their ports exist.
"""

from django.conf import settings
from django.db import models


class ConsumerMapping(models.Model):
    """Who a warehouse principal (database user or role) is: a team or a person of the portal.
    Without a data source the mapping holds for every source."""

    data_source = models.ForeignKey(
        "governance.DataSource",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="consumer_mappings",
    )
    principal = models.CharField(max_length=200, help_text="The database user or role.")
    team = models.ForeignKey(
        "domains.Team",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="consumer_mappings",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="consumer_mappings",
    )
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["principal"]
        constraints = [
            models.UniqueConstraint(
                fields=["data_source", "principal"],
                name="consumermapping_unique_principal",
                condition=models.Q(data_source__isnull=False),
            ),
            models.UniqueConstraint(
                fields=["principal"],
                name="consumermapping_unique_global",
                condition=models.Q(data_source__isnull=True),
            ),
            models.CheckConstraint(
                condition=models.Q(team__isnull=False, user__isnull=True)
                | models.Q(team__isnull=True, user__isnull=False),
                name="consumermapping_team_or_user",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.principal} → {self.team or self.user}"


class IngestRun(models.Model):
    """One batch received (API call, file import, pg_stat_statements poll) and what became of it."""

    class Door(models.TextChoices):
        API = "api", "API"
        COMMAND = "command", "import_usage"
        PG_STAT = "pg_stat", "pg_stat_statements"

    data_source = models.ForeignKey(
        "governance.DataSource", on_delete=models.CASCADE, related_name="usage_ingests"
    )
    door = models.CharField(max_length=10, choices=Door.choices)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    events = models.PositiveIntegerField(default=0)
    unparsed = models.PositiveIntegerField(default=0, help_text="SQL the parser could not read.")
    matched = models.PositiveIntegerField(
        default=0, help_text="Events that read or wrote a product's port."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.data_source} {self.door} {self.created_at:%Y-%m-%d %H:%M}"


class QueryEvent(models.Model):
    """One query (or `count` identical ones) as the warehouse logged it. Raw: deleted after
    MESH_USAGE_RAW_RETENTION_DAYS; never shown to anyone but the platform team."""

    ingest = models.ForeignKey(IngestRun, on_delete=models.CASCADE, related_name="query_events")
    data_source = models.ForeignKey(
        "governance.DataSource", on_delete=models.CASCADE, related_name="query_events"
    )
    principal = models.CharField(max_length=200)
    occurred_at = models.DateTimeField()
    statement = models.TextField(blank=True)
    count = models.PositiveBigIntegerField(default=1)
    rows = models.BigIntegerField(null=True, blank=True)
    parsed = models.BooleanField(default=True)

    class Meta:
        ordering = ["-occurred_at"]
        permissions = [("ingest_queryevent", "Can send query logs to the usage store")]
        indexes = [models.Index(fields=["occurred_at"], name="queryevent_occurred")]

    def __str__(self) -> str:
        return f"{self.principal} @ {self.occurred_at:%Y-%m-%d %H:%M}"


class ProductUsage(models.Model):
    """Queries per output port, principal, day and kind (read or write): what pages read."""

    class Kind(models.TextChoices):
        READ = "read", "read"
        WRITE = "write", "write"

    product = models.ForeignKey(
        "products.DataProduct", on_delete=models.CASCADE, related_name="usage"
    )
    port = models.ForeignKey("products.OutputPort", on_delete=models.CASCADE, related_name="usage")
    principal = models.CharField(max_length=200)
    day = models.DateField()
    kind = models.CharField(max_length=5, choices=Kind.choices, default=Kind.READ)
    queries = models.PositiveBigIntegerField(default=0)
    rows = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["-day", "principal"]
        constraints = [
            models.UniqueConstraint(
                fields=["port", "principal", "day", "kind"], name="productusage_unique_day"
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=["read", "write"]), name="productusage_kind_valid"
            ),
        ]
        indexes = [models.Index(fields=["product", "day"], name="productusage_product_day")]

    def __str__(self) -> str:
        return f"{self.principal} {self.kind} {self.port} on {self.day}"


class ObservedEdge(models.Model):
    """Observed lineage: a query wrote `target_port` and read `source_port`."""

    source_port = models.ForeignKey(
        "products.OutputPort", on_delete=models.CASCADE, related_name="observed_downstream"
    )
    source_product = models.ForeignKey(
        "products.DataProduct", on_delete=models.CASCADE, related_name="observed_downstream"
    )
    target_port = models.ForeignKey(
        "products.OutputPort", on_delete=models.CASCADE, related_name="observed_upstream"
    )
    target_product = models.ForeignKey(
        "products.DataProduct", on_delete=models.CASCADE, related_name="observed_upstream"
    )
    queries = models.PositiveBigIntegerField(default=0)
    first_seen = models.DateField()
    last_seen = models.DateField()

    class Meta:
        ordering = ["target_product", "source_product"]
        constraints = [
            models.UniqueConstraint(
                fields=["source_port", "target_port"], name="observededge_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source_port} → {self.target_port} (observed)"


class UsageConsumerNudge(models.Model):
    """An owner asked an unmanaged consumer to request access (once a week at most)."""

    product = models.ForeignKey(
        "products.DataProduct", on_delete=models.CASCADE, related_name="usage_nudges"
    )
    principal = models.CharField(max_length=200)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    notified = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.principal} asked about {self.product}"


class PgStatCursor(models.Model):
    """What the last pg_stat_statements poll saw of one statement and role (its counters are
    cumulative: the next poll ingests the difference)."""

    data_source = models.ForeignKey(
        "governance.DataSource", on_delete=models.CASCADE, related_name="pg_stat_cursors"
    )
    queryid = models.BigIntegerField()
    principal = models.CharField(max_length=200)
    calls = models.BigIntegerField(default=0)
    rows = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["data_source", "queryid", "principal"], name="pgstatcursor_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.data_source} {self.queryid} {self.principal}"


# -- portal analytics (usage.analytics): what people do in the portal itself --------------------


class ProductView(models.Model):
    """Product page loads per product, person and day (one upsert per page: `views` + 1).
    Kept MESH_ANALYTICS_RETENTION_DAYS; only the platform team's analytics read it."""

    product = models.ForeignKey(
        "products.DataProduct", on_delete=models.CASCADE, related_name="page_views"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="product_views"
    )
    day = models.DateField()
    views = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["product", "user", "day"], name="productview_unique_day"
            ),
        ]
        indexes = [models.Index(fields=["day"], name="productview_day")]

    def __str__(self) -> str:
        return f"{self.product_id} by {self.user_id} on {self.day}: {self.views}"


class SearchDay(models.Model):
    """Searches per query text (lower case, spaces collapsed) and day: how many, and how many
    showed no product. No person is recorded. Kept MESH_ANALYTICS_RETENTION_DAYS."""

    day = models.DateField()
    query = models.CharField(max_length=200)
    searches = models.PositiveIntegerField(default=0)
    empty = models.PositiveIntegerField(default=0, help_text="Searches that found no product.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "query"], name="searchday_unique_query"),
        ]

    def __str__(self) -> str:
        return f"{self.query!r} on {self.day}: {self.searches}"
