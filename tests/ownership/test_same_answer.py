"""One rule, one answer, every door: a refusal is the same status and the same message from the
page, the API, the contract upload (page and API) and the service itself (docs/architecture.md,
"One rule, one place")."""

import pytest
import yaml
from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework.test import APIClient

from meshportal.permissions import CREATE_PRODUCT, refusal
from products import services
from products.models import AccessRequest, DataProduct

pytestmark = pytest.mark.django_db


def _api(user) -> APIClient:
    c = APIClient()
    c.force_authenticate(user)
    return c


def _api_message(r) -> str:
    body = r.json()
    return body.get("detail") or " ".join(e["message"] for e in body.get("errors", []))


def _contract_for_new_product(domain: str, slug: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v3.0.2",
            "kind": "DataContract",
            "id": f"urn:mesh:{domain}:{slug}",
            "version": "1.0.0",
            "status": "draft",
            "name": "Intruder",
            "domain": domain,
            "dataProduct": slug,
        }
    )


def test_creating_a_product_in_another_teams_domain_is_403_with_one_message(mesh, client):
    """Before: 403 from POST /api/v1/products/, but 400 (with another message) from
    PUT …/contract and from the contract upload page."""
    outsider = mesh.other_owner  # owns the users team, not orders
    expected = refusal(outsider, CREATE_PRODUCT, mesh.orders)
    answers = {}

    r = _api(outsider).post(
        "/api/v1/products/", {"domain": "orders", "slug": "intruder", "name": "I"}, format="json"
    )
    answers["api create"] = (r.status_code, _api_message(r))
    r = _api(outsider).put(
        "/api/v1/products/orders/intruder/contract",
        _contract_for_new_product("orders", "intruder"),
        content_type="application/yaml",
    )
    answers["api contract"] = (r.status_code, _api_message(r))
    client.force_login(outsider)
    r = client.post(
        "/contracts/import/",
        {"document": _contract_for_new_product("orders", "intruder"), "apply": "1"},
    )
    answers["upload page"] = (r.status_code, expected if expected in r.text else r.text[:200])
    r = client.get("/domains/orders/products/new/")
    answers["create page"] = (r.status_code, expected if expected in r.text else r.text[:200])

    assert answers == {door: (403, expected) for door in answers}
    assert not DataProduct.objects.filter(slug="intruder").exists()


# (move, who tries it): each may see the request, but the move is not theirs.
WRONG = [
    ("approve", "consumer"),  # the requester deciding their own request
    ("deny", "consumer"),
    ("revoke", "approved"),  # the grantee ending their own grant
    ("withdraw", "owner"),  # the product's owner withdrawing someone else's request
]


def _pending_or_granted(mesh, move) -> AccessRequest:
    product = mesh.products[("orders", "published")]
    if move == "revoke":
        return AccessRequest.objects.get(product=product, requester=mesh.approved)
    return services.access_request_create(
        product=product, requester=mesh.consumer, purpose="quarterly report"
    )


def _doors(mesh, client, req, move, user):
    """(service refusal, API response, page response) for one move by one user."""
    call = {
        "approve": services.access_request_approve,
        "deny": services.access_request_deny,
        "revoke": services.access_grant_revoke,
        "withdraw": services.access_request_withdraw,
    }[move]
    try:
        call(request=req, by=user, **({"comment": "no"} if move in ("deny", "revoke") else {}))
        refused = None
    except Exception as e:  # noqa: BLE001 - the test compares what each door answers
        refused = e
    api = _api(user).post(
        f"/api/v1/access-requests/{req.pk}/{move}/", {"comment": "no"}, format="json"
    )
    client.force_login(user)
    if move in ("approve", "deny"):
        page = client.post(f"/access/{req.pk}/decide/", {"decision": move, "comment": "no"})
    else:
        page = client.post(f"/access/{req.pk}/{move}/")
    return refused, api, page


@pytest.mark.parametrize("move,who", WRONG)
def test_access_request_moves_by_the_wrong_person_are_403_with_one_message(mesh, client, move, who):
    """Page, API and service ask the same rule (meshportal.permissions) for every transition.
    Before: each door wrote its own check; the service answered 400 where the API said 403,
    and the page let the requester reach the service."""
    req = _pending_or_granted(mesh, move)
    before = (req.status, AccessRequest.objects.count())
    refused, api, page = _doors(mesh, client, req, move, getattr(mesh, who))
    assert isinstance(refused, PermissionDenied)
    message = str(refused)
    assert (api.status_code, _api_message(api)) == (403, message)
    assert page.status_code == 403 and message in page.content.decode()
    req.refresh_from_db()
    assert (req.status, AccessRequest.objects.count()) == before


@pytest.mark.parametrize("move", ["approve", "withdraw"])
def test_someone_who_may_not_see_the_request_gets_404_at_every_door(mesh, client, move):
    req = _pending_or_granted(mesh, move)
    refused, api, page = _doors(mesh, client, req, move, mesh.member)  # not an owner
    assert isinstance(refused, Http404)
    assert (api.status_code, page.status_code) == (404, 404)
    req.refresh_from_db()
    assert req.status == "pending"
