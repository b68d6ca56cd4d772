"""The REST API: permissions from the one model, tokens, errors, filters, query counts."""

import pytest
import yaml
from django.core.management import call_command
from rest_framework.test import APIClient

from meshportal.api.auth import token_create
from meshportal.models import ApiToken
from products.models import AccessRequest, DataProduct, OutputPort, SchemaField
from products.services import product_create
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def client_for(user=None) -> APIClient:
    c = APIClient()
    if user is not None:
        c.force_login(user)  # a fresh user object per request, as in life (no stale caches)
    return c


def bearer(user, name="ci") -> APIClient:
    _, key = token_create(user=user, name=name)
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return c


P = "/api/v1/products/"


# -- authentication ---------------------------------------------------------------------------


def test_anonymous_gets_401_json(mesh):
    r = APIClient().get(P)
    assert r.status_code == 401
    assert r.json()["detail"]


def test_tokens_are_created_on_the_profile_page_shown_once_and_revocable(mesh, client):
    client.force_login(mesh.owner)
    r = client.post("/profile/tokens/", {"name": "orders CI"})
    key = r.context["new_key"]
    assert key.startswith("mesh_") and key in r.text
    token = ApiToken.objects.get(user=mesh.owner, name="orders CI")
    assert token.key_hash != key and key not in token.key_hash  # stored hashed
    assert key not in client.get("/profile/tokens/").text  # shown once
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert api.get(P).status_code == 200
    client.post("/profile/tokens/", {"revoke": token.pk})
    r = api.get(P)
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


def test_users_cannot_revoke_someone_elses_token(mesh, client):
    token, _ = token_create(user=mesh.owner, name="ci")
    client.force_login(mesh.other_owner)
    assert client.post("/profile/tokens/", {"revoke": token.pk}).status_code == 404
    assert ApiToken.objects.get(pk=token.pk).revoked_at is None


def test_staff_create_service_account_tokens_in_the_admin(mesh, client):
    robot = factories.user("robot")
    client.force_login(mesh.staff)
    r = client.post(
        "/admin/meshportal/apitoken/add/", {"user": robot.pk, "name": "etl"}, follow=True
    )
    assert r.status_code == 200
    text = r.text
    key = text[text.index("mesh_") :].split(" ")[0].split("<")[0]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert api.get("/api/v1/domains/").status_code == 200
    client.force_login(mesh.owner)
    assert client.get("/admin/meshportal/apitoken/add/").status_code in (302, 403)


def test_tokens_are_throttled(mesh, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "100/min", "user": "100/min", "token": "2/min"},
    }
    from django.core.cache import cache

    cache.clear()
    api = bearer(mesh.consumer)
    assert [api.get("/api/v1/domains/").status_code for _ in range(3)] == [200, 200, 429]
    cache.clear()


# -- products ------------------------------------------------------------------------------------


def test_product_list_filters_by_visibility_and_paginates_with_counts(mesh):
    r = client_for(mesh.consumer).get(P)
    body = r.json()
    assert body["count"] == 4  # published and deprecated of both domains, no drafts
    assert {p["status"] for p in body["results"]} == {"published", "deprecated"}
    body = client_for(mesh.member).get(P).json()
    assert body["count"] == 5  # plus the orders draft
    body = client_for(mesh.consumer).get(P, {"page_size": 1}).json()
    assert body["count"] == 4 and len(body["results"]) == 1 and body["next"]


def test_product_list_rows_read_as_values_match_the_serialised_products(mesh):
    """The list is read as plain values (selectors.product_rows), not as model instances: each
    result equals the product serialised from its instance, tags, replacement, decimals and
    dates included."""
    from decimal import Decimal

    from products.api.serializers import ProductSerializer
    from products.models import Tag
    from products.selectors import product_queryset

    old = DataProduct.objects.get(slug="deprecated-product", domain__slug="users")
    new = DataProduct.objects.get(slug="published-product", domain__slug="orders")
    DataProduct.objects.filter(pk=old.pk).update(
        replacement=new, availability_slo=Decimal("99.95"), freshness_slo_hours=None
    )
    for name in ("Zeta", "alpha", "Mid dle"):
        new.tags.add(Tag.objects.create(name=name, slug=name.lower().replace(" ", "-")))
    body = client_for(mesh.member).get(P, {"page_size": 3}).json()
    assert body["count"] == 5 and len(body["results"]) == 3
    rest = client_for(mesh.member).get(body["next"]).json()["results"]
    results = body["results"] + rest
    products = {p.urn: p for p in product_queryset().select_related("replacement__domain")}
    assert results == [ProductSerializer(products[r["urn"]]).data for r in results]
    by_urn = {r["urn"]: r for r in results}
    assert by_urn[new.urn]["tags"] == ["alpha", "Mid dle", "Zeta"]  # by slug, as before
    assert by_urn["urn:mesh:users:deprecated-product"]["replacement"] == new.urn


@pytest.mark.parametrize(
    "url", [P, "/api/v1/ports/", "/api/v1/fields/", "/api/v1/access-requests/", "/api/v1/teams/"]
)
def test_lists_build_their_filterset_only_when_a_parameter_filters(mesh, url, monkeypatch):
    """Paging, ordering and format alone give the same list without the filterset being built;
    a filter parameter still filters, and a bad value is still a 400 naming it."""
    from django_filters import FilterSet

    built = []
    monkeypatch.setattr(FilterSet, "is_valid", lambda self: built.append(self) or True)
    c = client_for(mesh.owner)
    assert c.get(url, {"page_size": 2, "ordering": "-created_at"}).status_code == 200
    assert not built
    c.get(url, {"page_size": 2, "nonsense": "x"})
    assert len(built) == 1
    monkeypatch.undo()
    r = c.get(P, {"status": "no-such-status"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "status"


def test_product_filters_search_urn_and_ordering(mesh):
    c = client_for(mesh.consumer)
    r = c.get(P, {"domain": "orders", "status": "published"}).json()
    assert [p["urn"] for p in r["results"]] == ["urn:mesh:orders:published-product"]
    r = c.get(P, {"search": "Users dep"}).json()
    assert [p["urn"] for p in r["results"]] == ["urn:mesh:users:deprecated-product"]
    r = c.get(P, {"urn": "urn:mesh:users:published-product"}).json()
    assert r["count"] == 1
    names = [p["name"] for p in c.get(P, {"ordering": "-name"}).json()["results"]]
    assert names == sorted(names, reverse=True)


def test_product_by_path_and_by_urn(mesh):
    c = client_for(mesh.consumer)
    a = c.get(P + "orders/published-product/").json()
    b = c.get(P + "urn:mesh:orders:published-product/").json()
    assert a == b and a["urn"] == "urn:mesh:orders:published-product"
    assert a["ports"][0]["fields"][0]["name"] == "order_id"


def test_invisible_products_are_404_everywhere(mesh):
    c = client_for(mesh.consumer)
    for url in (
        P + "orders/draft-product/",
        P + "urn:mesh:orders:draft-product/",
        P + "orders/draft-product/contract",
        P + "orders/draft-product/contract/versions/",
        P + "orders/draft-product/contract/diff/?from=1",
    ):
        assert c.get(url).status_code == 404, url
    assert c.patch(P + "orders/draft-product/", {"name": "x"}).status_code == 404
    draft = mesh.products[("orders", "draft")]
    port = draft.ports.get()
    assert c.get(f"/api/v1/ports/{port.pk}/").status_code == 404
    assert c.get(f"/api/v1/fields/{port.fields.get().pk}/").status_code == 404
    assert c.delete(f"/api/v1/fields/{port.fields.get().pk}/").status_code == 404


def test_non_owners_get_403_on_writes(mesh):
    c = client_for(mesh.other_owner)
    url = P + "orders/published-product/"
    assert c.patch(url, {"name": "Mine"}, format="json").status_code == 403
    assert c.delete(url).status_code == 403
    assert c.post(url + "deprecate/", {}, format="json").status_code == 403
    r = c.put(url + "contract", data="x: 1", content_type="application/yaml")
    assert r.status_code == 403
    port = mesh.products[("orders", "published")].ports.get()
    assert c.patch(f"/api/v1/ports/{port.pk}/", {"name": "x"}, format="json").status_code == 403
    assert c.delete(f"/api/v1/ports/{port.pk}/").status_code == 403
    field = port.fields.get()
    assert (
        c.patch(f"/api/v1/fields/{field.pk}/", {"description": "x"}, format="json").status_code
        == 403
    )
    r = c.post(
        "/api/v1/ports/",
        {"product": "urn:mesh:orders:published-product", "name": "New", "kind": "table"},
        format="json",
    )
    assert r.status_code == 403, r.json()
    r = c.post("/api/v1/fields/", {"port": port.pk, "name": "n"}, format="json")
    assert r.status_code == 403
    r = c.post(P, {"domain": "orders", "slug": "mine", "name": "Mine"}, format="json")
    assert r.status_code == 403
    assert DataProduct.objects.get(pk=port.product_id).name == "Orders published"
    assert not DataProduct.objects.filter(slug="mine").exists()
    # members edit but only owners delete or change the lifecycle
    m = client_for(mesh.member)
    assert m.patch(url, {"summary": "Better"}, format="json").status_code == 200
    assert m.delete(url).status_code == 403


def test_team_creates_and_edits_products_and_errors_name_the_field(mesh):
    c = client_for(mesh.member)
    r = c.post(
        P,
        {
            "domain": "orders",
            "slug": "returns",
            "name": "Returns",
            "tags": ["Finance"],
            "freshness_slo_hours": 12,
        },
        format="json",
    )
    assert r.status_code == 201, r.json()
    assert r.json()["urn"] == "urn:mesh:orders:returns" and r.json()["tags"] == ["Finance"]
    r = c.post(P, {"domain": "orders", "slug": "returns", "name": "Again"}, format="json")
    assert r.status_code == 400
    assert r.json()["errors"]
    r = c.post(
        P,
        {"domain": "orders", "slug": "bad slug!", "name": "", "classification": "x"},
        format="json",
    )
    assert r.status_code == 400
    fields = {e["field"] for e in r.json()["errors"]}
    assert {"slug", "name", "classification"} <= fields
    r = c.patch(P + "orders/returns/", {"availability_slo": "lots"}, format="json")
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "availability_slo"


def test_api_refuses_breaking_field_removal_without_major_bump(mesh):
    c = client_for(mesh.member)
    field = mesh.products[("orders", "published")].ports.get().fields.get()
    r = c.delete(f"/api/v1/fields/{field.pk}/")
    assert r.status_code == 400 and "major version bump" in r.json()["detail"]
    assert SchemaField.objects.filter(pk=field.pk).exists()
    assert (
        c.patch(P + "orders/published-product/", {"version": "2.0.0"}, format="json").status_code
        == 200
    )
    assert c.delete(f"/api/v1/fields/{field.pk}/").status_code == 204


def test_owner_publishes_through_the_api(mesh):
    r = client_for(mesh.owner).post(P + "orders/draft-product/publish/")
    assert r.status_code == 200 and r.json()["status"] == "published"
    r = client_for(mesh.owner).post(P + "orders/draft-product/deprecate/", {}, format="json")
    assert r.status_code == 200 and r.json()["status"] == "deprecated"
    r = client_for(mesh.owner).post(P + "orders/draft-product/publish/")
    assert r.status_code == 403  # deprecated: publishing is not a step back


def test_connection_details_only_for_team_and_approved_consumers(mesh):
    port = mesh.products[("orders", "published")].ports.get()
    url = f"/api/v1/ports/{port.pk}/"
    assert client_for(mesh.consumer).get(url).json()["location"] is None
    assert client_for(mesh.approved).get(url).json()["location"] == "sales.secret_table"
    assert client_for(mesh.member).get(url).json()["location"] == "sales.secret_table"


def test_ports_and_fields_crud_by_the_team(mesh):
    c = client_for(mesh.member)
    r = c.post(
        "/api/v1/ports/",
        {
            "product": "urn:mesh:orders:draft-product",
            "name": "Daily",
            "kind": "view",
            "location": "sales.daily",
        },
        format="json",
    )
    assert r.status_code == 201, r.json()
    port_id = r.json()["id"]
    assert r.json()["slug"] == "daily"
    r = c.post(
        "/api/v1/fields/", {"port": port_id, "name": "day", "logical_type": "date"}, format="json"
    )
    assert r.status_code == 201
    field_id = r.json()["id"]
    r = c.post("/api/v1/fields/", {"port": port_id, "name": "day"}, format="json")
    assert r.status_code == 400
    r = c.get("/api/v1/fields/", {"product": "urn:mesh:orders:draft-product"})
    assert {f["name"] for f in r.json()["results"]} == {"order_id", "day"}
    assert c.delete(f"/api/v1/fields/{field_id}/").status_code == 204
    assert c.delete(f"/api/v1/ports/{port_id}/").status_code == 204
    assert not OutputPort.objects.filter(pk=port_id).exists()


# -- access requests ---------------------------------------------------------------------------


def test_access_request_flow_and_permissions(mesh):
    consumer = client_for(mesh.consumer)
    r = consumer.post(
        "/api/v1/access-requests/",
        {"product": "urn:mesh:users:published-product", "purpose": "churn model"},
        format="json",
    )
    assert r.status_code == 201, r.json()
    pk = r.json()["id"]
    # other people's requests are invisible; the product's owners decide
    assert client_for(mesh.owner).get(f"/api/v1/access-requests/{pk}/").status_code == 404
    assert client_for(mesh.owner).post(f"/api/v1/access-requests/{pk}/approve/").status_code == 404
    assert consumer.post(f"/api/v1/access-requests/{pk}/approve/").status_code == 403
    owner = client_for(mesh.other_owner)
    r = owner.post(f"/api/v1/access-requests/{pk}/approve/", {"comment": "ok"}, format="json")
    assert r.status_code == 200 and r.json()["status"] == "approved"
    r = owner.post(f"/api/v1/access-requests/{pk}/approve/")
    assert r.status_code == 400 and "already approved" in r.json()["detail"]
    assert owner.post(f"/api/v1/access-requests/{pk}/revoke/").json()["status"] == "revoked"
    r = consumer.post(
        "/api/v1/access-requests/",
        {"product": "urn:mesh:users:published-product", "purpose": " "},
        format="json",
    )
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "purpose"
    mine = consumer.get("/api/v1/access-requests/").json()
    assert mine["count"] == 1
    assert client_for(mesh.member).get("/api/v1/access-requests/").json()["count"] == 0


def test_deny_needs_a_reason_and_withdraw_is_for_the_requester(mesh):
    req = AccessRequest.objects.create(
        product=mesh.products[("users", "published")], requester=mesh.consumer, purpose="x"
    )
    owner = client_for(mesh.other_owner)
    r = owner.post(f"/api/v1/access-requests/{req.pk}/deny/")
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "decision_comment"
    assert owner.post(f"/api/v1/access-requests/{req.pk}/withdraw/").status_code == 403
    assert (
        client_for(mesh.consumer).post(f"/api/v1/access-requests/{req.pk}/withdraw/").status_code
        == 204
    )


# -- teams and domains -------------------------------------------------------------------------


def test_teams_and_domains_are_readable_and_read_only(mesh):
    c = client_for(mesh.consumer)
    team = c.get("/api/v1/teams/orders-team/").json()
    assert {"username": "owner", "role": "owner"} in team["memberships"]
    assert c.get("/api/v1/domains/orders/").json()["owner_team"] == "orders-team"
    assert c.patch("/api/v1/domains/orders/", {"name": "x"}).status_code == 405
    assert c.get("/api/v1/domains/nowhere/").status_code == 404


# -- query counts ----------------------------------------------------------------------------


def _grow(mesh, n, start=0):
    for i in range(start, start + n):
        p = product_create(
            domain=mesh.orders,
            slug=f"bulk-{i}",
            name=f"Bulk {i}",
            tags=["a", "b"],
            ports=[{"slug": "main", "name": "Main", "fields": [{"name": "a"}, {"name": "b"}]}],
        )
        AccessRequest.objects.create(product=p, requester=mesh.consumer, purpose="x")


@pytest.mark.parametrize(
    "url",
    [
        P,
        "/api/v1/ports/",
        "/api/v1/fields/",
        "/api/v1/access-requests/",
        "/api/v1/teams/",
        "/api/v1/domains/",
    ],
)
def test_list_query_count_does_not_grow_with_the_data(mesh, url, django_assert_max_num_queries):
    c = client_for(mesh.owner)
    c.get(url)  # warm caches (content types, permission ids)
    _grow(mesh, 2)
    with django_assert_max_num_queries(14) as small:
        assert c.get(url).status_code == 200
    _grow(mesh, 12, start=2)
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert c.get(url).status_code == 200


# -- OpenAPI ---------------------------------------------------------------------------------


def test_schema_validates_without_warnings():
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")


def test_schema_and_docs_are_served_without_a_cdn(client):
    r = client.get("/api/schema/")
    assert r.status_code == 200 and b"/api/v1/products/{domain}/{product}/contract" in r.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert "swagger-ui" in docs.text and "cdn" not in docs.text.lower()
    assert "/static/drf_spectacular_sidecar/" in docs.text


# -- the automation flow: a CI pipeline with a token and a YAML file -----------------------------


CONTRACT = """
apiVersion: v3.2.0
kind: DataContract
id: returns
name: Returns
version: 1.0.0
status: draft
domain: orders
dataProduct: returns
schema:
  - name: returns
    physicalType: table
    physicalName: sales.returns
    properties:
      - {name: return_id, logicalType: integer, required: true, primaryKey: true}
      - {name: reason, logicalType: string}
"""


def test_ci_pipeline_creates_updates_and_reads_a_product_with_a_token(mesh):
    ci = bearer(mesh.member)
    url = P + "orders/returns/contract"
    r = ci.put(url, data=CONTRACT, content_type="application/yaml")
    assert r.status_code == 201, r.json()
    assert r.json()["created"] and r.json()["version"] == 1
    r = ci.put(url, data=CONTRACT, content_type="application/yaml")
    assert r.status_code == 200 and not r.json()["changed"]  # idempotent
    doc = yaml.safe_load(ci.get(url).content)
    doc["schema"][0]["properties"].append({"name": "refunded", "logicalType": "boolean"})
    r = ci.put(url, data=yaml.safe_dump(doc), content_type="application/yaml")
    assert r.json()["changed"] and not r.json()["breaking"]
    # publish (an owner), then remove a field: breaking, refused without a major bump
    assert client_for(mesh.owner).post(P + "orders/returns/publish/").status_code == 200
    doc["schema"][0]["properties"] = doc["schema"][0]["properties"][:2]
    r = ci.put(url, data=yaml.safe_dump(doc), content_type="application/yaml")
    assert r.status_code == 400
    assert r.json()["errors"][0]["field"] == "version"
    assert "major version bump" in r.json()["detail"] and "refunded removed" in r.json()["detail"]
    assert SchemaField.objects.filter(port__product__slug="returns", name="refunded").exists()
    preview = ci.put(
        url + "?dry_run=true",
        data=yaml.safe_dump({**doc, "version": "2.0.0"}),
        content_type="application/yaml",
    ).json()
    assert preview["breaking"] and not preview["applied"]
    doc["version"] = "2.0.0"
    r = ci.put(url, data=yaml.safe_dump(doc), content_type="application/yaml")
    assert r.status_code == 200 and r.json()["breaking"] and r.json()["version"] == 3
    versions = ci.get(P + "orders/returns/contract/versions/").json()
    assert [v["number"] for v in versions["results"]] == [3, 2, 1]
    diff = ci.get(P + "orders/returns/contract/diff/", {"from": 1, "to": 3}).json()
    assert not diff["breaking"] or diff["changes"]
    diff = ci.get(P + "orders/returns/contract/diff/", {"from": 2}).json()
    assert diff["breaking"] and any(c["kind"] == "field_removed" for c in diff["changes"])
    one = ci.get(P + "orders/returns/contract/versions/1/").json()
    assert "return_id" in one["document"]
    assert ci.get(P + "orders/returns/").json()["version"] == "2.0.0"


def test_contract_put_errors_are_400_with_paths_and_change_nothing(mesh):
    ci = bearer(mesh.member)
    url = P + "orders/returns/contract"
    r = ci.put(url, data="name: [oops\n", content_type="application/yaml")
    assert r.status_code == 400 and "line 2, column" in r.json()["detail"]
    bad = CONTRACT.replace("logicalType: string", "logicalType: text")
    r = ci.put(url, data=bad, content_type="application/yaml")
    assert r.status_code == 400
    assert r.json()["errors"][0]["field"] == "schema[0].properties[1].logicalType"
    r = ci.put(
        P + "users/returns/contract",
        data=CONTRACT.replace("domain: orders", "domain: users"),
        content_type="application/yaml",
    )
    # Rights are 403 at every door (tests/ownership/test_same_answer.py), not a 400.
    assert r.status_code == 403 and "Only the team owning Users" in r.json()["detail"]
    r = ci.put(P + "orders/other/contract", data=CONTRACT, content_type="application/yaml")
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "dataProduct"
    assert not DataProduct.objects.filter(slug__in=["returns", "other"]).exists()


def test_nul_bytes_are_a_400_not_a_500(client, mesh):
    client.force_login(mesh.consumer)
    r = client.get("/api/v1/products/?search=a%00b")
    assert r.status_code == 400 and "NUL" in r.json()["detail"]
    assert client.get("/search/?q=a%00b").status_code == 400


# -- products by URN: the same reads and writes as by <domain>/<product> -------------------------


def test_urn_routes_read_and_write_like_the_path(mesh):
    U = P + "urn:mesh:orders:draft-product/"
    member, owner = client_for(mesh.member), client_for(mesh.owner)
    r = member.patch(U, {"summary": "By URN"}, format="json")
    assert r.status_code == 200 and r.json()["summary"] == "By URN"
    assert member.get(U + "contract/versions/").json()["count"] >= 2
    assert member.get(U + "contract/diff/", {"from": 1}).status_code == 200
    assert "By URN" in member.get(U + "contract").content.decode()
    doc = yaml.safe_load(member.get(U + "contract").content)
    doc["name"] = "Renamed by URN"
    r = member.put(U + "contract", data=yaml.safe_dump(doc), content_type="application/yaml")
    assert r.status_code == 200 and r.json()["changed"], r.json()
    assert member.post(U + "publish/").status_code == 403  # members edit, owners publish
    r = owner.post(U + "publish/")
    assert r.status_code == 200 and r.json()["status"] == "published"
    assert owner.post(U + "deprecate/", {}, format="json").json()["status"] == "deprecated"
    # The same refusals as by path: 404 invisible, 403 not theirs.
    c = client_for(mesh.consumer)
    assert c.get(P + "urn:mesh:users:draft-product/").status_code == 404
    assert c.patch(P + "urn:mesh:users:draft-product/", {"name": "x"}).status_code == 404
    assert c.patch(U, {"name": "x"}, format="json").status_code == 403
    assert c.delete(U).status_code == 403
    assert c.get(P + "urn:mesh:nope/").status_code == 404
    assert DataProduct.objects.get(slug="draft-product", domain=mesh.orders).name == (
        "Renamed by URN"
    )


def test_lifecycle_steps_are_idempotent_for_pipelines(mesh):
    """A pipeline that publishes (deprecates, retires) on every run succeeds on the second run
    with `changed: false`; someone who may not take the step is still refused."""
    c = client_for(mesh.owner)
    url = P + "orders/draft-product/"
    first, again = c.post(url + "publish/"), c.post(url + "publish/")
    assert (first.status_code, first.json()["changed"]) == (200, True)
    assert (again.status_code, again.json()["changed"]) == (200, False)
    assert again.json()["status"] == "published"
    assert DataProduct.objects.get(slug="draft-product", domain__slug="orders").published_at
    for step, state in (("deprecate", "deprecated"), ("retire", "retired")):
        url = P + "users/published-product/"
        owner = client_for(mesh.other_owner)  # owns the users team
        answers = [owner.post(url + f"{step}/", {}, format="json") for _ in range(2)]
        assert [(r.status_code, r.json()["changed"]) for r in answers] == [
            (200, True),
            (200, False),
        ]
        assert answers[1].json()["status"] == state
    refused = client_for(mesh.member).post(P + "orders/draft-product/publish/")
    assert refused.status_code == 403 and "Only owners of Orders Team" in refused.json()["detail"]
    stranger = client_for(mesh.consumer).post(P + "orders/published-product/deprecate/", {})
    assert stranger.status_code == 403


def test_every_request_body_in_the_schema_is_json(mesh):
    """One body type per operation (contract and ODPS uploads: YAML or JSON text), so that generated
    clients can send nested objects (before: JSON, form and multipart everywhere)."""
    schema = yaml.safe_load(client_for(mesh.member).get("/api/schema/").content)
    types = {
        f"{method.upper()} {path}": sorted(op["requestBody"]["content"])
        for path, ops in schema["paths"].items()
        for method, op in ops.items()
        if isinstance(op, dict) and "requestBody" in op
    }
    assert types
    odd = {
        k: v
        for k, v in types.items()
        if v != ["application/json"] and not k.endswith(("/contract", "/odps"))
    }
    assert odd == {}


@pytest.mark.parametrize("ordering", ["status", "-name", "created_at"])
def test_an_ordered_lists_pages_hold_each_product_once_when_the_ordering_ties(mesh, ordering):
    """`?ordering=` by a field many products share: page after page, every product the caller
    sees comes exactly once (the API ends every ordering with the id)."""
    from django.utils import timezone

    from meshportal.audit import audit_context
    from products import services

    with audit_context(door="command"):
        services.products_create_many(
            [
                services.product_build(
                    domain=mesh.users, slug=f"twin-{i:02}", name="Twin", status="published"
                )
                for i in range(40)
            ]
        )
    DataProduct.objects.filter(slug__startswith="twin-").update(created_at=timezone.now())
    c = client_for(mesh.consumer)
    seen, url = [], P + f"?ordering={ordering}&page_size=7"
    while url:
        body = c.get(url).json()
        seen += [p["urn"] for p in body["results"]]
        url = body["next"]
    assert len(seen) == len(set(seen)) == body["count"]
    assert sum(u.startswith("urn:mesh:users:twin-") for u in seen) == 40
