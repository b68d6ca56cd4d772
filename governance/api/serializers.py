from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from domains.models import Domain
from governance.models import (
    Compliance,
    ComplianceChange,
    Incident,
    IncidentEvent,
    Policy,
    PolicyVote,
    QualityCheck,
    QualityRun,
    Waiver,
)
from governance.policies import rules
from meshportal.permissions import visible
from products import connection
from products.api.serializers import ProductRefField
from products.models import OutputPort

# -- policies ----------------------------------------------------------------------------------


class VoteSerializer(serializers.ModelSerializer):
    voter = serializers.CharField(source="voter.username", read_only=True)

    class Meta:
        model = PolicyVote
        fields = ["voter", "decision", "comment", "created_at", "updated_at"]


class PolicySerializer(serializers.ModelSerializer):
    rule_type = serializers.ChoiceField(choices=[])
    parameters = serializers.DictField(
        required=False,
        default=dict,
        help_text="Validated against the rule type; missing ones take its defaults.",
    )
    domain = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Domain.objects.all(),
        required=False,
        allow_null=True,
        default=None,
        help_text="Empty: a global policy the council votes on. A domain: its owners adopt it "
        "at once.",
    )
    proposed_by = serializers.CharField(
        source="proposed_by.username", read_only=True, allow_null=True, default=None
    )
    approvals = serializers.IntegerField(read_only=True, default=0)
    rejections = serializers.IntegerField(read_only=True, default=0)

    class Meta:
        model = Policy
        fields = [
            "key",
            "title",
            "rationale",
            "rule_type",
            "parameters",
            "severity",
            "domain",
            "status",
            "proposed_by",
            "approvals",
            "rejections",
            "activated_at",
            "retired_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["status", "activated_at", "retired_at"]
        validators: list = []  # key uniqueness is the model's check, run by the service

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["rule_type"].choices = rules.choices()


class PolicyDetailSerializer(PolicySerializer):
    votes = VoteSerializer(many=True, read_only=True)
    fix = serializers.SerializerMethodField(help_text="How a product owner makes it pass.")

    class Meta(PolicySerializer.Meta):
        fields = [*PolicySerializer.Meta.fields, "votes", "fix"]

    def get_fix(self, obj) -> str:
        rule = rules.get(obj.rule_type)
        try:
            return rule.fix_hint(rule.clean_params(obj.parameters))
        except Exception:  # noqa: BLE001 - stored parameters a rule no longer accepts
            return ""


class VoteRequestSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=PolicyVote.Decision.choices)
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class ComplianceSerializer(serializers.ModelSerializer):
    policy = serializers.CharField(source="policy.key", read_only=True)
    severity = serializers.CharField(source="policy.severity", read_only=True)
    product = serializers.CharField(source="product.urn", read_only=True)
    waived = serializers.BooleanField(read_only=True)

    class Meta:
        model = Compliance
        fields = ["policy", "severity", "product", "outcome", "reason", "waived", "changed_at"]


class ComplianceChangeSerializer(serializers.ModelSerializer):
    policy = serializers.CharField(source="policy.key", read_only=True)
    product = serializers.CharField(source="product.urn", read_only=True)

    class Meta:
        model = ComplianceChange
        fields = ["policy", "product", "outcome", "reason", "run", "created_at"]


class EvaluationQueuedSerializer(serializers.Serializer):
    queued = serializers.BooleanField(
        help_text="False when the task queue is down: the request is kept and sent later."
    )
    detail = serializers.CharField()


# -- waivers -----------------------------------------------------------------------------------


class WaiverSerializer(serializers.ModelSerializer):
    policy = serializers.SlugRelatedField(slug_field="key", queryset=Policy.objects.all())
    product = ProductRefField()
    requested_by = serializers.CharField(
        source="requested_by.username", read_only=True, allow_null=True, default=None
    )
    decided_by = serializers.CharField(
        source="decided_by.username", read_only=True, allow_null=True, default=None
    )

    class Meta:
        model = Waiver
        fields = [
            "id",
            "policy",
            "product",
            "justification",
            "status",
            "requested_by",
            "decided_by",
            "decided_at",
            "decision_reason",
            "expires_at",
            "created_at",
        ]
        read_only_fields = ["status", "decided_at", "decision_reason", "expires_at"]


class WaiverGrantSerializer(serializers.Serializer):
    decision_reason = serializers.CharField()
    expires_at = serializers.DateTimeField(help_text="When the waiver ends (in the future).")


class WaiverDenySerializer(serializers.Serializer):
    decision_reason = serializers.CharField()


# -- quality -----------------------------------------------------------------------------------


class QualityCheckSerializer(serializers.ModelSerializer):
    port = serializers.PrimaryKeyRelatedField(queryset=OutputPort.objects.none())
    product = serializers.SerializerMethodField()
    columns = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, default=list
    )
    params = serializers.DictField(
        required=False,
        default=dict,
        help_text="Per type, as on the check form: row_count {min, max}; missing, duplicates, "
        "accepted_values, pattern, custom_sql {max, unit: count|percent}; accepted_values "
        "{values}; range {min, max, max_failing}; pattern {pattern}; freshness {hours}; "
        "schema {allow_extra}; custom_sql {sql}.",
    )
    last_status = serializers.CharField(
        read_only=True, help_text="passed, failed or error; empty until the first run ends."
    )

    class Meta:
        model = QualityCheck
        fields = [
            "id",
            "port",
            "product",
            "name",
            "kind",
            "columns",
            "params",
            "enabled",
            "interval_minutes",
            "cron",
            "timeout_seconds",
            "last_status",
            "last_run_at",
            "next_run_at",
            "created_at",
        ]
        read_only_fields = ["last_status", "last_run_at", "next_run_at"]
        validators: list = []  # the service checks names and parameters per type

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:
            self.fields["port"].queryset = visible(
                request.user, OutputPort.objects.select_related("product__domain", "data_source")
            )
        if self.instance is not None and not isinstance(self.instance, list | tuple):
            # A check keeps its table and type; define a new check to change them.
            self.fields["port"].read_only = True
            self.fields["kind"].read_only = True

    def get_product(self, obj) -> str:
        return obj.port.product.urn

    def to_representation(self, instance):
        data = super().to_representation(instance)
        request = self.context.get("request")
        port = instance.port
        if request is not None and not connection.sees_connection(request.user, port.product):
            # Custom SQL that names the table reads ${object} for who may not see where it is.
            data["params"] = connection.hide_sql_in(data["params"], [port.location])
        return data


class QualityRunSerializer(serializers.ModelSerializer):
    check = serializers.IntegerField(source="quality_check_id", read_only=True)
    check_name = serializers.CharField(source="quality_check.name", read_only=True)
    product = serializers.SerializerMethodField()
    sample = serializers.ListField(child=serializers.JSONField(), read_only=True)

    class Meta:
        model = QualityRun
        fields = [
            "id",
            "check",
            "check_name",
            "product",
            "status",
            "trigger",
            "observed",
            "threshold",
            "message",
            "sample",
            "duration_ms",
            "queued_at",
            "started_at",
            "finished_at",
        ]

    @extend_schema_field(serializers.CharField())
    def get_product(self, obj) -> str:
        return obj.quality_check.port.product.urn

    def to_representation(self, instance):
        data = super().to_representation(instance)
        port = instance.quality_check.port
        if not connection.sees_connection(self.context["request"].user, port.product):
            # Sampled values and the table's location are for those who may read the data.
            data["sample"] = []
            data["message"] = connection.redact_text(data["message"] or "", [port.location])
        return data


# -- incidents ---------------------------------------------------------------------------------


def _username(user) -> str | None:
    return user.get_username() if user else None


class IncidentEventSerializer(serializers.ModelSerializer):
    by = serializers.SerializerMethodField(help_text="Who did it; null when the portal did.")
    run = serializers.IntegerField(source="run_id", read_only=True, allow_null=True)

    class Meta:
        model = IncidentEvent
        fields = ["kind", "at", "by", "note", "run"]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_by(self, obj) -> str | None:
        return _username(obj.by)


class IncidentSerializer(serializers.ModelSerializer):
    product = serializers.CharField(source="product.urn", read_only=True)
    check = serializers.IntegerField(source="quality_check_id", read_only=True, allow_null=True)
    acknowledged_by = serializers.SerializerMethodField()
    resolved_by = serializers.SerializerMethodField(
        help_text="Who resolved it; null while open or when it was resolved automatically."
    )

    class Meta:
        model = Incident
        fields = [
            "id",
            "product",
            "kind",
            "check",
            "title",
            "status",
            "failures",
            "opened_at",
            "acknowledged_at",
            "acknowledged_by",
            "resolved_at",
            "resolved_by",
            "resolution_note",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_acknowledged_by(self, obj) -> str | None:
        return _username(obj.acknowledged_by)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_resolved_by(self, obj) -> str | None:
        return _username(obj.resolved_by)


class IncidentDetailSerializer(IncidentSerializer):
    timeline = serializers.SerializerMethodField()

    class Meta(IncidentSerializer.Meta):
        fields = [*IncidentSerializer.Meta.fields, "timeline"]
        read_only_fields = fields

    @extend_schema_field(IncidentEventSerializer(many=True))
    def get_timeline(self, obj) -> list:
        from governance.quality import selectors

        return list(
            IncidentEventSerializer(selectors.incident_timeline(incident=obj), many=True).data
        )


class IncidentAcknowledgeSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class IncidentResolveSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=2000, help_text="What was done.")
