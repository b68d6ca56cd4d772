"""The probe of the security issue's "Done means": canaries planted in every kind of private
detail, and every URL name in the URLconf (pages, API, JSON endpoints; the admin console has
its own walk in test_admin_console_walk.py) fetched as every role, with the product kwargs of a
draft and of a published product and the list filters that could reveal them. No canary may
reach a role outside its audience — in bodies, lists, counts, facets, exports or diffs.
"""

import itertools
from datetime import timedelta

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from governance.models import DataSource, QualityCheck, QualityRun
from governance.quality import services as quality_services
from meshportal.api.auth import token_create
from meshportal.audit import audit_context
from products import services, tabs
from products.models import AccessRequest
from tests.factories import user
from usage.models import ProductUsage

pytestmark = pytest.mark.django_db

DRAFT = "zq71draft"  # in the draft's name, summary and description
DRAFT_TAG = "Zq71 Draft Tag"  # a tag only the draft uses (its slug: zq71-draft-tag)
LOCATION = "vault.zq93_location"  # a published port's table
TABLE = "zq93_location"  # the same table by its bare name (custom SQL, engine messages)
SAMPLE = "zq55sample"  # failing values a quality run sampled
PURPOSE = "zq38purpose"  # another consumer's access request
SOURCE = "zq66source"  # the published port's data source (a connection detail)
SOURCE_HOST = "zq67host.example"  # where that data source lives
PRINCIPAL = "zq44principal"  # a database user who read the published product (usage)
HOOK = "zq22hook.example"  # the owning team's webhook target

# Who may see each canary (besides platform staff, who see everything and are not walked).
AUDIENCE = {
    DRAFT: {"owner", "member"},
    DRAFT_TAG: {"owner", "member"},
    LOCATION: {"owner", "member", "approved"},
    TABLE: {"owner", "member", "approved"},
    SAMPLE: {"owner", "member", "approved"},
    PURPOSE: {"owner", "bystander"},
    SOURCE: {"owner", "member", "approved"},
    SOURCE_HOST: {"owner", "member", "approved"},  # the contract's servers, for who reads data
    PRINCIPAL: {"owner"},
    HOOK: {"owner"},
}
# lone_staff: staff without the platform group; council: a delegate with no waiver to decide.
ROLES = ["anon", "consumer", "other_owner", "approved", "member", "council", "lone_staff", "token"]
# Of the ~320 URLs walked, how many answer 200 to each role at least (on the day this was
# written: anonymous 10, the token 60 (API only), the others 128-174). Anonymous visitors are
# sent to sign in almost everywhere; a token only opens the API.
MIN_ANSWERED = {r: 100 for r in ROLES} | {"anon": 5, "token": 40}
SKIP_NAMESPACES = {"admin"}
SKIP_NAMES = {"logout", "set_language"}  # GETs that act on the session
# Filters that would find the draft, written without the canaries (the search box echoes them).
FILTERS = (
    "?q=zq71alph&search=zq71alph&tag=zq71-draft-tag"
    "&urn=urn:mesh:orders:draft-product&product=urn:mesh:orders:draft-product"
)


def _plant(mesh) -> dict:
    """The canaries, written through the services (audited, versioned, announced)."""
    draft = mesh.products[("orders", "draft")]
    published = mesh.products[("orders", "published")]
    bystander = user("bystander")
    # Watchers outside the audience of what follows: they are told, without the values.
    from products.lineage import services as lineage_services

    for watcher in (mesh.consumer, mesh.other_owner):
        lineage_services.watch_set(user=watcher, on=True, product=published)
    with audit_context(actor=mesh.owner, door="web"):
        services.product_update(
            product=draft,
            name=f"Orders {DRAFT} zq71alpha",
            summary=f"summary {DRAFT}",
            description=f"description {DRAFT}",
            tags=[DRAFT_TAG],
        )
        port = published.ports.get()
        source = DataSource.objects.create(
            slug="zq66", name=SOURCE, kind="postgresql", host=SOURCE_HOST, database="w"
        )
        services.port_update(port=port, location=LOCATION, data_source=source)
    mesh.lone_staff = user("lone_staff", staff=True)
    with audit_context(actor=mesh.owner, door="web"):  # audited: the team's Activity lists it
        quality_services.webhook_create(team=mesh.orders_team, url=f"https://{HOOK}/in")
        gone = services.product_create(
            domain=mesh.orders, slug="gone-draft", name=f"Gone {DRAFT}", summary=DRAFT
        )
        services.product_delete(product=gone)  # its entry is on the domain's Activity
    ProductUsage.objects.create(
        product=published, port=port, principal=PRINCIPAL, day=timezone.localdate(), queries=7
    )
    check = QualityCheck.objects.create(port=port, name="ids", kind="missing", columns=["x"])
    with audit_context(actor=mesh.owner, door="web"):  # audited: the Activity tab lists them
        for name, table in (("by location", LOCATION), ("by table", TABLE)):
            quality_services.check_create(
                port=port,
                name=name,
                kind="custom_sql",
                params={"sql": f"SELECT COUNT(*) FROM {table} WHERE x IS NULL", "max": 0},
                by=mesh.owner,
                verify_columns=False,
            )
    QualityRun.objects.create(  # the engine names the bare table in its messages
        quality_check=port.quality_checks.get(name="by table"),
        trigger="manual",
        status="error",
        message=f"Column x does not exist in {TABLE}.",
        deadline=timezone.now() + timedelta(minutes=5),
        finished_at=timezone.now(),
    )
    run = QualityRun.objects.create(
        quality_check=check,
        trigger="manual",
        status="failed",
        observed=3,
        message="3 nulls",
        sample=[SAMPLE],
        deadline=timezone.now() + timedelta(minutes=5),
        finished_at=timezone.now(),
    )
    request = services.access_request_create(
        product=published, requester=bystander, purpose=PURPOSE
    )
    # Incidents: the draft's (its title names the draft) and the published product's failing check.
    from governance.quality import incidents

    incidents.record_freshness_many([(draft, True, 1)])
    incidents.record_check_results([(check, run)])
    incident_pks = list(draft.incidents.values_list("pk", flat=True)) + list(
        published.incidents.values_list("pk", flat=True)
    )
    return {
        "domain": ["orders"],
        "product": ["draft-product", "published-product"],
        "pk": [request.pk, check.pk, run.pk, port.pk, draft.pk, *incident_pks],
        "check": [check.pk],
        "run": [run.pk],
        "slug": ["zq71-draft-tag", "orders-team"],
        "tag": ["zq71-draft-tag"],
        "team": ["orders-team"],
        "number": [1, 2],
        "version": [1, 2],
        "user_id": [mesh.member.pk],
        "product_id": [draft.pk],
        "field": [draft.ports.get().fields.first().pk],
        "action": ["publish", "deprecate"],
    }


def _patterns(resolver=None, prefix="", namespace=""):
    resolver = resolver or get_resolver()
    for p in resolver.url_patterns:
        if isinstance(p, URLResolver):
            ns = p.namespace or namespace
            if ns in SKIP_NAMESPACES:
                continue
            yield from _patterns(p, prefix + str(p.pattern), ns)
        elif isinstance(p, URLPattern) and p.name not in SKIP_NAMES:
            yield prefix + str(p.pattern), p


def _urls(values: dict) -> list[str]:
    """Every pattern filled with each combination of the planted objects' kwargs."""
    import re

    urls = set()
    for route, pattern in _patterns():
        if route.startswith(("^static", "static", "media", "mcp")):
            continue
        names = re.findall(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>", route)
        params = [a or b for a, b in names]
        if any(p not in values for p in params):
            continue
        for combo in itertools.islice(itertools.product(*(values[p] for p in params)), 12):
            url = route
            for p, v in zip(params, combo, strict=True):
                url = re.sub(rf"<(?:\w+:)?{p}>|\(\?P<{p}>[^)]*\)", str(v), url, count=1)
            # Router routes are regexes with anchors inside (api/v1/^teams/$) and an optional
            # trailing slash.
            url = "/" + url.replace("^", "").replace("$", "").replace("/?", "/").replace("\\", "")
            if not re.search(r"[\[\]()?*+|]", url):
                urls.add(url)
                if not params:
                    urls.add(url + FILTERS)
                if pattern.name == "product" and params == ["domain", "product"]:
                    urls.update(f"{url}?tab={t.key}" for t in tabs.tabs())  # every tab
    return sorted(urls)


def _client(client, mesh, role, secret):
    client.logout()
    if role == "token":
        client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {secret}"
        return client
    client.defaults.pop("HTTP_AUTHORIZATION", None)
    if role != "anon":
        client.force_login(getattr(mesh, role))
    return client


@pytest.mark.parametrize("role", ROLES)
def test_no_canary_reaches_a_role_outside_its_audience(client, mesh, role):
    """One role per test, so the walk (every URL as every role) spreads over the workers."""
    values = _plant(mesh)
    _, secret = token_create(user=mesh.consumer, name="probe")
    urls = _urls(values)
    who = "consumer" if role == "token" else role
    hidden = [c for c, audience in AUDIENCE.items() if who not in audience]
    c = _client(client, mesh, role, secret)
    leaks, answered = [], 0
    for url in urls:
        r = c.get(url)
        answered += r.status_code == 200
        body = r.content.decode(errors="replace") if r.status_code < 500 else ""
        assert r.status_code < 500, f"{role} {url}: {r.status_code}"
        leaks += [f"{role} {url}: {canary}" for canary in hidden if canary in body]
    assert leaks == [], "\n".join(leaks)
    # The walk cannot quietly shrink: well over a hundred URLs, and many of them answer.
    assert len(urls) > 150 and answered >= MIN_ANSWERED[role], answered


def test_no_canary_reaches_a_mailbox_outside_its_audience(
    mesh, mailoutbox, django_capture_on_commit_callbacks
):
    """E-mails sent while planting (watchers, owners, delegates) carry no canary to a recipient
    outside its audience (test users' addresses are <username>@example.com)."""
    with django_capture_on_commit_callbacks(execute=True):  # the e-mails leave on commit
        _plant(mesh)
    mailed = []
    for m in mailoutbox:
        text = m.subject + m.body + "".join(str(a[0]) for a in getattr(m, "alternatives", []))
        for to in m.to:
            who = to.split("@")[0]
            mailed += [f"{who}: {c}" for c, aud in AUDIENCE.items() if c in text and who not in aud]
    assert mailed == [], "\n".join(mailed)
    # The check above is not empty: owners and watchers outside the audience were mailed.
    assert {"consumer@example.com", "owner@example.com"} <= {t for m in mailoutbox for t in m.to}


def test_the_canaries_are_visible_to_their_audience(client, mesh):
    """The probe would pass if nothing showed the canaries at all: check that it can see them."""
    values = _plant(mesh)
    seen = {c: set() for c in AUDIENCE}
    for role in ["owner", "approved", "bystander"]:
        client.force_login(getattr(mesh, role, None) or user_named(role))
        for url in [
            "/products/orders/draft-product/",
            "/products/orders/published-product/?tab=ports",
            f"/quality/checks/{values['check'][0]}/",
            "/access/inbox/",
            "/access/mine/",
            "/api/v1/access-requests/",
            "/products/orders/published-product/?tab=usage",
            "/teams/orders-team/webhooks/",
        ]:
            body = client.get(url).content.decode()
            seen.update({c: seen[c] | {role} for c in AUDIENCE if c in body})
    assert seen == {
        DRAFT: {"owner"},
        DRAFT_TAG: {"owner"},
        LOCATION: {"owner", "approved"},
        TABLE: {"owner", "approved"},
        SAMPLE: {"owner", "approved"},
        PURPOSE: {"owner", "bystander"},
        SOURCE: {"owner", "approved"},
        SOURCE_HOST: set(),  # not on these pages
        PRINCIPAL: {"owner"},
        HOOK: {"owner"},
    }
    assert AccessRequest.objects.filter(purpose=PURPOSE).count() == 1


def user_named(username):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username=username)


def _tool_answer(fn, user, **kwargs) -> str:
    """A tool's answer as the assistant reads it: the JSON, or the error's message."""
    import json

    from django.core.exceptions import ValidationError

    from agents.tools import NotFound

    try:
        return json.dumps(fn(user, **kwargs), default=str, sort_keys=True)
    except (NotFound, ValidationError) as e:
        return f"{type(e).__name__}: {e}"


def test_no_canary_reaches_an_assistant_outside_its_audience(mesh):
    """The MCP door (agents/tools.py, what each tool answers with the caller's token): every
    read tool, about the draft, the published product and a product that does not exist, as
    every role. A hidden draft answers like the product that does not exist."""
    from agents import tools

    _plant(mesh)
    draft, published, nowhere = (
        "urn:mesh:orders:draft-product",
        "urn:mesh:orders:published-product",
        "urn:mesh:orders:no-such-product",
    )
    per_product = [
        tools.get_product,
        tools.get_contract,
        tools.lineage,
        tools.product_compliance,
        tools.product_incidents,
    ]
    leaks, same = [], []
    for role in ROLES:
        if role in ("anon", "token"):  # the MCP door needs a token: it is the user's
            continue
        who = getattr(mesh, role)
        hidden = [c for c, audience in AUDIENCE.items() if role not in audience]
        answers = {
            "search": _tool_answer(tools.search_products, who, query="zq71alph"),
            "search tag": _tool_answer(tools.search_products, who, tag="zq71-draft-tag"),
            "search drafts": _tool_answer(tools.search_products, who, status=["draft"]),
            "policies": _tool_answer(tools.list_policies, who, status=""),
            "glossary": _tool_answer(tools.glossary_lookup, who, query="order"),
            "my access": _tool_answer(tools.my_access, who),
        }
        for fn in per_product:
            for urn in (draft, published):
                answers[f"{fn.__name__} {urn}"] = _tool_answer(fn, who, urn=urn)
            if role not in AUDIENCE[DRAFT]:
                mine, none = (
                    _tool_answer(fn, who, urn=draft),
                    _tool_answer(fn, who, urn=nowhere),
                )
                if mine.replace("draft-product", "X") != none.replace("no-such-product", "X"):
                    same.append(f"{role} {fn.__name__}: {mine} != {none}")
        leaks += [f"{role} {k}: {c}" for k, a in answers.items() for c in hidden if c in a]
    assert leaks == [], "\n".join(leaks)
    assert same == [], "\n".join(same)
    # ... and the audience does get them through this door (the walk is not blind).
    assert DRAFT in _tool_answer(tools.search_products, mesh.member, query="zq71alph")
    assert LOCATION in _tool_answer(tools.get_product, mesh.approved, urn=published)
    assert SAMPLE in _tool_answer(tools.get_product, mesh.member, urn=published)
