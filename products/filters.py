"""One FilterSet for products, used by the pages and the API alike."""

import django_filters

from domains.models import Domain, Team
from meshportal.forms import FastSelectMultiple
from products.discovery.search import search_products
from products.models import DataProduct, OutputPort


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

    def get_form_class(self):
        """The form, built once per class: no field here depends on the request (static choices
        and querysets), and django-filter's building a new form class for every request (each
        filter's field, the form metaclass, its media) was two-thirds of validating a search's
        filters (py-spy, "orders" at 10,000 products: 7 % of the page's time)."""
        cls = type(self)
        built = cls.__dict__.get("_built_form")
        if built is None:
            built = super().get_form_class()
            cls._built_form = built
        return built

    def filter_q(self, queryset, name, value):
        # Full-text on PostgreSQL, a simpler fallback on SQLite; ordered best match first.
        return search_products(queryset, value)

    def filter_tag(self, queryset, name, value):
        from products.models import Tag

        return queryset.filter(
            pk__in=Tag.products.through.objects.filter(tag__slug=value).values("dataproduct_id")
        )

    def filter_port_kind(self, queryset, name, value):
        if not value:
            return queryset
        return queryset.filter(
            pk__in=OutputPort.objects.filter(kind__in=value).values("product_id")
        )


def _request_user(f):
    request = getattr(f.parent, "request", None)
    return getattr(request, "user", None)


class ProductUrnFilter(django_filters.CharFilter):
    """`?product=urn:mesh:<domain>:<product>` (or `<domain>/<product>`) on rows that point at a
    product through `field_name` (e.g. "port__product").

    The reference is resolved as the requesting user sees the mesh (selectors.visible_by_ref):
    a product that does not exist and one the user may not see (another team's draft) both
    match nothing, so the answer (status and body) is the same and tells nobody a draft exists.
    Every list filter by product uses this filter, never its own lookup."""

    def __init__(self, *, field_name: str = "product", **kwargs):
        kwargs.setdefault("label", "Product URN")
        super().__init__(field_name=field_name, **kwargs)

    def filter(self, qs, value):
        if value in ("", None):
            return qs
        from products.selectors import visible_by_ref

        pk = visible_by_ref(user=_request_user(self), ref=value)
        if pk is None:
            return qs.none()
        return qs.filter(**{self.field_name: pk})


def visible_to_requester(model):
    """A queryset callable for ModelChoiceFilters: only the rows the requesting user may see,
    so that `?port=<id of a hidden draft's port>` is refused exactly like an id that does not
    exist ("Select a valid choice"), instead of answering an empty list."""

    def queryset(request):
        from meshportal.permissions import visible

        return visible(getattr(request, "user", None), model.objects.all())

    return queryset
