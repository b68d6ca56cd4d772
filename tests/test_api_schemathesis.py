"""Property-based tests of the API against its own OpenAPI schema (schemathesis).

Every operation gets a bounded number of generated requests, authenticated with a team
member's token: no response may be a 5xx or violate the schema. Runs in-process (WSGI)."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from meshportal.api_auth import token_create
from products.models import AccessRequest

pytestmark = pytest.mark.django_db

MAX_EXAMPLES = 8


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
    from governance import policy_services as ps
    from governance import quality_services as qs
    from governance.models import DataSource

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


def test_api_conforms_to_its_schema(mesh, wsgi_app, settings_fast, tmp_path):
    _, key = token_create(user=mesh.member, name="schemathesis")
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", wsgi_app)
    headers = {"Authorization": f"Bearer {key}"}
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
    checked = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy(), use_real=st.booleans(), pick=real)
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def run(case, use_real, pick):
            path = case.operation.path
            params = case.path_parameters or {}
            if use_real and "domain" in params:
                params["domain"], params["product"] = pick["product"]
            elif use_real:
                for name, choices in pick.items():
                    lookup = next((k for k in ("id", "slug", "key") if k in params), None)
                    if path.startswith(f"/api/v1/{name}/") and lookup:
                        params[lookup] = choices
            case.call_and_validate(
                headers=headers, checks=[not_a_server_error, response_schema_conformance]
            )

        run()
        checked += 1
    assert checked >= 55


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
