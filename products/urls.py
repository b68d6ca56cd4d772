from django.urls import path

from products import views
from products.contracts import views as contract_views

app_name = "products"

urlpatterns = [
    path("search/", views.search_page, name="search"),
    path("products/", views.product_list, name="list"),
    path("products/suggest/", views.product_suggest, name="suggest"),
    path("products/<slug:domain>/<slug:product>/", views.product_detail, name="product"),
    path("products/<slug:domain>/<slug:product>/edit/", views.product_edit, name="edit"),
    path("products/<slug:domain>/<slug:product>/clone/", views.product_clone, name="clone"),
    path("domains/<slug:domain>/products/new/", views.product_create, name="create"),
    path(
        "domains/<slug:domain>/products/new/data-sources/",
        views.data_source_suggest,
        name="data_source_suggest_new",
    ),
    path(
        "products/<slug:domain>/<slug:product>/edit/data-sources/",
        views.data_source_suggest,
        name="data_source_suggest",
    ),
    path(
        "products/<slug:domain>/<slug:product>/request-access/",
        views.access_request_create,
        name="request_access",
    ),
    path(
        "products/<slug:domain>/<slug:product>/contract/diff/",
        contract_views.contract_diff,
        name="contract_diff",
    ),
    path("contracts/import/", contract_views.contract_import, name="contract_import"),
    path("products/import/", contract_views.odps_import, name="odps_import"),
    path(
        "products/<slug:domain>/<slug:product>/<str:action>/",
        views.product_lifecycle,
        name="lifecycle",
    ),
    path("tags/<slug:tag>/", views.tag_detail, name="tag"),
    path("access/basket/", views.basket_page, name="basket"),
    path("access/basket/add/", views.basket_add, name="basket_add"),
    path("access/basket/remove/", views.basket_remove, name="basket_remove"),
    path("access/inbox/", views.inbox, name="inbox"),
    path("access/mine/", views.my_requests, name="my_requests"),
    path("access/<int:pk>/decide/", views.access_request_decide, name="decide"),
    path("access/<int:pk>/revoke/", views.access_grant_revoke, name="revoke"),
    path("access/<int:pk>/withdraw/", views.access_request_withdraw, name="withdraw"),
]
