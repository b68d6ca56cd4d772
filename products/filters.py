"""One FilterSet for products, used by the pages and the API alike."""

import django_filters

from domains.models import Domain, Team
from meshportal.forms import FastSelectMultiple

from .models import DataProduct, OutputPort
from .search import search_products


class DataProductFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="filter_q", label="Search")
    domain = django_filters.ModelMultipleChoiceFilter(
        field_name="domain__slug",
        to_field_name="slug",
        queryset=Domain.objects.all(),
        distinct=False,
        widget=FastSelectMultiple,
    )
    owner_team = django_filters.ModelMultipleChoiceFilter(
        field_name="owner_team__slug",
        to_field_name="slug",
        queryset=Team.objects.all(),
        distinct=False,
        widget=FastSelectMultiple,
    )
    # distinct=False: these follow foreign keys (no duplicate rows), and SELECT DISTINCT over
    # every column made the 10,000-product list 5x slower (make bench).
    status = django_filters.MultipleChoiceFilter(choices=DataProduct.Status.choices, distinct=False)
    classification = django_filters.MultipleChoiceFilter(
        choices=DataProduct.Classification.choices, distinct=False
    )
    tag = django_filters.CharFilter(field_name="tags__slug", method="filter_tag")
    # The quality app keeps each product's state (governance.ProductQuality.state).
    quality = django_filters.MultipleChoiceFilter(
        field_name="quality_state__state",
        choices=[("passing", "Passing"), ("failing", "Failing"), ("unchecked", "Not yet checked")],
        distinct=False,
    )
    port_kind = django_filters.MultipleChoiceFilter(
        choices=OutputPort.Kind.choices, method="filter_port_kind", distinct=False
    )

    class Meta:
        model = DataProduct
        fields = [
            "q",
            "domain",
            "owner_team",
            "status",
            "classification",
            "tag",
            "port_kind",
            "quality",
        ]

    def filter_q(self, queryset, name, value):
        # Full-text on PostgreSQL, a simpler fallback on SQLite; ordered best match first.
        return search_products(queryset, value)

    def filter_tag(self, queryset, name, value):
        from .models import Tag

        return queryset.filter(
            pk__in=Tag.products.through.objects.filter(tag__slug=value).values("dataproduct_id")
        )

    def filter_port_kind(self, queryset, name, value):
        if not value:
            return queryset
        return queryset.filter(
            pk__in=OutputPort.objects.filter(kind__in=value).values("product_id")
        )


class ProductUrnFilter(django_filters.CharFilter):
    """`?product=urn:mesh:<domain>:<product>` (or `<domain>/<product>`) on rows that point at a
    product through `field_name` (e.g. "port__product"). An unknown reference matches nothing."""

    def __init__(self, *, field_name: str = "product", **kwargs):
        kwargs.setdefault("label", "Product URN")
        super().__init__(field_name=field_name, **kwargs)

    def filter(self, qs, value):
        if value in ("", None):
            return qs
        parts = (
            value.split(":")[2:] if value.startswith("urn:mesh:") else value.strip("/").split("/")
        )
        if len(parts) != 2:
            return qs.none()
        return qs.filter(
            **{f"{self.field_name}__domain__slug": parts[0], f"{self.field_name}__slug": parts[1]}
        )
