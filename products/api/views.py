"""The products API: thin viewsets over products.services, selectors and contracts."""

import json

import django_filters
from django.db import transaction
from django.db.models import Prefetch
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import generics, mixins, parsers, renderers, status, viewsets
from rest_framework.exceptions import APIException, NotFound, PermissionDenied, ValidationError
from rest_framework.response import Response

from domains.models import Domain, Team
from meshportal.api.common import ERROR_RESPONSES
from meshportal.permissions import (
    CREATE_PRODUCT,
    DEPRECATE,
    EDIT,
    OWN,
    PUBLISH,
    RETIRE,
    VIEW,
    can,
    prefetch_product_perms,
    require,
    require_transfer,
    visible,
)
from products import connection, selectors, services, urns
from products.api.serializers import (
    AccessRequestSerializer,
    BasketSerializer,
    ContractDiffSerializer,
    ContractImportResultSerializer,
    ContractVersionDetailSerializer,
    ContractVersionSerializer,
    DecisionSerializer,
    DeprecateSerializer,
    FieldSerializer,
    LifecycleResultSerializer,
    OdpsImportResultSerializer,
    PortSerializer,
    ProductDetailSerializer,
    ProductSerializer,
)
from products.contracts import odps
from products.contracts import services as contracts
from products.filters import DataProductFilter, ProductUrnFilter, visible_to_requester
from products.models import AccessRequest, ContractVersion, DataProduct, OutputPort, SchemaField

PRODUCT_PATH = [
    OpenApiParameter("domain", str, OpenApiParameter.PATH, description="The domain's slug."),
    OpenApiParameter("product", str, OpenApiParameter.PATH, description="The product's slug."),
]


@extend_schema_field(OpenApiTypes.STR)
class SlugsFilter(django_filters.ModelMultipleChoiceFilter):
    """Repeatable slug filter (`?domain=orders&domain=users`)."""


class ApiProductFilter(DataProductFilter):
    """The pages' product filterset; `search` is the same search as the pages' `q`."""

    # The same filters as the pages', typed for the schema.
    domain = SlugsFilter(
        field_name="domain__slug", to_field_name="slug", queryset=Domain.objects.all()
    )
    owner_team = SlugsFilter(
        field_name="owner_team__slug", to_field_name="slug", queryset=Team.objects.all()
    )

    search = django_filters.CharFilter(method="filter_q", label="Search")
    # The shared product-reference filter (hidden drafts answer like unknown URNs).
    urn = ProductUrnFilter(field_name="pk", label="URN")

    class Meta(DataProductFilter.Meta):
        fields = [*DataProductFilter.Meta.fields, "search", "urn"]


class EnforceContractMixin:
    """API writes refuse unannounced breaking changes to published products."""

    def dispatch(self, request, *args, **kwargs):
        with contracts.enforcing():
            return super().dispatch(request, *args, **kwargs)


class _PermsPrefetchMixin:
    """Load the user's product permissions for a whole page in one query."""

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        if page is not None:
            prefetch_product_perms(self.request.user, {self.product_of(o) for o in page})
        return page

    def product_of(self, obj):
        return obj


def _product_detail_queryset(user):
    return (
        selectors.product_queryset()
        .prefetch_related(
            Prefetch(
                "ports",
                queryset=OutputPort.objects.select_related("data_source").prefetch_related(
                    Prefetch("fields", queryset=SchemaField.objects.order_by("ordinal", "name"))
                ),
            )
        )
        .select_related("replacement__domain")
    )


class ProductLookupMixin:
    def get_object(self):
        obj = (
            visible(self.request.user, _product_detail_queryset(self.request.user))
            .filter(domain__slug=self.kwargs["domain"], slug=self.kwargs["product"])
            .first()
        )
        if obj is None:
            raise NotFound("No such data product, or you may not see it.")
        self.check_object_permissions(self.request, obj)
        return obj


def _api_rows(qs, ids: list[int]) -> list[dict]:
    """The API list's page (IdsFirstPaginator's page_rows): plain values, not instances."""
    return selectors.product_rows(ids, columns=ProductSerializer.ROW_COLUMNS)


@extend_schema_view(
    list=extend_schema(summary="List data products (filter, search, order, paginate)"),
    create=extend_schema(
        summary="Create a data product", responses={201: ProductDetailSerializer, **ERROR_RESPONSES}
    ),
    retrieve=extend_schema(
        parameters=PRODUCT_PATH, responses={200: ProductDetailSerializer, **ERROR_RESPONSES}
    ),
    update=extend_schema(
        parameters=PRODUCT_PATH, responses={200: ProductDetailSerializer, **ERROR_RESPONSES}
    ),
    partial_update=extend_schema(
        parameters=PRODUCT_PATH, responses={200: ProductDetailSerializer, **ERROR_RESPONSES}
    ),
    destroy=extend_schema(parameters=PRODUCT_PATH, responses={204: None, **ERROR_RESPONSES}),
)
class ProductViewSet(
    EnforceContractMixin,
    ProductLookupMixin,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Data products, addressed as `/api/v1/products/<domain>/<product>/` or by URN
    (`/api/v1/products/urn:mesh:<domain>:<product>/`, the same reads, writes and actions;
    `?urn=` on the list)."""

    filterset_class = ApiProductFilter
    ordering_fields = ["name", "slug", "created_at", "updated_at", "published_at", "status"]
    ordering = list(selectors.BY_DOMAIN)
    # Lifecycle steps check their right in _lifecycle (a repeated step is a success).
    object_actions = {"publish": VIEW, "deprecate": VIEW, "retire": VIEW}
    queryset = DataProduct.objects.none()  # for the schema; get_queryset does the work

    def get_serializer_class(self):
        if self.action == "list":
            return ProductSerializer
        return ProductDetailSerializer

    def get_queryset(self):
        qs = selectors.product_list(user=self.request.user)
        if self.action == "list":
            # The page read as plain values and serialised from them (ProductSerializer takes
            # either); no field of the list depends on the user's rights beyond seeing it.
            qs.query.page_rows = _api_rows
            qs.query.ids_and_count = selectors.ids_by_domain  # in the default order
            return qs
        return qs.select_related("replacement__domain")

    # Moving a product to another team (owner_team) is its own action: refused with 403 and
    # require_transfer's message, as on the pages and in contract uploads.

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        user = self.request.user
        require(user, CREATE_PRODUCT, data["domain"])
        team = data.pop("owner_team", None)
        if team is not None and team != data["domain"].owner_team:
            require_transfer(user, DataProduct(owner_team=data["domain"].owner_team), team)
        with transaction.atomic():
            product = services.product_create(**data)
            if team is not None:
                services.product_transfer(product=product, team=team, by=user)
        serializer.instance = _product_detail_queryset(None).get(pk=product.pk)

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        product = DataProduct.objects.get(pk=serializer.instance.pk)
        team = data.pop("owner_team", None)
        if team is not None and team != product.owner_team:
            require_transfer(self.request.user, product, team)
        with transaction.atomic():
            product = services.product_update(product=product, **data)
            if team is not None:
                services.product_transfer(product=product, team=team, by=self.request.user)
        serializer.instance = _product_detail_queryset(None).get(pk=product.pk)

    def perform_destroy(self, instance):
        services.product_delete(product=instance)

    def _lifecycle(self, request, action: str, target: str, fn, **kwargs):
        """One lifecycle step. Idempotent for pipelines that repeat it: a product already in
        the target state answers 200 with `changed: false` to whoever may take the step."""
        product = self.get_object()  # 404 for a product the user may not see
        changed = product.status != target
        if changed:
            require(request.user, action, product)
            fn(product=DataProduct.objects.get(pk=product.pk), **kwargs)
        else:
            require(request.user, OWN, product)
        obj = _product_detail_queryset(None).get(pk=product.pk)
        obj.changed = changed
        return Response(LifecycleResultSerializer(obj, context=self.get_serializer_context()).data)

    @extend_schema(
        parameters=PRODUCT_PATH,
        request=None,
        responses={200: LifecycleResultSerializer, **ERROR_RESPONSES},
    )
    def publish(self, request, domain, product):
        return self._lifecycle(request, PUBLISH, "published", services.product_publish)

    @extend_schema(
        parameters=PRODUCT_PATH,
        request=DeprecateSerializer,
        responses={200: LifecycleResultSerializer, **ERROR_RESPONSES},
    )
    def deprecate(self, request, domain, product):
        s = DeprecateSerializer(data=request.data, context=self.get_serializer_context())
        s.is_valid(raise_exception=True)
        return self._lifecycle(
            request, DEPRECATE, "deprecated", services.product_deprecate, **s.validated_data
        )

    @extend_schema(
        parameters=PRODUCT_PATH,
        request=None,
        responses={200: LifecycleResultSerializer, **ERROR_RESPONSES},
    )
    def retire(self, request, domain, product):
        return self._lifecycle(request, RETIRE, "retired", services.product_retire)


class PortFilter(django_filters.FilterSet):
    product = ProductUrnFilter()
    kind = django_filters.MultipleChoiceFilter(choices=OutputPort.Kind.choices)

    class Meta:
        model = OutputPort
        fields = ["product", "kind", "slug"]


@extend_schema_view(
    create=extend_schema(responses={201: PortSerializer, **ERROR_RESPONSES}),
    retrieve=extend_schema(responses={200: PortSerializer, **ERROR_RESPONSES}),
    update=extend_schema(responses={200: PortSerializer, **ERROR_RESPONSES}),
    partial_update=extend_schema(responses={200: PortSerializer, **ERROR_RESPONSES}),
    destroy=extend_schema(responses={204: None, **ERROR_RESPONSES}),
)
class PortViewSet(EnforceContractMixin, _PermsPrefetchMixin, viewsets.ModelViewSet):
    """Output ports. `location` is a connection detail: null unless you are on the owning team
    or an approved consumer."""

    serializer_class = PortSerializer
    filterset_class = PortFilter
    ordering_fields = ["slug", "name", "created_at"]
    object_actions = {"destroy": EDIT}
    queryset = OutputPort.objects.none()

    def get_queryset(self):
        return visible(
            self.request.user,
            OutputPort.objects.select_related(
                "product__domain", "product__owner_team", "data_source"
            ).prefetch_related(
                Prefetch("fields", queryset=SchemaField.objects.order_by("ordinal", "name"))
            ),
        ).order_by("product_id", "slug")

    def product_of(self, obj):
        return obj.product

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        product = data.pop("product")
        if not can(self.request.user, EDIT, product):
            raise PermissionDenied(f"You may not edit {product}.")
        if data.get("slug") is None:
            data.pop("slug", None)
        serializer.instance = services.port_create(product=product, **data)

    def perform_update(self, serializer):
        serializer.instance = services.port_update(
            port=serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.port_delete(port=instance)


class FieldFilter(django_filters.FilterSet):
    product = ProductUrnFilter(field_name="port__product")
    port = django_filters.ModelChoiceFilter(queryset=visible_to_requester(OutputPort))

    class Meta:
        model = SchemaField
        fields = ["port", "product", "name"]


@extend_schema_view(
    create=extend_schema(responses={201: FieldSerializer, **ERROR_RESPONSES}),
    retrieve=extend_schema(responses={200: FieldSerializer, **ERROR_RESPONSES}),
    update=extend_schema(responses={200: FieldSerializer, **ERROR_RESPONSES}),
    partial_update=extend_schema(responses={200: FieldSerializer, **ERROR_RESPONSES}),
    destroy=extend_schema(responses={204: None, **ERROR_RESPONSES}),
)
class FieldViewSet(EnforceContractMixin, viewsets.ModelViewSet):
    """Schema fields of output ports."""

    serializer_class = FieldSerializer
    filterset_class = FieldFilter
    ordering_fields = ["name", "ordinal"]
    object_actions = {"destroy": EDIT}
    queryset = SchemaField.objects.none()

    def get_queryset(self):
        return visible(
            self.request.user,
            SchemaField.objects.select_related(
                "port__product__domain", "port__product__owner_team"
            ),
        ).order_by("port_id", "ordinal", "name")

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        port = data.pop("port")
        if not can(self.request.user, EDIT, port):
            raise PermissionDenied(f"You may not edit {port.product}.")
        serializer.instance = services.field_create(port=port, **data)

    def perform_update(self, serializer):
        serializer.instance = services.field_update(
            field=serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.field_delete(field=instance)


class AccessRequestFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=AccessRequest.Status.choices)
    product = ProductUrnFilter()

    class Meta:
        model = AccessRequest
        fields = ["status", "product"]


DECISION = extend_schema(
    request=DecisionSerializer, responses={200: AccessRequestSerializer, **ERROR_RESPONSES}
)


@extend_schema_view(
    create=extend_schema(responses={201: AccessRequestSerializer, **ERROR_RESPONSES}),
    retrieve=extend_schema(responses={200: AccessRequestSerializer, **ERROR_RESPONSES}),
)
class AccessRequestViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Access requests: yours, and those for products whose team you own. Owners approve, deny
    and revoke; requesters withdraw a pending request."""

    serializer_class = AccessRequestSerializer
    filterset_class = AccessRequestFilter
    ordering_fields = ["created_at", "status"]
    object_actions = {"approve": VIEW, "deny": VIEW, "revoke": VIEW, "withdraw": VIEW}
    queryset = AccessRequest.objects.none()

    def get_queryset(self):
        return visible(
            self.request.user,
            AccessRequest.objects.select_related(
                "product__domain", "requester", "team", "decided_by"
            ),
        ).order_by("-created_at")

    def perform_create(self, serializer):
        serializer.instance = services.access_request_create(
            requester=self.request.user, **serializer.validated_data
        )

    def _decide(self, request, fn):
        req = self.get_object()  # 404 for a request the user may not see; the service asks who
        s = DecisionSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        req = fn(request=req, by=request.user, comment=s.validated_data["comment"])
        return Response(AccessRequestSerializer(req, context=self.get_serializer_context()).data)

    @extend_schema(
        request=BasketSerializer,
        responses={201: AccessRequestSerializer(many=True), **ERROR_RESPONSES},
    )
    def basket(self, request):
        """Request several products at once with one purpose: all requests are made, or none
        (400 naming each refused product)."""
        s = BasketSerializer(data=request.data, context=self.get_serializer_context())
        s.is_valid(raise_exception=True)
        made = services.access_requests_create(requester=request.user, **s.validated_data)
        data = AccessRequestSerializer(made, many=True, context=self.get_serializer_context()).data
        return Response(data, status=status.HTTP_201_CREATED)

    @DECISION
    def approve(self, request, pk):
        return self._decide(request, services.access_request_approve)

    @DECISION
    def deny(self, request, pk):
        return self._decide(request, services.access_request_deny)

    @DECISION
    def revoke(self, request, pk):
        return self._decide(request, services.access_grant_revoke)

    @extend_schema(request=None, responses={204: None, **ERROR_RESPONSES})
    def withdraw(self, request, pk):
        req = self.get_object()
        services.access_request_withdraw(request=req, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# -- contracts ----------------------------------------------------------------------------------


class YAMLRenderer(renderers.BaseRenderer):
    media_type = "application/yaml"
    format = "yaml"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, str):
            return data.encode()
        return contracts.dump(data).encode()


class RawTextParser(parsers.BaseParser):
    """The body as text: the contract module parses YAML itself (to report lines/columns).
    The size limit is checked before the body is read (Content-Length), and reading stops one
    byte past it for bodies that do not say their length."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        from django.core.exceptions import ValidationError as DjangoValidationError

        limit = contracts.max_bytes()
        request = (parser_context or {}).get("request")
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0) if request else 0
        except ValueError:
            declared = 0
        if declared > limit:
            raise PayloadTooLarge(contracts.too_large_message(declared))
        data = stream.read(limit + 1) if stream is not None else b""
        if len(data) > limit:
            raise PayloadTooLarge(contracts.too_large_message())
        try:
            return contracts.decode(data)
        except DjangoValidationError as e:
            raise ValidationError(e.message_dict) from None


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


def import_result_data(result, *, urn: str = "") -> dict:
    """The import's answer. `urn`: the URN the product gets (a dry run creating a product has
    no product to read it from; the route names it, and the import checked the document
    agrees)."""
    return {
        "urn": result.product.urn if result.product else urn,
        "created": result.created,
        "changed": result.changed,
        "applied": result.applied,
        "breaking": result.breaking,
        "version": result.version.number if result.version and result.applied else None,
        "changes": [c.__dict__ for c in result.changes],
        "not_run": result.not_run,
    }


class ContractView(ProductLookupMixin, generics.GenericAPIView):
    """The product's data contract as an ODCS v3.2.0 YAML document.

    PUT an ODCS v3.0.x–v3.2.0 document (YAML or JSON) to create or update the product it
    describes (the URL names it); `?dry_run=true` reports the changes without applying them.
    """

    parser_classes = [RawTextParser]
    renderer_classes = [renderers.JSONRenderer, YAMLRenderer]
    serializer_class = ContractImportResultSerializer
    queryset = DataProduct.objects.none()

    @extend_schema(
        parameters=PRODUCT_PATH,
        responses={
            (200, "application/yaml"): OpenApiResponse(
                OpenApiTypes.OBJECT, description="The ODCS v3.2.0 document, as YAML."
            ),
            **{(code, "application/json"): s for code, s in ERROR_RESPONSES.items()},
        },
    )
    def get(self, request, domain, product):
        obj = self.get_object()
        body = connection.contract_yaml_for(request.user, obj)
        response = HttpResponse(body, content_type="application/yaml; charset=utf-8")
        if request.query_params.get("download"):
            response["Content-Disposition"] = (
                f'attachment; filename="{obj.domain.slug}-{obj.slug}.odcs.yaml"'
            )
        return response

    @extend_schema(
        parameters=[*PRODUCT_PATH, OpenApiParameter("dry_run", bool, description="Only preview.")],
        request={"application/yaml": OpenApiTypes.STR, "application/json": OpenApiTypes.OBJECT},
        responses={
            200: ContractImportResultSerializer,
            201: ContractImportResultSerializer,
            **ERROR_RESPONSES,
        },
    )
    def put(self, request, domain, product):
        existing, text, dry_run = _document_upload(request, domain, product)
        # The URL names the product; the document must agree (the import checks it).
        doc_ok = urns.format_urn(domain, product)
        if existing is None:
            result = contracts.contract_import(
                text=text,
                user=request.user,
                dry_run=dry_run,
                expected_urn=doc_ok,
                domain_slug=domain,
            )
        else:
            result = contracts.contract_import(
                text=text, user=request.user, product=existing, dry_run=dry_run
            )
        code = status.HTTP_201_CREATED if result.created and result.applied else status.HTTP_200_OK
        return Response(import_result_data(result, urn=doc_ok), status=code)


def _document_upload(request, domain: str, product: str):
    """(the product the URL names if the user may edit it, the document text, dry run) for a
    contract or ODPS upload. A product the user may not see is answered as one that does not
    exist (the import decides both alike); one they see but may not edit is a 403."""
    existing = (
        visible(request.user, DataProduct.objects.select_related("domain"))
        .filter(domain__slug=domain, slug=product)
        .first()
    )
    if existing is not None:
        require(request.user, EDIT, existing)
    text = request.data if isinstance(request.data, str) else ""
    dry_run = request.query_params.get("dry_run", "").lower() in ("1", "true", "yes")
    return existing, text, dry_run


class OdpsView(ProductLookupMixin, generics.GenericAPIView):
    """The data product itself as an ODPS v1.1.0 document (YAML; JSON with
    `Accept: application/json`), its ports referring to their ODCS contracts.

    PUT an ODPS v1.0.0 or v1.1.0 document (YAML or JSON) to create or update the product the
    URL names; `?dry_run=true` reports the changes without applying them.
    """

    parser_classes = [RawTextParser]
    renderer_classes = [renderers.JSONRenderer, YAMLRenderer]
    queryset = DataProduct.objects.none()

    @extend_schema(
        parameters=PRODUCT_PATH,
        responses={
            (200, "application/yaml"): OpenApiResponse(
                OpenApiTypes.OBJECT, description="The ODPS v1.1.0 document, as YAML."
            ),
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.OBJECT, description="The same document, as JSON."
            ),
            **{(code, "application/json"): s for code, s in ERROR_RESPONSES.items()},
        },
    )
    def get(self, request, domain, product):
        obj = self.get_object()
        doc = odps.export_document(odps.load(obj), user=request.user)
        accept = request.META.get("HTTP_ACCEPT", "")
        if "application/json" in accept and "yaml" not in accept:
            response = HttpResponse(
                json.dumps(doc, ensure_ascii=False, indent=2),
                content_type="application/json; charset=utf-8",
            )
            ext = "json"
        else:
            response = HttpResponse(
                contracts.dump(doc), content_type="application/yaml; charset=utf-8"
            )
            ext = "yaml"
        if request.query_params.get("download"):
            response["Content-Disposition"] = (
                f'attachment; filename="{obj.domain.slug}-{obj.slug}.odps.{ext}"'
            )
        return response

    @extend_schema(
        parameters=[*PRODUCT_PATH, OpenApiParameter("dry_run", bool, description="Only preview.")],
        request={"application/yaml": OpenApiTypes.STR, "application/json": OpenApiTypes.OBJECT},
        responses={
            200: OdpsImportResultSerializer,
            201: OdpsImportResultSerializer,
            **ERROR_RESPONSES,
        },
    )
    def put(self, request, domain, product):
        existing, text, dry_run = _document_upload(request, domain, product)
        with contracts.enforcing():
            result = odps.odps_import(
                text=text,
                user=request.user,
                product=existing,
                domain_slug=domain,
                product_slug=product,
                dry_run=dry_run,
            )
        code = status.HTTP_201_CREATED if result.created and result.applied else status.HTTP_200_OK
        return Response(
            {
                "urn": result.product.urn if result.product else urns.format_urn(domain, product),
                "created": result.created,
                "changed": result.changed,
                "applied": result.applied,
                "changes": result.changes,
                "ignored": result.ignored,
                "kept": result.kept,
            },
            status=code,
        )


class ContractVersionList(ProductLookupMixin, generics.ListAPIView):
    """The product's contract versions, newest first, each with its classified changelog."""

    serializer_class = ContractVersionSerializer
    queryset = ContractVersion.objects.none()
    filter_backends: list = []

    @extend_schema(parameters=PRODUCT_PATH)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        self.product = self.get_object()
        return self.product.contract_versions.select_related("created_by").order_by("-number")

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        if page is None:
            return None
        return connection.hide_in_versions(self.request.user, self.product, page)


class ContractVersionDetail(ProductLookupMixin, generics.GenericAPIView):
    """One contract version with its ODCS document."""

    serializer_class = ContractVersionDetailSerializer
    queryset = ContractVersion.objects.none()

    @extend_schema(
        parameters=[*PRODUCT_PATH, OpenApiParameter("number", int, OpenApiParameter.PATH)],
        responses={200: ContractVersionDetailSerializer, **ERROR_RESPONSES},
    )
    def get(self, request, domain, product, number):
        obj = self.get_object()
        version = obj.contract_versions.filter(number=number).first()
        if version is None:
            raise NotFound(f"{obj} has no contract version {number}.")
        (version,) = connection.hide_in_versions(request.user, obj, [version])
        return Response(self.get_serializer(version).data)


class ContractDiffView(ProductLookupMixin, generics.GenericAPIView):
    """The classified changes between two contract versions (`?from=1&to=3`; `to` defaults to
    the latest)."""

    serializer_class = ContractDiffSerializer
    queryset = ContractVersion.objects.none()

    @extend_schema(
        parameters=[
            *PRODUCT_PATH,
            OpenApiParameter("from", int, required=True, description="Older version number."),
            OpenApiParameter("to", int, description="Newer version number (default: latest)."),
        ],
        responses={200: ContractDiffSerializer, **ERROR_RESPONSES},
    )
    def get(self, request, domain, product):
        obj = self.get_object()
        a, b = diff_versions(obj, request.query_params.get("from"), request.query_params.get("to"))
        changes = connection.hide_in_changes(request.user, obj, contracts.versions_diff(a, b))
        return Response(
            {
                "from_version": a.number,
                "to_version": b.number,
                "breaking": any(c.breaking for c in changes),
                "changes": [c.__dict__ for c in changes],
            }
        )


def diff_versions(product, from_n, to_n):
    """The two versions of product named by from/to (strings from a query), or a 400."""
    versions = {v.number: v for v in product.contract_versions.all()}
    if not versions:
        raise ValidationError({"from": f"{product} has no contract versions yet."})

    def pick(value, name, default):
        if value in (None, ""):
            if default is None:
                raise ValidationError({name: "Give a version number."})
            return versions[default]
        try:
            return versions[int(value)]
        except (ValueError, KeyError):
            raise ValidationError(
                {name: f"No version {value}; there are 1 to {max(versions)}."}
            ) from None

    return pick(from_n, "from", None), pick(to_n, "to", max(versions))
