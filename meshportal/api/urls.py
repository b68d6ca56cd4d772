"""/api/v1/: every app's viewsets, plus the OpenAPI schema and its docs (/api/schema/, /api/docs/)."""

from django.shortcuts import redirect
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from domains.api.views import DomainViewSet, TeamViewSet
from governance.api import views as g
from products import urns
from products.api import views as p

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("teams", TeamViewSet, basename="team")
router.register("domains", DomainViewSet, basename="domain")
router.register("ports", p.PortViewSet, basename="port")
router.register("fields", p.FieldViewSet, basename="field")
router.register("access-requests", p.AccessRequestViewSet, basename="access-request")
router.register("policies", g.PolicyViewSet, basename="policy")
router.register("compliance/history", g.ComplianceChangeViewSet, basename="compliance-change")
router.register("compliance", g.ComplianceViewSet, basename="compliance")
router.register("waivers", g.WaiverViewSet, basename="waiver")
router.register("quality-checks", g.QualityCheckViewSet, basename="quality-check")
router.register("quality-runs", g.QualityRunViewSet, basename="quality-run")
router.register("incidents", g.IncidentViewSet, basename="incident")

product_list = p.ProductViewSet.as_view({"get": "list", "post": "create"})
product_detail = p.ProductViewSet.as_view(
    {"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"}
)


def _action(viewset, name, method="post"):
    return viewset.as_view({method: name})


def _moved_to_compliance(request, rest: str = ""):
    """`policy-evaluations/` was the old name of `compliance/`: a permanent redirect that keeps
    the method and body (308), so scripts written against it still work."""
    query = request.META.get("QUERY_STRING", "")
    url = f"/api/v1/compliance/{rest}" + (f"?{query}" if query else "")
    return redirect(url, permanent=True, preserve_request=True)


# Every product route twice: /products/<domain>/<product>/… and /products/urn:mesh:<d>:<p>/…,
# the same view with the same kwargs, so a URN reads and writes exactly like the path does.
PRODUCT = "products/<slug:domain>/<slug:product>/"
URN = rf"^products/{urns.PATTERN}/"
PRODUCT_ROUTES = [
    # (path suffix, regex suffix, view, name)
    ("", "", product_detail, "product-detail"),
    ("publish/", "publish/", _action(p.ProductViewSet, "publish"), "product-publish"),
    ("deprecate/", "deprecate/", _action(p.ProductViewSet, "deprecate"), "product-deprecate"),
    ("retire/", "retire/", _action(p.ProductViewSet, "retire"), "product-retire"),
    ("contract", "contract", p.ContractView.as_view(), "product-contract"),
    (
        "contract/versions/",
        "contract/versions/",
        p.ContractVersionList.as_view(),
        "contract-versions",
    ),
    (
        "contract/versions/<int:number>/",
        "contract/versions/(?P<number>[0-9]+)/",
        p.ContractVersionDetail.as_view(),
        "contract-version",
    ),
    ("contract/diff/", "contract/diff/", p.ContractDiffView.as_view(), "contract-diff"),
    ("odps", "odps", p.OdpsView.as_view(), "product-odps"),
]

v1 = [
    path("products/", product_list, name="product-list"),
    *[path(PRODUCT + suffix, view, name=name) for suffix, _, view, name in PRODUCT_ROUTES],
    *[
        re_path(URN + regex + "$", view, name=f"{name}-by-urn")
        for _, regex, view, name in PRODUCT_ROUTES
    ],
    path(
        "access-requests/basket/",
        _action(p.AccessRequestViewSet, "basket"),
        name="access-request-basket",
    ),
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
    re_path(r"^policy-evaluations/(?P<rest>.*)$", _moved_to_compliance),
    path("usage/", include("usage.api.urls")),
    path("", include(router.urls)),
]

urlpatterns = [
    path("v1/", include((v1, "api"), namespace="api")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
]
