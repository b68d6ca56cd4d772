"""Property-based tests of the API against its own OpenAPI schema (schemathesis).

At least 5,000 generated calls per run, no 5xx, every response as the schema says. Each
generated case is sent twice: with a team member's API token and with a team owner's browser
session (CSRF token included, so writes get past CSRF and reach the code). Runs in-process
(WSGI), derandomised (the same cases every run: a failure reproduces) and generation only (no
shrinking: a failure shows the generated case as is), split into shards that xdist runs side by
side. Time on the 2-core CI box: see docs/security.md ("Input limits")."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from meshportal.api.auth import token_create
from products.models import AccessRequest

pytestmark = pytest.mark.django_db

TOTAL_CALLS = 5_000  # at least, across the shards
SHARDS = 4
# Cases per operation and shard, each sent twice. Operations with few distinct inputs (no
# parameters) stop early, so this is above TOTAL_CALLS / 2 / operations.
MAX_EXAMPLES = 33


@pytest.fixture
def wsgi_app():
    # The test database lives in one transaction: do not let the handler close the connection
    # around each request (Django's own test client does the same).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _governance_and_quality(mesh, tmp_path) -> dict:
    """A policy of each scope, a waiver, a quality check and a run, for real ids."""
    from governance.models import DataSource
    from governance.policies import services as ps
    from governance.quality import services as qs

    ps.policy_propose(by=mesh.owner, key="slo", title="SLO", rule_type="freshness")
    names = ps.policy_propose(
        by=mesh.owner, key="names", title="Names", rule_type="naming", domain=mesh.orders
    )
    product = mesh.products[("orders", "published")]
    waiver = ps.waiver_request(policy=names, product=product, by=mesh.owner, justification="x")
    ps.evaluate_policies()
    port = product.ports.get()
    port.data_source = DataSource.objects.create(
        slug="wh", name="Warehouse", kind="sqlite", database=str(tmp_path / "wh.sqlite3")
    )
    port.save()
    check = qs.check_create(
        port=port, name="rows", kind="row_count", params={"min": 1}, verify_columns=False
    )
    run = qs.run_now(checks=[check])[0]
    return {
        "policies": ["slo", "names"],
        "waivers": [waiver.pk],
        "quality-checks": [check.pk],
        "quality-runs": [run.pk],
    }


def _session_cookies(user) -> tuple[dict, dict]:
    """A signed-in browser's cookies and the CSRF header its pages would send."""
    from django.middleware.csrf import _get_new_csrf_string

    client = Client()
    client.force_login(user)
    csrf = _get_new_csrf_string()
    return {"sessionid": client.cookies["sessionid"].value, "csrftoken": csrf}, {
        "X-CSRFToken": csrf
    }


@pytest.mark.parametrize("shard", range(SHARDS))
def test_api_conforms_to_its_schema(mesh, wsgi_app, settings_fast, tmp_path, shard):
    _, key = token_create(user=mesh.member, name="schemathesis")
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", wsgi_app)
    as_token = {"headers": {"Authorization": f"Bearer {key}"}}
    cookies, csrf_header = _session_cookies(mesh.owner)
    as_session = {"headers": csrf_header, "cookies": cookies}
    # Half of the cases address real objects (the rest whatever the generator makes up), so
    # updates, actions and contract imports run against existing rows too.
    products = [(p.domain.slug, p.slug) for p in mesh.products.values()]
    ids = {
        "ports": [p.ports.get().pk for p in mesh.products.values()],
        "fields": [p.ports.get().fields.get().pk for p in mesh.products.values()],
        "access-requests": list(AccessRequest.objects.values_list("pk", flat=True)),
        "teams": ["orders-team", "users-team"],
        "domains": ["orders", "users"],
        **_governance_and_quality(mesh, tmp_path),
    }
    real = st.fixed_dictionaries(
        {"product": st.sampled_from(products), **{k: st.sampled_from(v) for k, v in ids.items()}}
    )
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 55
    calls = 0
    for operation in operations[shard::SHARDS]:

        @given(case=operation.as_strategy(), use_real=st.booleans(), pick=real)
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case, use_real, pick):
            nonlocal calls
            path = case.operation.path
            params = case.path_parameters or {}
            if use_real and "domain" in params:
                params["domain"], params["product"] = pick["product"]
            elif use_real:
                for name, choices in pick.items():
                    lookup = next((k for k in ("id", "slug", "key") if k in params), None)
                    if path.startswith(f"/api/v1/{name}/") and lookup:
                        params[lookup] = choices
            for auth in (as_token, as_session):
                case.call_and_validate(
                    **auth, checks=[not_a_server_error, response_schema_conformance]
                )
                calls += 1

        run()
    assert calls >= TOTAL_CALLS / SHARDS, calls


@pytest.fixture
def settings_fast(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            "anon": "100000/min",
            "user": "100000/min",
            "token": "100000/min",
        },
    }
    return settings
