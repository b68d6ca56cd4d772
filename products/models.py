from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.core.exceptions import ValidationError
from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from meshportal.fields import NameField, PercentField
from meshportal.links import cached_reverse
from products import urns


class Tag(models.Model):
    slug = models.SlugField(max_length=60, unique=True)
    name = NameField(max_length=60)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return cached_reverse("products:tag", tag=self.slug)


class DataProduct(models.Model):
    # Columns derived from the product and its ports and tags for search: never saved by a
    # save(), never part of an audit snapshot.
    DERIVED = frozenset({"search_vector", "facet_values"})

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published"
        DEPRECATED = "deprecated", "Deprecated"
        RETIRED = "retired", "Retired"

    class Classification(models.TextChoices):
        PUBLIC = "public", "Public"
        INTERNAL = "internal", "Internal"
        CONFIDENTIAL = "confidential", "Confidential"
        RESTRICTED = "restricted", "Restricted"

    domain = models.ForeignKey("domains.Domain", on_delete=models.PROTECT, related_name="products")
    slug = models.SlugField(max_length=100)
    name = NameField(max_length=200)
    summary = models.CharField(max_length=300, blank=True)
    description = models.TextField(blank=True, help_text="Markdown.")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    version = models.CharField(max_length=40, default="1.0.0")
    classification = models.CharField(
        max_length=12, choices=Classification.choices, default=Classification.INTERNAL
    )
    tags = models.ManyToManyField(Tag, blank=True, related_name="products")
    owner_team = models.ForeignKey(
        "domains.Team",
        on_delete=models.PROTECT,
        related_name="products",
        blank=True,
        help_text="Defaults to the domain's team.",
    )
    freshness_slo_hours = models.PositiveIntegerField(
        null=True, blank=True, help_text="Newest data is at most this many hours old."
    )
    availability_slo = PercentField(
        max_digits=6, decimal_places=3, null=True, blank=True, help_text="Percent, e.g. 99.9"
    )
    sunset_date = models.DateField(null=True, blank=True)
    replacement = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replaces"
    )
    published_at = models.DateTimeField(null=True, blank=True)
    # ODPS content the portal has no field for, kept as it came and merged back on export
    # (products.contracts.odps); never a value a field above owns.
    odps_kept = models.JSONField(default=dict, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Weighted full-text document, kept by products.discovery.search.index_product (PostgreSQL only).
    search_vector = SearchVectorField(null=True, editable=False)
    # {facet key: [values]} of the many-valued search facets (tags, port kinds), kept beside
    # the vector by index_product (PostgreSQL only): the facet counts read them from the
    # product's row instead of joining the tag links and the ports (products.discovery.facets).
    facet_values = models.JSONField(null=True, editable=False)

    class Meta:
        ordering = ["domain__name", "name"]
        permissions = [("consume_dataproduct", "Can see connection details and use the data")]
        constraints = [
            models.UniqueConstraint(fields=["domain", "slug"], name="dataproduct_unique_slug"),
            models.CheckConstraint(
                condition=models.Q(status__in=["draft", "published", "deprecated", "retired"]),
                name="dataproduct_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    classification__in=["public", "internal", "confidential", "restricted"]
                ),
                name="dataproduct_classification_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "domain"], name="dataproduct_status_domain"),
            models.Index(fields=["-published_at"], name="dataproduct_published_at"),
            # Lists sort by name: with these, the first page of 10,000 products reads 25 index
            # entries instead of sorting every row (141 ms -> 0.7 ms; domain page 30 -> 1.6 ms).
            models.Index(fields=["name"], name="dataproduct_name"),
            # Also covering (status, team, id): the visibility test and the lists' counts and
            # page ids scan this instead of the rows, which carry their search vectors (about
            # 4 KB each): API product list SQL 19 -> 12 ms at 10,000 products.
            models.Index(
                fields=["domain", "name"],
                include=["status", "owner_team", "id"],
                name="dataproduct_list_cover",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    # Column values as last loaded or saved (from_db, save): a save writes only what differs.
    _loaded: dict[str, object] | None = None

    @classmethod
    def from_db(cls, db, field_names, values, **kwargs):
        instance = super().from_db(db, field_names, values, **kwargs)
        instance._loaded = instance._column_values()
        return instance

    def refresh_from_db(self, *args, **kwargs):
        super().refresh_from_db(*args, **kwargs)
        self._loaded = {**(self._loaded or {}), **self._column_values(kwargs.get("fields"))}

    def _column_values(self, names=None) -> dict[str, object]:
        return {
            f.attname: self.__dict__[f.attname]
            for f in self._meta.concrete_fields
            if f.attname in self.__dict__ and (names is None or f.name in names)
        }

    def _changed(self, field) -> bool:
        if self._loaded is None or field.name == "updated_at":
            return True
        if field.attname not in self.__dict__:  # deferred and never set
            return False
        return (
            field.attname not in self._loaded
            or self._loaded[field.attname] != self.__dict__[field.attname]
        )

    def save(self, *args, **kwargs):
        # An ordinary save of a loaded product writes only the columns that changed since it
        # was loaded (and updated_at), so post_save's update_fields says what changed: hooks
        # that react to one field (the freshness re-check) run only when it did. The DERIVED
        # columns are written only by products.discovery.search.index_product, never by a save.
        if not self._state.adding and kwargs.get("update_fields") is None:
            kwargs["update_fields"] = [
                f.name
                for f in self._meta.concrete_fields
                if not f.primary_key and f.name not in self.DERIVED and self._changed(f)
            ]
        super().save(*args, **kwargs)
        saved = kwargs.get("update_fields")
        self._loaded = {**(self._loaded or {}), **self._column_values(saved)}

    def get_absolute_url(self) -> str:
        return cached_reverse("products:product", domain=self.domain.slug, product=self.slug)

    @property
    def urn(self) -> str:
        return urns.format_urn(self.domain.slug, self.slug)

    def clean(self) -> None:
        if self.domain_id and not self.owner_team_id:
            self.owner_team_id = self.domain.owner_team_id
        if self.replacement_id and self.replacement_id == self.pk:
            raise ValidationError({"replacement": "A product cannot replace itself."})


class OutputPort(models.Model):
    class Kind(models.TextChoices):
        TABLE = "table", "Table"
        VIEW = "view", "View"
        FILE = "file", "File"
        API = "api", "API"
        STREAM = "stream", "Stream"
        DASHBOARD = "dashboard", "Dashboard"

    product = models.ForeignKey(DataProduct, on_delete=models.CASCADE, related_name="ports")
    slug = models.SlugField(max_length=100)
    name = NameField(max_length=200)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.TABLE)
    location = models.CharField(
        max_length=500, blank=True, help_text="schema.table, a path or a URL."
    )
    format = models.CharField(max_length=50, blank=True, help_text="e.g. parquet, json, avro")
    description = models.TextField(blank=True)
    data_source = models.ForeignKey(
        "governance.DataSource",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="ports",
    )
    # The ODPS output port's content the portal has no field for (products.contracts.odps).
    odps_kept = models.JSONField(default=dict, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["product", "slug"]
        constraints = [
            models.UniqueConstraint(fields=["product", "slug"], name="outputport_unique_slug"),
            models.CheckConstraint(
                condition=models.Q(
                    kind__in=["table", "view", "file", "api", "stream", "dashboard"]
                ),
                name="outputport_kind_valid",
            ),
        ]
        # "Products with a port of these kinds" (the port-kind filter) read from the index.
        indexes = [models.Index(fields=["kind", "product"], name="outputport_kind_product")]

    def __str__(self) -> str:
        return f"{self.product} / {self.name}"

    def clean(self) -> None:
        # The platform team says which teams may read a data source (DataSource.open_to);
        # every door that saves a port (the form, the API, contract imports) meets it here.
        source = self.data_source if self.data_source_id else None
        # The product may not be saved yet (products.services.product_build): its team counts.
        has_product = self.product_id or OutputPort.product.is_cached(self)
        if source is not None and has_product and not source.open_to(self.product.owner_team_id):
            raise ValidationError(
                {
                    "data_source": f"{source} is not open to "
                    f"{self.product.owner_team}: ask the platform team."
                }
            )


class SchemaField(models.Model):
    class LogicalType(models.TextChoices):
        STRING = "string", "string"
        INTEGER = "integer", "integer"
        NUMBER = "number", "number"
        BOOLEAN = "boolean", "boolean"
        DATE = "date", "date"
        TIMESTAMP = "timestamp", "timestamp"
        OBJECT = "object", "object"
        ARRAY = "array", "array"
        MAP = "map", "map"

    port = models.ForeignKey(OutputPort, on_delete=models.CASCADE, related_name="fields")
    name = NameField(max_length=200)
    logical_type = models.CharField(
        max_length=10, choices=LogicalType.choices, default=LogicalType.STRING
    )
    physical_type = models.CharField(max_length=100, blank=True)
    description = models.TextField(blank=True)
    required = models.BooleanField(default=False)
    unique = models.BooleanField(default=False)
    primary_key = models.BooleanField(default=False)
    pii = models.BooleanField("PII", default=False)
    ordinal = models.PositiveIntegerField(default=0)
    glossary_term = models.ForeignKey(
        "governance.GlossaryTerm",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="fields",
    )

    class Meta:
        ordering = ["port", "ordinal", "name"]
        constraints = [
            models.UniqueConstraint(fields=["port", "name"], name="schemafield_unique_name"),
            models.CheckConstraint(
                condition=models.Q(
                    logical_type__in=[
                        "string",
                        "integer",
                        "number",
                        "boolean",
                        "date",
                        "timestamp",
                        "object",
                        "array",
                        "map",
                    ]
                ),
                name="schemafield_logical_type_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class AccessRequest(models.Model):
    """A consumer's request for a product; once approved it is the grant, until it ends."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        DENIED = "denied", "Denied"
        REVOKED = "revoked", "Revoked"
        EXPIRED = "expired", "Expired"

    product = models.ForeignKey(
        DataProduct, on_delete=models.CASCADE, related_name="access_requests"
    )
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_requests"
    )
    team = models.ForeignKey(
        "domains.Team",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="access_requests",
        help_text="Grant the whole team instead of only you.",
    )
    purpose = models.TextField()
    duration_days = models.PositiveIntegerField(default=90)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_comment = models.TextField(blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    status__in=["pending", "approved", "denied", "revoked", "expired"]
                ),
                name="accessrequest_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(duration_days__gte=1, duration_days__lte=730),
                name="accessrequest_duration_range",
            ),
        ]
        indexes = [models.Index(fields=["status", "expires_at"], name="accessrequest_expiry")]

    def __str__(self) -> str:
        return f"{self.requester} → {self.product} ({self.status})"


class DataProductUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(DataProduct, on_delete=models.CASCADE)


class DataProductGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(DataProduct, on_delete=models.CASCADE)


class ContractVersion(models.Model):
    """One version of a product's data contract (products.contracts.services): a snapshot of what the
    contract promises (metadata, ports, fields, SLOs, kept ODCS extras), the exported ODCS
    document, and the changelog against the previous version."""

    product = models.ForeignKey(
        DataProduct, on_delete=models.CASCADE, related_name="contract_versions"
    )
    number = models.PositiveIntegerField()
    version = models.CharField(max_length=40, help_text="The product's version at the time.")
    snapshot = models.JSONField()
    extras = models.TextField(
        blank=True, help_text="ODCS content the portal does not map, as JSON (order kept)."
    )
    document = models.TextField(help_text="The ODCS YAML document of this version.")
    changelog = models.JSONField(default=list)
    breaking = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["product", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["product", "number"], name="contractversion_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.product} contract #{self.number} (v{self.version})"


class InputPort(models.Model):
    """A product's declared input: another product's output port, or an external source.

    `source_product` copies `source_port.product` so that graph queries walk product-to-product
    edges on one indexed table without joining ports.
    """

    class ExternalKind(models.TextChoices):
        DATABASE = "database", "Database"
        API = "api", "API"
        FILE = "file", "File"
        STREAM = "stream", "Stream"
        SAAS = "saas", "SaaS application"
        OTHER = "other", "Other"

    product = models.ForeignKey(DataProduct, on_delete=models.CASCADE, related_name="input_ports")
    source_port = models.ForeignKey(
        OutputPort, null=True, blank=True, on_delete=models.CASCADE, related_name="consumers"
    )
    source_product = models.ForeignKey(
        DataProduct, null=True, blank=True, on_delete=models.CASCADE, related_name="consumer_inputs"
    )
    external_name = models.CharField(
        max_length=200, blank=True, help_text="An external source, e.g. 'Salesforce CRM'."
    )
    external_kind = models.CharField(max_length=10, choices=ExternalKind.choices, blank=True)
    description = models.CharField(max_length=300, blank=True)
    # False when the source is restricted and the declaring user had no approved access.
    approved = models.BooleanField(default=True)
    # The ODPS input port's content the portal has no field for (products.contracts.odps).
    odps_kept = models.JSONField(default=dict, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["product", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["product", "source_port"],
                name="inputport_unique_source_port",
                condition=models.Q(source_port__isnull=False),
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(source_port__isnull=False, source_product__isnull=False)
                    | models.Q(source_port__isnull=True, source_product__isnull=True)
                    & ~models.Q(external_name="")
                ),
                name="inputport_port_or_external",
            ),
        ]
        indexes = [
            models.Index(fields=["source_product", "product"], name="inputport_down"),
            models.Index(fields=["product", "source_product"], name="inputport_up"),
        ]

    def __str__(self) -> str:
        source = self.source_port or self.external_name
        return f"{self.product} ← {source}"


class Watch(models.Model):
    """A user follows a product or a whole domain and is notified of its changes."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="watches"
    )
    product = models.ForeignKey(
        DataProduct, null=True, blank=True, on_delete=models.CASCADE, related_name="watches"
    )
    domain = models.ForeignKey(
        "domains.Domain", null=True, blank=True, on_delete=models.CASCADE, related_name="watches"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "watches"
        constraints = [
            models.UniqueConstraint(
                fields=["user", "product"],
                name="watch_unique_product",
                condition=models.Q(product__isnull=False),
            ),
            models.UniqueConstraint(
                fields=["user", "domain"],
                name="watch_unique_domain",
                condition=models.Q(domain__isnull=False),
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(product__isnull=False, domain__isnull=True)
                    | models.Q(product__isnull=True, domain__isnull=False)
                ),
                name="watch_product_xor_domain",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} watches {self.product or self.domain}"


class ProductEmbedding(models.Model):
    """A product's meaning as a unit vector (float32 bytes), for semantic search.

    Written by products.discovery.semantic (the embed_products task, `reindex`, the seeders);
    `text_hash` is the hash of the text it was computed from, so an unchanged product is not
    computed again. A plain binary column on every database, SQLite included, where the vector
    maths runs in Python (NumPy); where PostgreSQL has pgvector, also a `vector` column with an
    HNSW index that the database searches (products.discovery.pgvector, outside this model)."""

    product = models.OneToOneField(
        DataProduct, on_delete=models.CASCADE, primary_key=True, related_name="embedding"
    )
    model = models.CharField(max_length=100)
    text_hash = models.CharField(max_length=64)
    vector = models.BinaryField()
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    def __str__(self) -> str:
        return f"{self.model} embedding of product {self.product_id}"
