"""/api/v1/: every app's viewsets, plus the OpenAPI schema and its docs (/api/schema/, /api/docs/)."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from domains.api.views import DomainViewSet, TeamViewSet
from products.api import views as p

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("teams", TeamViewSet, basename="team")
router.register("domains", DomainViewSet, basename="domain")
router.register("ports", p.PortViewSet, basename="port")
router.register("fields", p.FieldViewSet, basename="field")
router.register("access-requests", p.AccessRequestViewSet, basename="access-request")

product_list = p.ProductViewSet.as_view({"get": "list", "post": "create"})
product_detail = p.ProductViewSet.as_view(
    {"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"}
)
PRODUCT = "products/<slug:domain>/<slug:product>/"


def _action(viewset, name, method="post"):
    return viewset.as_view({method: name})


v1 = [
    path("products/", product_list, name="product-list"),
    re_path(
        r"^products/(?P<urn>urn:mesh:[^/]+)/$", p.ProductByUrnView.as_view(), name="product-by-urn"
    ),
    path(PRODUCT, product_detail, name="product-detail"),
    path(PRODUCT + "publish/", _action(p.ProductViewSet, "publish"), name="product-publish"),
    path(PRODUCT + "deprecate/", _action(p.ProductViewSet, "deprecate"), name="product-deprecate"),
    path(PRODUCT + "retire/", _action(p.ProductViewSet, "retire"), name="product-retire"),
    path(PRODUCT + "contract", p.ContractView.as_view(), name="product-contract"),
    path(PRODUCT + "contract/versions/", p.ContractVersionList.as_view(), name="contract-versions"),
    path(
        PRODUCT + "contract/versions/<int:number>/",
        p.ContractVersionDetail.as_view(),
        name="contract-version",
    ),
    path(PRODUCT + "contract/diff/", p.ContractDiffView.as_view(), name="contract-diff"),
    path(
        "access-requests/<int:pk>/approve/",
        _action(p.AccessRequestViewSet, "approve"),
        name="access-request-approve",
    ),
    path(
        "access-requests/<int:pk>/deny/",
        _action(p.AccessRequestViewSet, "deny"),
        name="access-request-deny",
    ),
    path(
        "access-requests/<int:pk>/revoke/",
        _action(p.AccessRequestViewSet, "revoke"),
        name="access-request-revoke",
    ),
    path(
        "access-requests/<int:pk>/withdraw/",
        _action(p.AccessRequestViewSet, "withdraw"),
        name="access-request-withdraw",
    ),
    path("", include(router.urls)),
]

urlpatterns = [
    path("v1/", include((v1, "api"), namespace="api")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
]
