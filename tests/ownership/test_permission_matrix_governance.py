"""The permission matrix, continued: policies, waivers, votes, quality checks, webhooks, glossary
links and data sources — every role × state × action × door (page, API, admin, MCP), each cell
asserting the exact outcome. As in test_permission_matrix.py the expected outcomes are written
here from the documented rules (docs/security.md "Permissions", docs/governance.md,
docs/quality.md), not derived from meshportal.permissions, so the two are checked against each
other. Every refused write is also checked to have changed nothing in the database.

The mesh is built once per module (tests/conftest.py `module_mesh`); the governance objects are
added on top of it by `gov`, inside the same module transaction.
"""

import copy
import sqlite3
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.contrib.messages import constants as message_levels
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from governance.models import (
    DataSource,
    GlossaryTerm,
    Policy,
    PolicyVote,
    QualityCheck,
    QualityRun,
    Waiver,
    Webhook,
    WebhookDelivery,
)
from governance.policies import services as policy_services
from governance.quality import services as quality_services
from meshportal import queue
from meshportal.audit import audit_context
from meshportal.models import AuditEntry, PendingTask
from products.models import SchemaField
from tests.html_forms import form_data

ROLES = ["anon", "consumer", "approved", "member", "owner", "other_owner", "staff", "council"]
TEAM = {"member", "owner", "staff"}  # the orders team, and platform staff
OWNERS = {"owner", "staff"}
DOMAIN_OWNERS = {"owner", "other_owner"}  # each owns a team that owns a domain
OK, FORBIDDEN, HIDDEN, LOGIN = "ok", "forbidden", "hidden", "login"

HOOK_HOST = "hooks.example.com"  # allowed by the platform (MESH_WEBHOOK_ALLOWED_HOSTS)
PASSWORD_ENV = "MATRIX_WAREHOUSE_PASSWORD"
PASSWORD = "pw-canary-5e1f0c"  # noqa: S105  # the value a data source's password_env names
SOURCE = "Matrix Warehouse"

# A council delegate sees a draft while a waiver on it awaits their decision
# (governance.policies.permissions.delegate_sees_draft). `gov` asks for such a waiver on the
# orders draft, so the delegate sees that draft — and so its checks — as the rule says.
COUNCIL_SEES_DRAFT = True


def sees(role: str, state: str) -> bool:
    """May role see the orders product in this state? (published: every signed-in user)"""
    if state != "draft":
        return True
    return role in TEAM or (role == "council" and COUNCIL_SEES_DRAFT)


def team_acts(role: str, state: str) -> str:
    """Actions that are the product's team's (its quality checks, its fields' glossary links)."""
    if not sees(role, state):
        return HIDDEN
    return OK if role in TEAM else FORBIDDEN


def expected(obj: str, action: str, door: str, role: str, state: str) -> str:
    if role == "anon":
        return LOGIN  # pages redirect to sign-in; the API answers 401; MCP asks for a token
    if door == "admin":
        # The console's governance pages are the platform team's: everyone else is sent to its
        # sign-in (the council's delegates and team owners included).
        if role != "staff":
            return LOGIN
        if (obj, action) == ("policy", "override"):
            return OK if state in ("proposed", "rejected") else FORBIDDEN
        if (obj, action) == ("webhook", "create"):
            return FORBIDDEN  # added on the team's page only (its secret is shown there once)
        return OK
    if obj == "policy":
        return {
            "view": OK,
            "propose": OK
            if role in ({"staff", "council"} | DOMAIN_OWNERS if state == "global" else OWNERS)
            else FORBIDDEN,
            "vote": OK if role == "council" and state == "proposed" else FORBIDDEN,
            "evaluate": OK if role in ("staff", "council") else FORBIDDEN,
            "retire": OK if role in ("staff", "council") else FORBIDDEN,
        }[action]
    if obj == "waiver":
        if not sees(role, state):
            return HIDDEN
        return {
            "view": OK,
            "request": OK if role in OWNERS else FORBIDDEN,
            # the owner asked for it: deciding one's own request is refused
            "decide": OK if role in ("staff", "council") else FORBIDDEN,
        }[action]
    if obj == "check":
        if action == "view":
            return OK if sees(role, state) else HIDDEN
        return team_acts(role, state)
    if obj == "webhook":
        if action in ("list", "create"):  # the team's page: the team is public
            return OK if role in OWNERS else FORBIDDEN
        return OK if role in OWNERS else HIDDEN  # another team's webhook does not exist for you
    if obj == "glossary":
        if action in ("link", "unlink"):
            return team_acts(role, state)
        # create/edit a global term: the council (and platform); a domain's: also its owners
        keepers = {"staff", "council"} | ({"owner"} if state == "orders" else set())
        return OK if role in keepers else FORBIDDEN
    if obj == "source":
        # Seen through a port: the data source is a connection detail (team, approved, staff).
        return OK if role in TEAM or role == "approved" else FORBIDDEN
    raise AssertionError(f"no rule for {obj} {action}")


# -- the module's mesh ------------------------------------------------------------------------


def _warehouse(path) -> str:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE orders (order_id INTEGER)")
    conn.commit()
    conn.close()
    return str(path)


@pytest.fixture(scope="module")
def gov(module_mesh, django_db_blocker, tmp_path_factory):
    """Governance objects on top of module_mesh, in its transaction (rolled back at the end)."""
    m = module_mesh
    g = SimpleNamespace()
    with (
        django_db_blocker.unblock(),
        override_settings(MESH_WEBHOOK_ALLOWED_HOSTS=[HOOK_HOST]),
        audit_context(door="command"),
    ):
        g.source = DataSource.objects.create(
            slug="matrix-warehouse",
            name=SOURCE,
            kind="sqlite",
            database=_warehouse(tmp_path_factory.mktemp("wh") / "warehouse.sqlite3"),
            default_schema="main",
            password_env=PASSWORD_ENV,
        )
        g.ports, g.checks, g.fields, g.waivers = {}, {}, {}, {}
        for state in ("draft", "published"):
            port = m.products[("orders", state)].ports.get()
            port.data_source = g.source
            port.save()
            g.ports[state] = port
            g.checks[state] = quality_services.check_create(
                port=port,
                name=f"rows {state}",
                kind="row_count",
                params={"min": 1},
                by=m.owner,
                verify_columns=False,
            )
            g.fields[state] = SchemaField.objects.get(port=port, name="order_id")
        propose = dict(rule_type="documentation", parameters={}, severity="advisory")
        g.policies = {
            "proposed": policy_services.policy_propose(
                by=m.council, key="pol-proposed", title="Proposed policy", **propose
            ),
            "active": policy_services.policy_propose(
                by=m.council, key="pol-active", title="Active policy", **propose
            ),
            "rejected": policy_services.policy_propose(
                by=m.council, key="pol-rejected", title="Rejected policy", **propose
            ),
            "waivable": policy_services.policy_propose(
                by=m.council, key="pol-waivable", title="Waivable policy", **propose
            ),
        }
        for key in ("active", "waivable"):
            policy_services.policy_override_activate(
                policy=g.policies[key], by=m.staff, reason="matrix set-up"
            )
        Policy.objects.filter(pk=g.policies["rejected"].pk).update(status="rejected")
        for p in g.policies.values():
            p.refresh_from_db()
        for state in ("draft", "published"):
            g.waivers[state] = policy_services.waiver_request(
                policy=g.policies["active"],
                product=m.products[("orders", state)],
                by=m.owner,
                justification=f"WAIVER-{state.upper()}-WHY",
            )
        g.terms = {
            "global": policy_services.glossary_term_save(
                by=m.council, name="Customer", slug="customer", definition="Who buys."
            ),
            "orders": policy_services.glossary_term_save(
                by=m.owner,
                name="Order",
                slug="order",
                definition="What is bought.",
                domain=m.orders,
            ),
        }
        for state in ("draft", "published"):
            policy_services.field_glossary_link(
                field=g.fields[state], term=g.terms["orders"], by=m.owner
            )
            g.fields[state].refresh_from_db()
        g.hook, _ = quality_services.webhook_create(
            team=m.orders_team, url=f"https://{HOOK_HOST}/orders", by=m.owner
        )
    return g


@pytest.fixture
def mesh(module_mesh, gov, db):
    """The module's one mesh and its governance objects (built once, not once per cell)."""
    return copy.deepcopy(SimpleNamespace(**vars(module_mesh), **vars(gov)))


@pytest.fixture(autouse=True)
def _doors(settings, monkeypatch):
    settings.MESH_WEBHOOK_ALLOWED_HOSTS = [HOOK_HOST]
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    sent: list = []
    # Tasks leave through meshportal.queue: record what would go to the broker.
    monkeypatch.setattr(queue, "_publish", lambda name, args, kwargs, opts: sent.append(name))
    return sent


# -- reading answers --------------------------------------------------------------------------


def outcome_of(response) -> str:
    if response.status_code == 302 and "login" in response["Location"]:
        return LOGIN
    return {
        200: OK,
        201: OK,
        202: OK,
        204: OK,
        302: OK,
        400: "invalid",
        401: LOGIN,
        403: FORBIDDEN,
        404: HIDDEN,
    }.get(response.status_code, f"status {response.status_code}")


def write(outcome: str, effect: bool) -> str:
    """A write's outcome: OK only with its effect; a refusal never with it."""
    if outcome == OK:
        return OK if effect else "answered ok, changed nothing"
    assert not effect, f"answered {outcome} but the write happened"
    return outcome


def db_state() -> tuple:
    """What any of these writes could change; a refused write leaves it as it was."""
    return (
        list(Policy.objects.order_by("pk").values_list("key", "status", "title")),
        list(PolicyVote.objects.order_by("pk").values_list("policy_id", "voter_id", "decision")),
        list(Waiver.objects.order_by("pk").values_list("pk", "status", "decided_by_id")),
        list(QualityCheck.objects.order_by("pk").values_list("pk", "name", "params", "enabled")),
        QualityRun.objects.count(),
        list(Webhook.objects.order_by("pk").values_list("pk", "url", "active")),
        WebhookDelivery.objects.count(),
        list(GlossaryTerm.objects.order_by("pk").values_list("slug", "name", "definition")),
        list(SchemaField.objects.order_by("pk").values_list("pk", "glossary_term_id")),
        list(DataSource.objects.order_by("pk").values()),
        AuditEntry.objects.count(),
        PendingTask.objects.count(),
    )


def admin_form(client, url: str, changes: dict, containing: str):
    """GET an admin form and POST it back with `changes`, as a browser would. Someone the
    console refuses is refused on the GET; the POST is sent anyway (with just the changes)."""
    r = client.get(url)
    data = form_data(r.text, containing=containing) if r.status_code == 200 else {}
    return r, client.post(url, {**data, **changes})


def admin_action(client, model: str, action: str, pks: list, **extra):
    r = client.post(
        reverse(f"admin:governance_{model}_changelist"),
        {"action": action, "_selected_action": pks, **extra},
        follow=True,
    )
    if r.redirect_chain and "login" in r.redirect_chain[0][0]:
        return LOGIN, r
    if r.status_code != 200:
        return outcome_of(r), r
    errors = [m for m in r.context["messages"] if m.level == message_levels.ERROR]
    return (FORBIDDEN if errors else OK), r


def _product_url(p, name, **kw) -> str:
    return reverse(name, kwargs={"domain": p.domain.slug, "product": p.slug, **kw})


def _fresh(obj):
    return type(obj).objects.filter(pk=obj.pk).first()


# -- doors: each is a function (client, mesh, state, user) -> observed outcome -----------------
# -- policies

API = "/api/v1"


def policy_view_page(c, m, state, user):
    return outcome_of(c.get(m.policies[state].get_absolute_url()))


def policy_view_api(c, m, state, user):
    r = c.get(f"{API}/policies/{m.policies[state].key}/")
    assert r.status_code != 200 or r.json()["key"] == m.policies[state].key
    return outcome_of(r)


def policy_view_admin(c, m, state, user):
    return outcome_of(c.get(reverse("admin:governance_policy_change", args=[m.policies[state].pk])))


def policy_view_mcp(c, m, state, user, mcp):
    answer = mcp(user, "list_policies", status="")
    if isinstance(answer, str):
        return answer
    keys = {row["key"] for row in answer["results"]}
    return OK if m.policies[state].key in keys else HIDDEN


def _propose_fields(m, state):
    return {
        "key": "pol-new",
        "title": "New policy",
        "rationale": "",
        "rule_type": "documentation",
        "parameters": "{}",
        "severity": "advisory",
        "domain": m.orders.pk if state == "orders" else "",
    }


def _proposed() -> bool:
    return Policy.objects.filter(key="pol-new").exists()


def policy_propose_page(c, m, state, user):
    url = reverse("governance:policy_propose")
    get = outcome_of(c.get(url))
    post = write(outcome_of(c.post(url, _propose_fields(m, state))), _proposed())
    assert get in (post, OK), f"GET {get} but POST {post}"
    return post


def policy_propose_api(c, m, state, user):
    body = {**_propose_fields(m, state), "parameters": {}}
    body["domain"] = m.orders.slug if state == "orders" else None
    r = c.post(f"{API}/policies/", body, content_type="application/json")
    return write(outcome_of(r), _proposed())


def policy_propose_admin(c, m, state, user):
    url = reverse("admin:governance_policy_add")
    _, r = admin_form(c, url, _propose_fields(m, state), containing="key")
    created = Policy.objects.filter(key="pol-new").first()
    if created is not None:
        assert created.status == ("active" if state == "orders" else "proposed")
    return write(outcome_of(r), created is not None)


def _voted(m, state, user) -> bool:
    return PolicyVote.objects.filter(policy=m.policies[state], voter_id=user.pk).exists()


def policy_vote_page(c, m, state, user):
    url = reverse("governance:policy_vote", args=[m.policies[state].key])
    r = c.post(url, {"decision": "approve", "comment": ""})
    return write(outcome_of(r), user is not None and _voted(m, state, user))


def policy_vote_api(c, m, state, user):
    r = c.post(
        f"{API}/policies/{m.policies[state].key}/vote/",
        {"decision": "approve"},
        content_type="application/json",
    )
    return write(outcome_of(r), user is not None and _voted(m, state, user))


def policy_evaluate_page(c, m, state, user, sent):
    r = c.post(reverse("governance:evaluate"))
    return write(outcome_of(r), bool(sent))


def policy_evaluate_api(c, m, state, user, sent):
    r = c.post(f"{API}/compliance/evaluate/")
    assert r.status_code != 202 or r.json()["queued"] is True
    return write(outcome_of(r), bool(sent))


def policy_retire_page(c, m, state, user):
    r = c.post(reverse("governance:policy_retire", args=[m.policies[state].key]))
    return write(outcome_of(r), _fresh(m.policies[state]).status == "retired")


def policy_retire_api(c, m, state, user):
    r = c.post(f"{API}/policies/{m.policies[state].key}/retire/")
    return write(outcome_of(r), _fresh(m.policies[state]).status == "retired")


def policy_override_admin(c, m, state, user):
    policy = m.policies[state]
    outcome, _ = admin_action(
        c, "policy", "override_activate", [policy.pk], confirm="yes", reason="regulator deadline"
    )
    activated = _fresh(policy).status == "active" and policy.status != "active"
    if activated:
        entry = AuditEntry.objects.filter(object_id=str(policy.pk)).order_by("-pk").first()
        assert "platform override by staff: regulator deadline" in str(entry.changes)
    return write(outcome, activated)


# -- waivers


def waiver_request_page(c, m, state, user):
    product = m.products[("orders", state)]
    url = reverse("governance:waiver_request", args=["pol-waivable", product.pk])
    get = outcome_of(c.get(url))
    r = c.post(url, {"justification": "not yet"})
    asked = Waiver.objects.filter(policy=m.policies["waivable"], product=product).exists()
    post = write(outcome_of(r), asked)
    assert get in (post, OK), f"GET {get} but POST {post}"
    return post


def waiver_request_api(c, m, state, user):
    product = m.products[("orders", state)]
    body = {"policy": "pol-waivable", "product": product.urn, "justification": "not yet"}
    r = c.post(f"{API}/waivers/", body, content_type="application/json")
    asked = Waiver.objects.filter(policy=m.policies["waivable"], product=product).exists()
    if r.status_code == 400:
        # A product you may not see is answered exactly like one that does not exist.
        unknown = c.post(
            f"{API}/waivers/",
            {**body, "product": "urn:mesh:orders:no-such-product"},
            content_type="application/json",
        )
        assert r.json()["detail"] == unknown.json()["detail"].replace(
            "no-such-product", product.slug
        ), r.json()
        return write(HIDDEN, asked)
    return write(outcome_of(r), asked)


def waiver_view_page(c, m, state, user):
    r = c.get(reverse("governance:waivers"))
    if r.status_code != 200:
        return outcome_of(r)
    return OK if f"WAIVER-{state.upper()}-WHY" in r.text else HIDDEN


def waiver_view_api(c, m, state, user):
    return outcome_of(c.get(f"{API}/waivers/{m.waivers[state].pk}/"))


def waiver_view_admin(c, m, state, user):
    return outcome_of(c.get(reverse("admin:governance_waiver_change", args=[m.waivers[state].pk])))


def _granted(m, state) -> bool:
    return _fresh(m.waivers[state]).status == "granted"


def waiver_decide_page(c, m, state, user):
    expires = (timezone.now() + timedelta(days=30)).strftime("%Y-%m-%d %H:%M")
    r = c.post(
        reverse("governance:waiver_decide", args=[m.waivers[state].pk]),
        {"decision": "grant", "decision_reason": "fine for now", "expires_at": expires},
    )
    return write(outcome_of(r), _granted(m, state))


def waiver_decide_api(c, m, state, user):
    r = c.post(
        f"{API}/waivers/{m.waivers[state].pk}/grant/",
        {
            "decision_reason": "fine for now",
            "expires_at": (timezone.now() + timedelta(days=30)).isoformat(),
        },
        content_type="application/json",
    )
    return write(outcome_of(r), _granted(m, state))


# -- quality checks


def check_view_page(c, m, state, user):
    return outcome_of(c.get(reverse("governance:quality_check", args=[m.checks[state].pk])))


def check_view_api(c, m, state, user):
    return outcome_of(c.get(f"{API}/quality-checks/{m.checks[state].pk}/"))


def check_view_admin(c, m, state, user):
    url = reverse("admin:governance_qualitycheck_change", args=[m.checks[state].pk])
    return outcome_of(c.get(url))


def check_view_mcp(c, m, state, user, mcp):
    answer = mcp(user, "get_product", urn=m.products[("orders", state)].urn)
    if isinstance(answer, str):
        return answer
    names = [check["name"] for check in answer["quality_checks"]["checks"]]
    return OK if names == [m.checks[state].name] else f"checks {names}"


def _added(m, state) -> bool:
    return QualityCheck.objects.filter(port=m.ports[state], name="added").exists()


def check_add_page(c, m, state, user):
    url = _product_url(m.products[("orders", state)], "governance:quality_check_create")
    get = outcome_of(c.get(url))
    r = c.post(
        url,
        {
            "port": m.ports[state].pk,
            "name": "added",
            "kind": "row_count",
            "min": "1",
            "unit": "count",
            "interval_minutes": "60",
        },
    )
    post = write(outcome_of(r), _added(m, state))
    assert get in (post, OK), f"GET {get} but POST {post}"
    return post


def check_add_api(c, m, state, user):
    body = {"port": m.ports[state].pk, "name": "added", "kind": "row_count", "params": {"min": 1}}
    r = c.post(f"{API}/quality-checks/", body, content_type="application/json")
    if r.status_code == 400:
        # A port you may not see is answered exactly like one that does not exist.
        unknown = c.post(
            f"{API}/quality-checks/", {**body, "port": 999999}, content_type="application/json"
        )
        assert r.json()["detail"] == unknown.json()["detail"].replace(
            "999999", str(m.ports[state].pk)
        ), r.json()
        return write(HIDDEN, _added(m, state))
    return write(outcome_of(r), _added(m, state))


def check_add_admin(c, m, state, user):
    _, r = admin_form(
        c,
        reverse("admin:governance_qualitycheck_add"),
        {
            "port": m.ports[state].pk,
            "name": "added",
            "kind": "row_count",
            "columns": "[]",
            "params": '{"min": 1}',
            "enabled": "on",
            "interval_minutes": "60",
            "timeout_seconds": "60",
        },
        containing="name",
    )
    return write(outcome_of(r), _added(m, state))


def _edited(m, state) -> bool:
    return _fresh(m.checks[state]).name == "renamed"


def check_edit_api(c, m, state, user):
    r = c.patch(
        f"{API}/quality-checks/{m.checks[state].pk}/",
        {"name": "renamed"},
        content_type="application/json",
    )
    return write(outcome_of(r), _edited(m, state))


def check_edit_admin(c, m, state, user):
    url = reverse("admin:governance_qualitycheck_change", args=[m.checks[state].pk])
    _, r = admin_form(c, url, {"name": "renamed"}, containing="name")
    return write(outcome_of(r), _edited(m, state))


def check_delete_page(c, m, state, user):
    r = c.post(reverse("governance:quality_check_delete", args=[m.checks[state].pk]))
    return write(outcome_of(r), _fresh(m.checks[state]) is None)


def check_delete_api(c, m, state, user):
    r = c.delete(f"{API}/quality-checks/{m.checks[state].pk}/")
    return write(outcome_of(r), _fresh(m.checks[state]) is None)


def check_delete_admin(c, m, state, user):
    url = reverse("admin:governance_qualitycheck_delete", args=[m.checks[state].pk])
    r = c.post(url, {"post": "yes"})
    return write(outcome_of(r), _fresh(m.checks[state]) is None)


def _ran(m, state) -> bool:
    return QualityRun.objects.filter(quality_check=m.checks[state], trigger="manual").exists()


def check_run_page(c, m, state, user):
    r = c.post(reverse("governance:quality_check_run", args=[m.checks[state].pk]))
    return write(outcome_of(r), _ran(m, state))


def check_run_all_page(c, m, state, user):
    url = _product_url(m.products[("orders", state)], "governance:quality_product_run")
    return write(outcome_of(c.post(url)), _ran(m, state))


def check_run_api(c, m, state, user):
    r = c.post(f"{API}/quality-checks/{m.checks[state].pk}/run/")
    return write(outcome_of(r), _ran(m, state))


def check_run_admin(c, m, state, user):
    outcome, _ = admin_action(c, "qualitycheck", "run_now", [m.checks[state].pk])
    return write(outcome, _ran(m, state))


# -- webhooks


def _hooks_url(m) -> str:
    return reverse("governance:team_webhooks", args=[m.orders_team.slug])


def webhook_list_page(c, m, state, user):
    r = c.get(_hooks_url(m))
    if r.status_code == 200:
        assert m.hook.url in r.text
        assert m.hook.secret not in r.text  # shown once, when it was added
    return outcome_of(r)


def webhook_list_admin(c, m, state, user):
    r = c.get(reverse("admin:governance_webhook_changelist"))
    if r.status_code == 200:
        assert m.hook.url in r.text and m.hook.secret not in r.text
    return outcome_of(r)


def _hook_added() -> bool:
    return Webhook.objects.filter(url=f"https://{HOOK_HOST}/new").exists()


def webhook_create_page(c, m, state, user):
    r = c.post(_hooks_url(m), {"url": f"https://{HOOK_HOST}/new", "active": "on"})
    return write(outcome_of(r), _hook_added())


def webhook_create_admin(c, m, state, user):
    url = reverse("admin:governance_webhook_add")
    body = {"team": m.orders_team.pk, "url": f"https://{HOOK_HOST}/new", "active": "on"}
    get = outcome_of(c.get(url))
    post = write(outcome_of(c.post(url, body)), _hook_added())
    assert get == post
    return post


def _hook_edited(m) -> bool:
    return _fresh(m.hook).url == f"https://{HOOK_HOST}/edited"


def webhook_edit_page(c, m, state, user):
    url = reverse("governance:webhook_edit", args=[m.hook.pk])
    get = outcome_of(c.get(url))
    r = c.post(url, {"url": f"https://{HOOK_HOST}/edited", "active": "on"})
    post = write(outcome_of(r), _hook_edited(m))
    assert get == post
    return post


def webhook_edit_admin(c, m, state, user):
    url = reverse("admin:governance_webhook_change", args=[m.hook.pk])
    _, r = admin_form(c, url, {"url": f"https://{HOOK_HOST}/edited"}, containing="url")
    if _hook_edited(m):
        assert m.hook.secret not in c.get(url).text
    return write(outcome_of(r), _hook_edited(m))


def webhook_delete_page(c, m, state, user):
    r = c.post(reverse("governance:webhook_delete", args=[m.hook.pk]))
    return write(outcome_of(r), _fresh(m.hook) is None)


def webhook_delete_admin(c, m, state, user):
    r = c.post(reverse("admin:governance_webhook_delete", args=[m.hook.pk]), {"post": "yes"})
    return write(outcome_of(r), _fresh(m.hook) is None)


def webhook_test_page(c, m, state, user):
    r = c.post(reverse("governance:webhook_test", args=[m.hook.pk]))
    sent = WebhookDelivery.objects.filter(webhook_id=m.hook.pk, event="webhook.test").exists()
    return write(outcome_of(r), sent)


# -- glossary


def _term_fields(m, state) -> dict:
    return {
        "name": "Shipment",
        "slug": "shipment",
        "definition": "What leaves.",
        "synonyms": "",
        "domain": m.orders.pk if state == "orders" else "",
        "status": "draft",
    }


def _term_created() -> bool:
    return GlossaryTerm.objects.filter(slug="shipment").exists()


def term_create_page(c, m, state, user):
    url = reverse("governance:term_create")
    get = outcome_of(c.get(url))
    post = write(outcome_of(c.post(url, _term_fields(m, state))), _term_created())
    assert get in (post, OK), f"GET {get} but POST {post}"
    return post


def term_create_admin(c, m, state, user):
    url = reverse("admin:governance_glossaryterm_add")
    _, r = admin_form(c, url, _term_fields(m, state), containing="definition")
    return write(outcome_of(r), _term_created())


def _term_edited(m, state) -> bool:
    return _fresh(m.terms[state]).definition == "Redefined."


def term_edit_page(c, m, state, user):
    term = m.terms[state]
    url = reverse("governance:term_edit", args=[term.slug])
    get = outcome_of(c.get(url))
    body = {
        "name": term.name,
        "slug": term.slug,
        "definition": "Redefined.",
        "synonyms": "",
        "domain": term.domain_id or "",
        "status": term.status,
    }
    post = write(outcome_of(c.post(url, body)), _term_edited(m, state))
    assert get == post
    return post


def term_edit_admin(c, m, state, user):
    url = reverse("admin:governance_glossaryterm_change", args=[m.terms[state].pk])
    _, r = admin_form(c, url, {"definition": "Redefined."}, containing="definition")
    return write(outcome_of(r), _term_edited(m, state))


def _field_url(m, state) -> str:
    product = m.products[("orders", state)]
    return _product_url(product, "governance:field_glossary", field=m.fields[state].pk)


def term_link_page(c, m, state, user):
    r = c.post(_field_url(m, state), {"term": "customer"})
    linked = _fresh(m.fields[state]).glossary_term_id == m.terms["global"].pk
    return write(outcome_of(r), linked)


def term_unlink_page(c, m, state, user):
    r = c.post(_field_url(m, state), {"action": "unlink"})
    return write(outcome_of(r), _fresh(m.fields[state]).glossary_term_id is None)


# -- data sources (the platform team's, in the console; a connection detail elsewhere)


def _no_password(r) -> None:
    assert PASSWORD not in r.content.decode(errors="replace")


def source_view_admin(c, m, state, user):
    r = c.get(reverse("admin:governance_datasource_changelist"))
    _no_password(r)
    change = c.get(reverse("admin:governance_datasource_change", args=[m.source.pk]))
    _no_password(change)
    assert outcome_of(change) == outcome_of(r)
    if r.status_code == 200:
        assert SOURCE in r.text and PASSWORD_ENV in change.text
    return outcome_of(r)


def source_view_page(c, m, state, user):
    """The published product's Ports tab names the data source for those who may read it."""
    r = c.get(m.products[("orders", "published")].get_absolute_url() + "?tab=ports")
    _no_password(r)
    if r.status_code != 200:
        return outcome_of(r)
    return OK if SOURCE in r.text else FORBIDDEN


def _source_fields() -> dict:
    return {
        "slug": "new-source",
        "name": "New Source",
        "kind": "postgresql",
        "host": "db.example.com",
        "port": "5432",
        "database": "sales",
        "user": "reader",
        "password_env": PASSWORD_ENV,
        "default_schema": "public",
        "sslmode": "",
        "max_timeout_seconds": "300",
        "description": "",
    }


def source_create_admin(c, m, state, user):
    url = reverse("admin:governance_datasource_add")
    _, r = admin_form(c, url, _source_fields(), containing="password_env")
    created = DataSource.objects.filter(slug="new-source").exists()
    if created:
        entry = AuditEntry.objects.order_by("-pk").first()
        assert PASSWORD not in str(entry.changes)
    return write(outcome_of(r), created)


def source_edit_admin(c, m, state, user):
    url = reverse("admin:governance_datasource_change", args=[m.source.pk])
    _, r = admin_form(c, url, {"name": "Renamed Warehouse"}, containing="password_env")
    return write(outcome_of(r), _fresh(m.source).name == "Renamed Warehouse")


def source_test_admin(c, m, state, user):
    outcome, r = admin_action(c, "datasource", "test_connection", [m.source.pk])
    _no_password(r)
    if outcome == OK:
        said = [str(msg) for msg in r.context["messages"]]
        assert any("Connected (sqlite, read-only" in s for s in said), said
    return outcome


# -- the matrix -------------------------------------------------------------------------------

READ = {"view", "list"}  # the rest are writes: a refused one must change nothing

# obj -> action -> (states, {door: function})
MATRIX = {
    "policy": {
        "view": (
            ["proposed", "active"],
            {
                "page": policy_view_page,
                "api": policy_view_api,
                "admin": policy_view_admin,
                "mcp": policy_view_mcp,
            },
        ),
        "propose": (
            ["global", "orders"],
            {"page": policy_propose_page, "api": policy_propose_api, "admin": policy_propose_admin},
        ),
        "vote": (["proposed", "active"], {"page": policy_vote_page, "api": policy_vote_api}),
        "evaluate": (["-"], {"page": policy_evaluate_page, "api": policy_evaluate_api}),
        "retire": (["active"], {"page": policy_retire_page, "api": policy_retire_api}),
        "override": (["proposed", "rejected", "active"], {"admin": policy_override_admin}),
    },
    "waiver": {
        "request": (
            ["draft", "published"],
            {"page": waiver_request_page, "api": waiver_request_api},
        ),
        "view": (
            ["draft", "published"],
            {"page": waiver_view_page, "api": waiver_view_api, "admin": waiver_view_admin},
        ),
        "decide": (["draft", "published"], {"page": waiver_decide_page, "api": waiver_decide_api}),
    },
    "check": {
        "view": (
            ["draft", "published"],
            {
                "page": check_view_page,
                "api": check_view_api,
                "admin": check_view_admin,
                "mcp": check_view_mcp,
            },
        ),
        "add": (
            ["draft", "published"],
            {"page": check_add_page, "api": check_add_api, "admin": check_add_admin},
        ),
        "edit": (["draft", "published"], {"api": check_edit_api, "admin": check_edit_admin}),
        "delete": (
            ["draft", "published"],
            {"page": check_delete_page, "api": check_delete_api, "admin": check_delete_admin},
        ),
        "run": (
            ["draft", "published"],
            {
                "page": check_run_page,
                "page-all": check_run_all_page,
                "api": check_run_api,
                "admin": check_run_admin,
            },
        ),
    },
    "webhook": {
        "list": (["-"], {"page": webhook_list_page, "admin": webhook_list_admin}),
        "create": (["-"], {"page": webhook_create_page, "admin": webhook_create_admin}),
        "edit": (["-"], {"page": webhook_edit_page, "admin": webhook_edit_admin}),
        "delete": (["-"], {"page": webhook_delete_page, "admin": webhook_delete_admin}),
        "test": (["-"], {"page": webhook_test_page}),
    },
    "glossary": {
        "create": (["global", "orders"], {"page": term_create_page, "admin": term_create_admin}),
        "edit": (["global", "orders"], {"page": term_edit_page, "admin": term_edit_admin}),
        "link": (["draft", "published"], {"page": term_link_page}),
        "unlink": (["draft", "published"], {"page": term_unlink_page}),
    },
    "source": {
        "view": (["-"], {"page": source_view_page, "admin": source_view_admin}),
        "create": (["-"], {"admin": source_create_admin}),
        "edit": (["-"], {"admin": source_edit_admin}),
        "test": (["-"], {"admin": source_test_admin}),
    },
}


CELLS = [
    (obj, action, door, role, state)
    for obj, actions in MATRIX.items()
    for action, (states, doors) in actions.items()
    for door in doors
    for role in ROLES
    for state in states
]


@pytest.fixture
def mcp_call(monkeypatch):
    """Call an MCP tool as the server does for a token's person (agents.server._call: the token
    check, the `mcp` audit door, refusals as tool errors), in the test's own transaction."""
    from mcp.server.mcpserver.exceptions import ToolError

    from agents import server, tools
    from meshportal.api.auth import token_create

    monkeypatch.setattr(server, "_release_connections", lambda: None)
    monkeypatch.setattr(server, "close_old_connections", lambda: None)

    def call(user, tool: str, **kwargs):
        key = token_create(user=user, name="assistant")[1] if user is not None else ""
        server.use_local_token(key)
        try:
            return server._call(None, getattr(tools, tool), **kwargs)
        except ToolError as e:
            text = str(e)
            if text == server.NO_TOKEN:
                return LOGIN
            if "may not see it" in text:
                return HIDDEN
            return f"{FORBIDDEN}: {text}"
        finally:
            server.use_local_token("")

    return call


@pytest.mark.parametrize(
    ("obj", "action", "door", "role", "state"), CELLS, ids=["-".join(c) for c in CELLS]
)
def test_cell(client, mesh, _doors, mcp_call, obj, action, door, role, state):
    user = getattr(mesh, role) if role != "anon" else None
    if user is not None:
        client.force_login(user)
    fn = MATRIX[obj][action][1][door]
    extra = {}
    if fn in (policy_evaluate_page, policy_evaluate_api):
        extra["sent"] = _doors
    if door == "mcp":
        extra["mcp"] = mcp_call
    before = db_state() if action not in READ else None
    observed = fn(client, mesh, state, user, **extra)
    if before is not None and observed != OK:
        assert db_state() == before, "a refused write changed the database"
    assert observed == expected(obj, action, door.split("-")[0], role, state)
