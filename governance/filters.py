"""FilterSets for governance and quality lists (the API's; pages filter with the same names)."""

import django_filters
from django import forms
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from domains.models import Domain
from governance.models import (
    Compliance,
    ComplianceChange,
    Incident,
    Policy,
    QualityCheck,
    QualityRun,
    Waiver,
)
from governance.policies import rules
from products.filters import ProductUrnFilter, visible_to_requester
from products.models import OutputPort


@extend_schema_field(OpenApiTypes.STR)
class SlugFilter(django_filters.ModelChoiceFilter):
    """An object named by its slug (`?domain=orders`)."""


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(django_filters.NumberFilter):
    """An object's id: a whole number within the database's integer range. Anything else
    (`1.5`, `-2.7e246`) is a 400 naming the filter, never an overflow in the database."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(*args, **kwargs)


class PolicyFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=Policy.Status.choices)
    severity = django_filters.ChoiceFilter(choices=Policy.Severity.choices)
    rule_type = django_filters.ChoiceFilter(choices=rules.choices)
    domain = SlugFilter(field_name="domain", to_field_name="slug", queryset=Domain.objects.all())
    scope = django_filters.ChoiceFilter(
        choices=[("global", "Global"), ("domain", "One domain")], method="filter_scope"
    )

    class Meta:
        model = Policy
        fields = ["status", "severity", "rule_type", "domain", "scope"]

    def filter_scope(self, queryset, name, value):
        return queryset.filter(domain__isnull=value == "global")


class ComplianceFilter(django_filters.FilterSet):
    product = ProductUrnFilter()
    policy = django_filters.CharFilter(field_name="policy__key", label="Policy key")
    outcome = django_filters.ChoiceFilter(choices=Compliance.Outcome.choices)
    waived = django_filters.BooleanFilter()

    class Meta:
        model = Compliance
        fields = ["product", "policy", "outcome", "waived"]


class ComplianceChangeFilter(django_filters.FilterSet):
    product = ProductUrnFilter()
    policy = django_filters.CharFilter(field_name="policy__key", label="Policy key")
    outcome = django_filters.ChoiceFilter(choices=Compliance.Outcome.choices)

    class Meta:
        model = ComplianceChange
        fields = ["product", "policy", "outcome"]


class WaiverFilter(django_filters.FilterSet):
    product = ProductUrnFilter()
    policy = django_filters.CharFilter(field_name="policy__key", label="Policy key")
    status = django_filters.MultipleChoiceFilter(choices=Waiver.Status.choices)

    class Meta:
        model = Waiver
        fields = ["product", "policy", "status"]


class QualityCheckFilter(django_filters.FilterSet):
    product = ProductUrnFilter(field_name="port__product")
    port = django_filters.ModelChoiceFilter(queryset=visible_to_requester(OutputPort))
    kind = django_filters.MultipleChoiceFilter(choices=QualityCheck.Kind.choices)
    last_status = django_filters.MultipleChoiceFilter(choices=QualityCheck.Status.choices)

    class Meta:
        model = QualityCheck
        fields = ["product", "port", "kind", "enabled", "last_status"]


class QualityRunFilter(django_filters.FilterSet):
    product = ProductUrnFilter(field_name="quality_check__port__product")
    check = IdFilter(field_name="quality_check_id", label="Check id")
    status = django_filters.MultipleChoiceFilter(choices=QualityRun.Status.choices)
    trigger = django_filters.ChoiceFilter(
        choices=[("schedule", "Schedule"), ("manual", "On demand")]
    )

    class Meta:
        model = QualityRun
        fields = ["product", "check", "status", "trigger"]


class IncidentFilter(django_filters.FilterSet):
    product = ProductUrnFilter()
    status = django_filters.MultipleChoiceFilter(choices=Incident.Status.choices)
    kind = django_filters.ChoiceFilter(choices=Incident.Kind.choices)
    check = IdFilter(field_name="quality_check_id", label="Check id")
    domain = django_filters.CharFilter(field_name="product__domain__slug", label="Domain slug")

    class Meta:
        model = Incident
        fields = ["product", "status", "kind", "check", "domain"]
