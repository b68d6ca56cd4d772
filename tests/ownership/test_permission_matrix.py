"""The permission matrix: every role × product state × action × door, each cell asserting the
exact outcome. The expected outcomes are written here from the rules in the issue, not derived
from meshportal.permissions, so the two are checked against each other.

Adding a door or an action means adding one entry to DOORS (and to `expected`), not copying tests.
"""

import copy

import pytest
from django.urls import reverse

from products.models import AccessRequest, DataProduct

ROLES = ["anon", "consumer", "approved", "member", "owner", "other_owner", "staff"]
STATES = ["draft", "published", "deprecated"]
TEAM = {"member", "owner", "staff"}
OWNERS = {"owner", "staff"}

OK, FORBIDDEN, HIDDEN, LOGIN = "ok", "forbidden", "hidden", "login"
SECRET = "sales.secret_table"  # the port location: a connection detail


def expected(role: str, state: str, action: str, door: str) -> str:
    if role == "anon":
        return LOGIN  # pages redirect to sign-in; the API answers 401
    if door == "admin":
        # The admin console is the platform team's: everyone else is sent to its sign-in.
        return OK if role == "staff" else LOGIN
    if action == "approve_access":
        # Only the request's requester and the owning team's owners may even see a request.
        if role in OWNERS:
            return OK
        return FORBIDDEN if role == "consumer" else HIDDEN
    if role not in TEAM and state == "draft":
        return HIDDEN
    allowed = {
        "view": True,
        "view_connection": role in TEAM or role == "approved",
        "edit": role in TEAM,
        "publish": role in OWNERS and state == "draft",
        "deprecate": role in OWNERS and state == "published",
        "retire": role in OWNERS and state in ("published", "deprecated"),
        "delete": role in OWNERS,
    }[action]
    return OK if allowed else FORBIDDEN


def outcome_of(response) -> str:
    if response.status_code == 302 and "login" in response["Location"]:
        return LOGIN
    return {200: OK, 204: OK, 302: OK, 401: LOGIN, 403: FORBIDDEN, 404: HIDDEN}[
        response.status_code
    ]


@pytest.fixture
def mesh(module_mesh, db):
    """The module's one mesh (see tests/conftest.py): built once, not once per cell."""
    return copy.deepcopy(module_mesh)


def _url(p: DataProduct, name: str, **extra) -> str:
    return reverse(name, kwargs={"domain": p.domain.slug, "product": p.slug, **extra})


def _reload(p: DataProduct) -> DataProduct | None:
    return DataProduct.objects.filter(pk=p.pk).first()


# -- doors: each action is a function (client, mesh, product) -> observed outcome -------------


def page_view(client, m, p):
    return outcome_of(client.get(p.get_absolute_url()))


def page_view_connection(client, m, p):
    r = client.get(p.get_absolute_url() + "?tab=ports")
    if r.status_code != 200:
        return outcome_of(r)
    return OK if SECRET in r.text else FORBIDDEN


def page_edit(client, m, p):
    get = outcome_of(client.get(_url(p, "products:edit")))
    r = client.post(
        _url(p, "products:edit"),
        {
            "name": "Renamed",
            "slug": p.slug,
            "version": p.version,
            "classification": p.classification,
        },
    )
    post = outcome_of(r)
    changed = _reload(p).name == "Renamed"
    assert changed == (post == OK), "the POST's effect must match its answer"
    assert get == post
    return post


def _lifecycle(action, effect):
    def door(client, m, p):
        if action == "retire":
            # Retirement is also refused while consumers hold grants (tests/lineage covers
            # that rule); this matrix checks only who may retire.
            AccessRequest.objects.filter(product=p, status="approved").update(status="revoked")
        url = _url(p, "products:lifecycle", action=action)
        get = outcome_of(client.get(url))
        post = outcome_of(client.post(url, {}))
        assert get == post
        assert effect(p) == (post == OK), f"{action}: effect must match the answer"
        return post

    return door


def page_approve_access(client, m, p):
    req = AccessRequest.objects.create(product=p, requester=m.consumer, purpose="analysis")
    r = client.post(reverse("products:decide", args=[req.pk]), {"decision": "approve"})
    req.refresh_from_db()
    if r.status_code == 302 and "login" not in r["Location"]:
        # A visible request that could not be decided is answered with a message, not a change.
        return OK if req.status == "approved" else FORBIDDEN
    assert req.status == "pending"
    return outcome_of(r)


def admin_view(client, m, p):
    return outcome_of(client.get(reverse("admin:products_dataproduct_change", args=[p.pk])))


def admin_delete(client, m, p):
    r = client.post(reverse("admin:products_dataproduct_delete", args=[p.pk]), {"post": "yes"})
    gone = _reload(p) is None
    assert gone == (outcome_of(r) == OK)
    return outcome_of(r)


def _api_url(p: DataProduct) -> str:
    return f"/api/v1/products/{p.domain.slug}/{p.slug}/"


def api_view(client, m, p):
    return outcome_of(client.get(_api_url(p)))


def api_view_connection(client, m, p):
    r = client.get(_api_url(p))
    if r.status_code != 200:
        return outcome_of(r)
    port = p.ports.get()
    detail = client.get(f"/api/v1/ports/{port.pk}/")
    return OK if detail.json().get("location") == SECRET else FORBIDDEN


def api_edit(client, m, p):
    r = client.patch(_api_url(p), {"summary": "via api"}, content_type="application/json")
    changed = _reload(p).summary == "via api"
    assert changed == (outcome_of(r) == OK)
    return outcome_of(r)


def api_delete(client, m, p):
    r = client.delete(_api_url(p))
    assert (_reload(p) is None) == (outcome_of(r) == OK)
    return outcome_of(r)


DOORS = {
    "page": {
        "view": page_view,
        "view_connection": page_view_connection,
        "edit": page_edit,
        "publish": _lifecycle(
            "publish", lambda p: _reload(p).status == "published" and p.status == "draft"
        ),
        "deprecate": _lifecycle(
            "deprecate", lambda p: _reload(p).status == "deprecated" and p.status == "published"
        ),
        "retire": _lifecycle("retire", lambda p: _reload(p).status == "retired"),
        "delete": _lifecycle("delete", lambda p: _reload(p) is None),
        "approve_access": page_approve_access,
    },
    "admin": {
        "view": admin_view,
        "delete": admin_delete,
    },
    "api": {
        "view": api_view,
        "view_connection": api_view_connection,
        "edit": api_edit,
        "delete": api_delete,
    },
}

CELLS = [
    (door, action, role, state)
    for door, actions in DOORS.items()
    for action in actions
    for role in ROLES
    for state in STATES
]


@pytest.mark.parametrize(
    ("door", "action", "role", "state"), CELLS, ids=["-".join(c) for c in CELLS]
)
def test_cell(client, mesh, door, action, role, state):
    product = mesh.products[("orders", state)]
    if role != "anon":
        client.force_login(getattr(mesh, role))
    observed = DOORS[door][action](client, mesh, product)
    assert observed == expected(role, state, action, door)


TEAM_ROLES = ["anon", "consumer", "member", "owner", "other_owner", "staff"]


@pytest.mark.parametrize("role", TEAM_ROLES)
def test_manage_team(client, mesh, role):
    from django.contrib.auth import get_user_model

    newcomer = get_user_model().objects.create_user("newcomer")
    if role != "anon":
        client.force_login(getattr(mesh, role))
    r = client.post(
        reverse("domains:member_add", args=[mesh.orders_team.slug]),
        {"username": "newcomer", "role": "member"},
    )
    added = mesh.orders_team.memberships.filter(user=newcomer).exists()
    want = {"anon": LOGIN, "owner": OK, "staff": OK}.get(role, FORBIDDEN)
    assert outcome_of(r) == want
    assert added == (want == OK)


@pytest.mark.parametrize("role", ["consumer", "member", "owner", "other_owner", "staff"])
def test_transfer_domain_is_staff_only(client, mesh, role):
    user = getattr(mesh, role)
    user.is_staff = True  # even with the admin console open, only platform staff transfer
    user.save()
    client.force_login(user)
    client.post(
        reverse("admin:domains_domain_changelist"),
        {
            "action": "transfer",
            "_selected_action": [mesh.orders.pk],
            "confirm": "yes",
            "to_team": mesh.users_team.pk,
        },
    )
    mesh.orders.refresh_from_db()
    assert (mesh.orders.owner_team == mesh.users_team) == (role == "staff")
