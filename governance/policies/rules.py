"""The rule-type registry. A rule type checks the WHOLE product set in a few queries.

A new rule type is one class:

    @register
    class HasTags(RuleType):
        key, label = "tags", "Tags"
        class Params(forms.Form):
            min_tags = forms.IntegerField(min_value=0, initial=1)
        def evaluate(self, products, params):
            rows = products.annotate(n=Count("tags")).values_list("pk", "n")
            return {pk: [f"has {n} tags, needs {params['min_tags']}"]
                    for pk, n in rows if n < params["min_tags"]}

`evaluate` gets a DataProduct queryset (use it as a subquery, never as a list of ids) and the
cleaned parameters; it returns {product_id: [reason, ...]} for failing products only.
"""

import re
from collections import defaultdict
from typing import Any, ClassVar

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Length

from meshportal.text import plural
from products.models import DataProduct, OutputPort, SchemaField

SNAKE_CASE = r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$"
KEBAB_CASE = r"^[a-z0-9]+(-[a-z0-9]+)*$"
STYLE_NAMES = {SNAKE_CASE: "snake_case", KEBAB_CASE: "kebab-case"}
CLASSIFICATION_ORDER = ["public", "internal", "confidential", "restricted"]

Failures = dict[int, list[str]]


class RegexField(forms.CharField):
    def __init__(self, **kwargs):
        super().__init__(required=False, max_length=300, **kwargs)

    def clean(self, value):
        value = super().clean(value)
        if value:
            try:
                re.compile(value)
            except re.error as e:
                raise ValidationError(f"Not a valid regular expression: {e}.") from e
        return value


class RuleType:
    key: ClassVar[str]
    label: ClassVar[str]
    help: ClassVar[str] = ""
    fix: ClassVar[str] = ""  # how a product owner makes the policy pass, in plain words

    class Params(forms.Form):
        pass

    def clean_params(self, data: dict[str, Any] | None) -> dict[str, Any]:
        """Validated parameters with defaults filled in; ValidationError names each bad one."""
        data = dict(data or {})
        form = self.Params(data={**self.defaults(), **data})
        unknown = set(data) - set(form.fields)
        errors = [f"{name}: unknown parameter for {self.label}." for name in sorted(unknown)]
        if not form.is_valid():
            errors += [f"{name}: {' '.join(map(str, msgs))}" for name, msgs in form.errors.items()]
        if errors:
            raise ValidationError({"parameters": errors})
        return form.cleaned_data

    def defaults(self) -> dict[str, Any]:
        return {
            name: f.initial for name, f in self.Params.base_fields.items() if f.initial is not None
        }

    def evaluate(self, products: QuerySet, params: dict[str, Any]) -> Failures:
        raise NotImplementedError

    def fix_hint(self, params: dict[str, Any]) -> str:
        return self.fix.format(**params)


_registry: dict[str, RuleType] = {}


def register(cls: type[RuleType]) -> type[RuleType]:
    _registry[cls.key] = cls()
    return cls


def get(key: str) -> RuleType:
    try:
        return _registry[key]
    except KeyError:
        raise ValidationError({"rule_type": f"Unknown rule type “{key}”."}) from None


def all_types() -> list[RuleType]:
    return sorted(_registry.values(), key=lambda r: r.label)


def choices() -> list[tuple[str, str]]:
    return [(r.key, r.label) for r in all_types()]


def _style(regex: str) -> str:
    return STYLE_NAMES.get(regex, f"matching {regex}")


def _fields(products: QuerySet) -> QuerySet:
    return SchemaField.objects.filter(port__product__in=products.values("pk"))


@register
class NamingRule(RuleType):
    key, label = "naming", "Naming conventions"
    help = "Product slugs, port and table names, and field names match regular expressions."
    fix = "Rename what is listed so it follows the convention (leave a pattern empty to skip it)."

    class Params(forms.Form):
        product_slug_regex = RegexField(initial="")
        port_regex = RegexField(
            initial="", help_text="Port slugs and the table name of table/view ports."
        )
        field_regex = RegexField(initial=SNAKE_CASE)

    def evaluate(self, products, params):
        out: Failures = defaultdict(list)
        if rx := params["product_slug_regex"]:
            pat = re.compile(rx)
            for pk, slug in products.values_list("pk", "slug"):
                if not pat.search(slug):
                    out[pk].append(f"product slug `{slug}` is not {_style(rx)}")
        if rx := params["port_regex"]:
            pat = re.compile(rx)
            ports = OutputPort.objects.filter(product__in=products.values("pk"))
            for pk, slug, kind, location in ports.values_list(
                "product_id", "slug", "kind", "location"
            ):
                if not pat.search(slug):
                    out[pk].append(f"port `{slug}` is not {_style(rx)}")
                table = location.rsplit(".", 1)[-1] if kind in ("table", "view") else ""
                if table and not pat.search(table):
                    out[pk].append(f"table `{table}` of port `{slug}` is not {_style(rx)}")
        if rx := params["field_regex"]:
            pat = re.compile(rx)
            for pk, name in (
                _fields(products)
                .values_list("port__product_id", "name")
                .order_by("port__product_id", "port__slug", "ordinal", "name")
            ):
                if not pat.search(name):
                    out[pk].append(f"field `{name}` is not {_style(rx)}")
        return dict(out)


@register
class DocumentationRule(RuleType):
    key, label = "documentation", "Documentation"
    help = "Summary and description present with minimum lengths; most fields described."
    fix = (
        "Write a summary of at least {min_summary_length} and a description of at least "
        "{min_description_length} characters, and describe at least {min_field_description_pct}% "
        "of the fields."
    )

    class Params(forms.Form):
        min_summary_length = forms.IntegerField(min_value=0, initial=20)
        min_description_length = forms.IntegerField(min_value=0, initial=50)
        min_field_description_pct = forms.IntegerField(min_value=0, max_value=100, initial=80)

    def evaluate(self, products, params):
        out: Failures = defaultdict(list)
        rows = products.annotate(sl=Length("summary"), dl=Length("description")).values_list(
            "pk", "sl", "dl"
        )
        for pk, sl, dl in rows:
            if sl < params["min_summary_length"]:
                out[pk].append(f"summary has {sl} characters, needs {params['min_summary_length']}")
            if dl < params["min_description_length"]:
                out[pk].append(
                    f"description has {dl} characters, needs {params['min_description_length']}"
                )
        pct = params["min_field_description_pct"]
        if pct:
            shares = (
                _fields(products)
                .values("port__product_id")
                .annotate(n=Count("pk"), described=Count("pk", filter=~Q(description="")))
                .values_list("port__product_id", "n", "described")
            )
            for pk, n, described in shares:
                if described * 100 < pct * n:
                    out[pk].append(
                        f"{described} of {plural(n, 'field')} "
                        f"{'has' if n == 1 else 'have'} a description "
                        f"({described * 100 // n}%), needs {pct}%"
                    )
        return dict(out)

    def fix_hint(self, params: dict[str, Any]) -> str:
        # Only the requirements the parameters set: a 0 asks nothing, and is not said.
        summary, description = params["min_summary_length"], params["min_description_length"]
        pct = params["min_field_description_pct"]
        parts = []
        if summary:
            parts.append(f"a summary of at least {plural(summary, 'character')}")
        if description:
            parts.append(f"a description of at least {plural(description, 'character')}")
        asks = []
        if parts:
            asks.append("write " + " and ".join(parts))
        if pct >= 100:
            asks.append("describe every field")
        elif pct:
            asks.append(f"describe at least {pct}% of the fields")
        if not asks:
            return "Nothing to do: this policy's parameters ask for no documentation."
        text = ", and ".join(asks)
        return text[0].upper() + text[1:] + "."


@register
class OwnershipRule(RuleType):
    key, label = "ownership", "Ownership"
    help = "The owning team has enough members and a contact e-mail."
    fix = (
        "Add people to the owning team (at least {min_members}) and set the team's contact e-mail."
    )

    class Params(forms.Form):
        min_members = forms.IntegerField(min_value=0, initial=2)
        require_contact = forms.BooleanField(required=False, initial=True)

    def evaluate(self, products, params):
        from domains.models import Team

        teams = {
            pk: (name, contact, n)
            for pk, name, contact, n in Team.objects.filter(pk__in=products.values("owner_team_id"))
            .annotate(n=Count("memberships"))
            .values_list("pk", "name", "contact_email", "n")
        }
        out: Failures = {}
        for pk, team_id in products.values_list("pk", "owner_team_id"):
            name, contact, n = teams[team_id]
            reasons = []
            if n < params["min_members"]:
                reasons.append(
                    f"owner team {name} has {n} member(s), needs {params['min_members']}"
                )
            if params["require_contact"] and not contact:
                reasons.append(f"owner team {name} has no contact e-mail")
            if reasons:
                out[pk] = reasons
        return out


@register
class ClassificationRule(RuleType):
    key, label = "classification", "Classification"
    help = "A classification is set, and products with PII fields are classified high enough."
    fix = "Set the classification to {pii_min_classification} or higher, or unflag fields that are not PII."

    class Params(forms.Form):
        pii_min_classification = forms.ChoiceField(
            choices=DataProduct.Classification.choices, initial="confidential"
        )

    def evaluate(self, products, params):
        floor = CLASSIFICATION_ORDER.index(params["pii_min_classification"])
        pii = SchemaField.objects.filter(port__product=OuterRef("pk"), pii=True)
        out: Failures = {}
        for pk, level, has_pii in products.annotate(pii=Exists(pii)).values_list(
            "pk", "classification", "pii"
        ):
            if not level:
                out[pk] = ["no classification is set"]
            elif has_pii and CLASSIFICATION_ORDER.index(level) < floor:
                out[pk] = [
                    f"has PII fields but is classified {level}; needs at least "
                    f"{params['pii_min_classification']}"
                ]
        return out


@register
class SchemaRule(RuleType):
    key, label = "schema", "Schema"
    help = "Every table or view port declares fields and a primary key."
    fix = "Declare the fields of each table or view port and mark its primary key."

    def evaluate(self, products, params):
        ports = OutputPort.objects.filter(
            product__in=products.values("pk"), kind__in=["table", "view"]
        ).annotate(n=Count("fields"), keys=Count("fields", filter=Q(fields__primary_key=True)))
        # Meta.ordering does not apply to GROUP BY queries: without this the reasons' order, and
        # so the recorded outcome, would change from one evaluation to the next.
        ports = ports.order_by("product_id", "slug")
        out: Failures = defaultdict(list)
        for pk, slug, n, keys in ports.values_list("product_id", "slug", "n", "keys"):
            if not n:
                out[pk].append(f"port `{slug}` declares no fields")
            elif not keys:
                out[pk].append(f"port `{slug}` has no primary key")
        return dict(out)


@register
class FreshnessRule(RuleType):
    key, label = "freshness", "Freshness SLO"
    help = "A freshness SLO is declared (optionally no looser than a maximum)."
    fix = "Declare how fresh the data is (freshness SLO, in hours)."

    class Params(forms.Form):
        max_hours = forms.IntegerField(
            min_value=1, required=False, help_text="Empty: any declared SLO passes."
        )

    def evaluate(self, products, params):
        out: Failures = {}
        limit = params.get("max_hours")
        for pk, hours in products.values_list("pk", "freshness_slo_hours"):
            if hours is None:
                out[pk] = ["no freshness SLO is declared"]
            elif limit and hours > limit:
                out[pk] = [f"freshness SLO is {hours} h, must be at most {limit} h"]
        return out


@register
class GlossaryRule(RuleType):
    key, label = "glossary", "Glossary usage"
    help = "A share of the fields is linked to glossary terms."
    fix = "Link at least {min_linked_pct}% of the fields to glossary terms."

    class Params(forms.Form):
        min_linked_pct = forms.IntegerField(min_value=0, max_value=100, initial=50)

    def evaluate(self, products, params):
        pct = params["min_linked_pct"]
        shares = (
            _fields(products)
            .values("port__product_id")
            .annotate(n=Count("pk"), linked=Count("glossary_term"))
            .values_list("port__product_id", "n", "linked")
        )
        return {
            pk: [
                f"{linked} of {n} fields are linked to glossary terms "
                f"({linked * 100 // n}%), needs {pct}%"
            ]
            for pk, n, linked in shares
            if linked * 100 < pct * n
        }


@register
class LifecycleRule(RuleType):
    key, label = "lifecycle", "Lifecycle"
    help = "A deprecated product names its sunset date and its replacement."
    fix = "Set the sunset date and the replacement product."

    def evaluate(self, products, params):
        out: Failures = {}
        rows = products.filter(status=DataProduct.Status.DEPRECATED).values_list(
            "pk", "sunset_date", "replacement_id"
        )
        for pk, sunset, replacement in rows:
            reasons = []
            if sunset is None:
                reasons.append("is deprecated without a sunset date")
            if replacement is None:
                reasons.append("is deprecated without a replacement")
            if reasons:
                out[pk] = reasons
        return out


@register
class QualityCoverageRule(RuleType):
    key, label = "quality_coverage", "Quality coverage"
    help = (
        "Every table or view port has enough enabled quality checks, and the checks' pass "
        "rate over recent days is high enough."
    )
    fix = (
        "Add quality checks on the Quality tab (at least {min_checks} per table or view port) "
        "and fix what makes them fail."
    )

    class Params(forms.Form):
        min_checks = forms.IntegerField(min_value=0, initial=1)
        min_pass_rate_pct = forms.IntegerField(
            min_value=0,
            max_value=100,
            required=False,
            initial=90,
            help_text="Empty: only count the checks.",
        )
        days = forms.IntegerField(min_value=1, max_value=365, initial=30)

    def evaluate(self, products, params):
        from datetime import timedelta

        from django.utils import timezone

        from governance.models import QualityRun

        out: Failures = defaultdict(list)
        ports = (
            OutputPort.objects.filter(
                product__in=products.values("pk"),
                kind__in=[OutputPort.Kind.TABLE, OutputPort.Kind.VIEW],
            )
            .annotate(n=Count("quality_checks", filter=Q(quality_checks__enabled=True)))
            .order_by("product_id", "slug")  # a stable order of reasons (no Meta.ordering here)
            .values_list("product_id", "slug", "n")
        )
        for pk, slug, n in ports:
            if n < params["min_checks"]:
                out[pk].append(
                    f"port `{slug}` has {n} quality check{'s' if n != 1 else ''}, "
                    f"needs {params['min_checks']}"
                )
        rate = params.get("min_pass_rate_pct")
        if rate is not None:
            since = timezone.now() - timedelta(days=params["days"])
            rows = (
                QualityRun.objects.filter(
                    quality_check__port__product__in=products.values("pk"),
                    finished_at__gte=since,
                    status__in=["passed", "failed", "error"],
                )
                .values("quality_check__port__product_id")
                .annotate(
                    total=Count("pk"),
                    passed=Count("pk", filter=Q(status="passed")),
                )
                .values_list("quality_check__port__product_id", "total", "passed")
            )
            for pk, total, passed in rows:
                if passed * 100 < rate * total:
                    out[pk].append(
                        f"{passed} of {total} check runs passed in the last "
                        f"{params['days']} days ({passed * 100 // total}%), "
                        f"needs {rate}%"
                    )
        return dict(out)
