from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from domains.models import Domain, Team
from meshportal.permissions import VIEW_CONNECTION, can, visible
from products import selectors, urns
from products.models import AccessRequest, ContractVersion, DataProduct, OutputPort, SchemaField


@extend_schema_field(OpenApiTypes.STR)
class ProductRefField(serializers.RelatedField):
    """A product named by its URN, `urn:mesh:<domain>:<product>` (or `<domain>/<product>`)."""

    default_error_messages = {
        "missing": "No data product {ref} that you may see.",
    }

    def get_queryset(self):
        return visible(self.context["request"].user, selectors.product_queryset())

    def to_internal_value(self, data):
        # The one resolver of product references: a hidden draft fails like an unknown URN.
        ref = str(data)
        pk = selectors.visible_by_ref(user=self.context["request"].user, ref=ref)
        if pk is None:
            self.fail("missing", ref=ref)
        return selectors.product_queryset().get(pk=pk)

    def to_representation(self, value):
        return value.urn


class TagsField(serializers.ListField):
    # Tag.name's rules (max_length, one line) are checked by services.clean_tag_names.
    child = serializers.CharField()

    def to_internal_value(self, data):
        from django.core.exceptions import ValidationError as DjangoValidationError

        from products.services import clean_tag_names

        try:
            return clean_tag_names(super().to_internal_value(data))
        except DjangoValidationError as e:
            raise serializers.ValidationError(e.message_dict["tags"]) from None

    def get_attribute(self, instance):
        return [t.name for t in instance.tags.all()] if instance.pk else []


class FieldSerializer(serializers.ModelSerializer):
    port = serializers.PrimaryKeyRelatedField(queryset=OutputPort.objects.none())
    product = serializers.SerializerMethodField()

    class Meta:
        model = SchemaField
        fields = [
            "id",
            "port",
            "product",
            "name",
            "logical_type",
            "physical_type",
            "description",
            "required",
            "unique",
            "primary_key",
            "pii",
            "ordinal",
        ]
        validators: list = []  # uniqueness is the service's (model) check

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None and "port" in self.fields:
            self.fields["port"].queryset = visible(
                request.user, OutputPort.objects.select_related("product__domain")
            )
        if self.instance is not None and not isinstance(self.instance, list | tuple):
            self.fields["port"].read_only = True

    def get_product(self, obj) -> str:
        return obj.port.product.urn


class PortFieldSerializer(serializers.ModelSerializer):
    class Meta:
        model = SchemaField
        fields = [
            "id",
            "name",
            "logical_type",
            "physical_type",
            "description",
            "required",
            "unique",
            "primary_key",
            "pii",
            "ordinal",
        ]


class PortSerializer(serializers.ModelSerializer):
    product = ProductRefField()
    # mypy sees Serializer.fields here, but DRF's metaclass takes declared fields off the class.
    fields = PortFieldSerializer(many=True, read_only=True)  # type: ignore[assignment]
    location = serializers.CharField(
        max_length=500,
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text="Connection detail: null unless you are the owning team or an approved consumer.",
    )

    data_source = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=OutputPort._meta.get_field("data_source").related_model._default_manager.all(),
        required=False,
        allow_null=True,
        help_text="Slug of the registered data source quality checks read (one open to the "
        "product's team). Connection detail: null unless you are the owning team or an "
        "approved consumer.",
    )

    class Meta:
        model = OutputPort
        fields = [
            "id",
            "product",
            "slug",
            "name",
            "kind",
            "location",
            "data_source",
            "format",
            "description",
            "fields",
        ]
        extra_kwargs = {"slug": {"required": False}}
        validators: list = []  # uniqueness is the service's (model) check

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance is not None and not isinstance(self.instance, list | tuple):
            self.fields["product"].read_only = True

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if not can(self.context["request"].user, VIEW_CONNECTION, instance.product):
            data["location"] = data["data_source"] = None
        return data

    def validate_location(self, value):
        return value or ""


# ProductSerializer's values that a row of selectors.product_rows brings ready to give.
_ROW_READY = frozenset({"urn", "domain", "owner_team", "replacement", "tags"})
_ROW_PLANS: dict[type, list] = {}


class ProductSerializer(serializers.ModelSerializer):
    urn = serializers.CharField(read_only=True)
    domain = serializers.SlugRelatedField(slug_field="slug", queryset=Domain.objects.all())
    owner_team = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Team.objects.all(),
        required=False,
        help_text="Defaults to the domain's team.",
    )
    replacement = serializers.SerializerMethodField()
    tags = TagsField(required=False)

    class Meta:
        model = DataProduct
        fields = [
            "urn",
            "domain",
            "slug",
            "name",
            "summary",
            "description",
            "status",
            "version",
            "classification",
            "tags",
            "owner_team",
            "freshness_slo_hours",
            "availability_slo",
            "sunset_date",
            "replacement",
            "published_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["status", "sunset_date", "published_at"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance is not None and not isinstance(self.instance, list | tuple):
            self.fields["domain"].read_only = True
            self.fields["slug"].read_only = True

    # A row of selectors.product_rows: its own columns, which go through their fields'
    # to_representation as a model instance's attributes do, and values given as they are.
    ROW_COLUMNS = tuple(f for f in Meta.fields if f not in _ROW_READY)

    def to_representation(self, instance):
        if not isinstance(instance, dict):
            return super().to_representation(instance)
        plan = _ROW_PLANS.get(type(self))
        if plan is None:
            # Once per process, from a serializer of its own: converting a column's value asks
            # nothing of the request, and so this one never builds its fields (a
            # ModelSerializer reads its model's fields again each time: ~1 ms).
            plan = _ROW_PLANS[type(self)] = [
                (f.field_name, None if f.field_name in _ROW_READY else f.to_representation)
                for f in type(self)()._readable_fields
            ]
        out = {}
        for name, convert in plan:
            value = instance[name]
            out[name] = value if convert is None or value is None else convert(value)
        return out

    def get_replacement(self, obj) -> str | None:
        return (
            urns.format_urn(obj.replacement.domain.slug, obj.replacement.slug)
            if obj.replacement_id
            else None
        )


class ProductDetailSerializer(ProductSerializer):
    ports = serializers.SerializerMethodField()

    class Meta(ProductSerializer.Meta):
        fields = [*ProductSerializer.Meta.fields, "ports"]

    @extend_schema_field(PortSerializer(many=True))
    def get_ports(self, obj):
        return PortSerializer(obj.ports.all(), many=True, context=self.context).data


class LifecycleResultSerializer(ProductDetailSerializer):
    changed = serializers.BooleanField(
        read_only=True,
        help_text="false when the product was already in the state asked for (nothing happened)",
    )

    class Meta(ProductDetailSerializer.Meta):
        fields = [*ProductDetailSerializer.Meta.fields, "changed"]


class DeprecateSerializer(serializers.Serializer):
    sunset_date = serializers.DateField(required=False, allow_null=True)
    replacement = ProductRefField(required=False, allow_null=True)


class AccessRequestSerializer(serializers.ModelSerializer):
    product = ProductRefField()
    requester = serializers.CharField(source="requester.username", read_only=True)
    team = serializers.SlugRelatedField(
        slug_field="slug", queryset=Team.objects.all(), required=False, allow_null=True
    )
    decided_by = serializers.CharField(
        source="decided_by.username", read_only=True, allow_null=True, default=None
    )

    class Meta:
        model = AccessRequest
        fields = [
            "id",
            "product",
            "requester",
            "team",
            "purpose",
            "duration_days",
            "status",
            "decided_by",
            "decided_at",
            "decision_comment",
            "expires_at",
            "ended_at",
            "created_at",
        ]
        read_only_fields = ["status", "decided_at", "decision_comment", "expires_at", "ended_at"]


class BasketSerializer(serializers.Serializer):
    """A request basket: several products, one purpose and duration (and optional team)."""

    products = serializers.ListField(
        child=ProductRefField(), min_length=1, max_length=50, help_text="Product URNs."
    )
    purpose = serializers.CharField()
    duration_days = serializers.IntegerField(min_value=1, max_value=730, default=90)
    team = serializers.SlugRelatedField(
        slug_field="slug", queryset=Team.objects.all(), required=False, allow_null=True
    )


class DecisionSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class ChangeSerializer(serializers.Serializer):
    path = serializers.CharField()
    kind = serializers.CharField()
    breaking = serializers.BooleanField()
    message = serializers.CharField()


class ContractVersionSerializer(serializers.ModelSerializer):
    changelog = ChangeSerializer(many=True)
    created_by = serializers.CharField(
        source="created_by.username", read_only=True, allow_null=True, default=None
    )

    class Meta:
        model = ContractVersion
        fields = ["number", "version", "breaking", "changelog", "created_by", "created_at"]


class ContractVersionDetailSerializer(ContractVersionSerializer):
    class Meta(ContractVersionSerializer.Meta):
        fields = [*ContractVersionSerializer.Meta.fields, "document"]


class ContractDiffSerializer(serializers.Serializer):
    from_version = serializers.IntegerField()
    to_version = serializers.IntegerField()
    breaking = serializers.BooleanField()
    changes = ChangeSerializer(many=True)


class ContractImportResultSerializer(serializers.Serializer):
    urn = serializers.CharField()
    created = serializers.BooleanField()
    changed = serializers.BooleanField()
    applied = serializers.BooleanField(help_text="False for a dry run (?dry_run=true).")
    breaking = serializers.BooleanField()
    version = serializers.IntegerField(allow_null=True, help_text="The new contract version.")
    changes = ChangeSerializer(many=True)


class OdpsPathSerializer(serializers.Serializer):
    path = serializers.CharField(help_text="Where in the document.")
    reason = serializers.CharField()


class OdpsImportResultSerializer(serializers.Serializer):
    urn = serializers.CharField()
    created = serializers.BooleanField()
    changed = serializers.BooleanField()
    applied = serializers.BooleanField(help_text="False for a dry run (?dry_run=true).")
    changes = serializers.ListField(child=serializers.CharField())
    ignored = OdpsPathSerializer(
        many=True, help_text="What the portal did not take from the document, and why."
    )
    kept = OdpsPathSerializer(
        many=True,
        help_text=(
            "What the portal has no field for but keeps as it came and writes back on export."
        ),
    )
