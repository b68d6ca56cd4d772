"""A mesh whose orders and users products live on one data source, and helpers for usage."""

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from rest_framework.test import APIClient

from governance.models import DataSource
from meshportal.api.auth import token_create
from products.models import OutputPort
from usage.models import ConsumerMapping

INGEST = "/api/v1/usage/ingest/?source=wh"
_tokens = count()


@pytest.fixture
def usage_mesh(mesh):
    """`mesh` (tests/factories.py) with a data source `wh`: orders' published product is the
    table sales.orders, users' published product the table crm.users, a draft sales.drafts."""
    source = DataSource.objects.create(
        slug="wh", name="Warehouse", kind="postgresql", database="wh"
    )
    tables = {
        ("orders", "published"): "sales.orders",
        ("users", "published"): "crm.users",
        ("orders", "draft"): "sales.drafts",
        ("orders", "deprecated"): "sales.old_orders",
    }
    for key, location in tables.items():
        OutputPort.objects.filter(product=mesh.products[key]).update(
            data_source=source, location=location
        )
    mesh.source = source
    mesh.orders_product = mesh.products[("orders", "published")]
    mesh.users_product = mesh.products[("users", "published")]
    # principals: svc_orders is the orders team's own pipeline; bi_reader is the approved
    # consumer; svc_users is the users team (no grant on orders: unmanaged).
    ConsumerMapping.objects.create(principal="svc_orders", team=mesh.orders_team)
    ConsumerMapping.objects.create(principal="bi_reader", user=mesh.approved)
    ConsumerMapping.objects.create(principal="svc_users", team=mesh.users_team, data_source=source)
    return mesh


def now_iso(days_ago: int = 0) -> str:
    return (datetime.now(UTC) - timedelta(days=days_ago)).isoformat()


def event(user: str, query: str, days_ago: int = 0, **extra) -> dict:
    return {"user": user, "query": query, "timestamp": now_iso(days_ago), **extra}


def otlp(spans: list[tuple[str, str]]) -> dict:
    """OTLP/JSON traces with one database client span per (user, statement)."""
    nanos = str(int(datetime.now(UTC).timestamp() * 1e9))
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "bi"}}]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "opentelemetry.instrumentation.psycopg"},
                        "spans": [
                            {
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": f"eee19b7ec3c1b17{i}",
                                "name": "SELECT",
                                "kind": 3,
                                "startTimeUnixNano": nanos,
                                "endTimeUnixNano": nanos,
                                "attributes": [
                                    {"key": "db.system", "value": {"stringValue": "postgresql"}},
                                    {"key": "db.user", "value": {"stringValue": user}},
                                    {"key": "db.query.text", "value": {"stringValue": sql}},
                                    {
                                        "key": "db.response.returned_rows",
                                        "value": {"intValue": "5"},
                                    },
                                ],
                            }
                            for i, (user, sql) in enumerate(spans)
                        ],
                    }
                ],
            }
        ]
    }


def bearer(user) -> APIClient:
    _, key = token_create(user=user, name=f"usage-{next(_tokens)}")
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return c


def session(user) -> APIClient:
    c = APIClient()
    c.force_login(user)
    return c
