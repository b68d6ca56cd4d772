"""Demo usage: a fortnight of query log replayed against the demo warehouse's tables, through
the same parser and service as the ingest API, so the Usage tab, unmanaged consumers and
observed lineage show data right after `make run`.

- Orders is read by its own pipeline, by tariq's and mia's BI principals (they hold grants)
  and by the payments team's reconciliation job, which holds none: one unmanaged consumer.
- The order pipeline builds Daily revenue from orders and order items (declared) and from
  payments, which nobody declared: the undeclared dependency the Lineage tab suggests.
- One principal (`svc_crm_sync`) is mapped to nobody: the console suggests a team for it.

Idempotent: replayed only when the demo source has had no usage for a week (so the chart does
not go empty on a demo kept running for weeks, and a second run changes nothing).
"""

import random
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model

from demo import warehouse as demo_warehouse
from domains.models import Team
from governance.models import DataSource
from usage import services as usage_services
from usage.formats import Record
from usage.models import ConsumerMapping, IngestRun

DAYS = 14
# principal -> ("team", slug) or ("user", username); svc_crm_sync stays unmapped.
MAPPINGS = {
    "svc_order_pipeline": ("team", "order-management"),
    "tariq_bi": ("user", "tariq"),
    "mia_analytics": ("user", "mia"),
    "svc_payments_recon": ("team", "payments-core"),
    "svc_customer_identity": ("team", "customer-identity"),
}


# The log's statements (never run: text the parser reads), "W." standing for the demo schema.
# (principal, statement, runs per day)
STATEMENTS = [
    ("svc_order_pipeline",
     "INSERT INTO W.orders_daily_revenue (day, revenue, orders, captured) "
     "SELECT date(o.ordered_at), sum(i.quantity * i.unit_price), count(DISTINCT o.order_id), "
     "sum(p.amount) FROM W.orders_orders o JOIN W.orders_order_items i "
     "ON i.order_id = o.order_id LEFT JOIN W.payments_payments p "
     "ON p.order_id = o.order_id GROUP BY date(o.ordered_at)", 1),
    ("svc_order_pipeline",
     "INSERT INTO W.orders_returns SELECT r.* FROM staging.returns r "
     "JOIN W.orders_orders o ON o.order_id = r.order_id", 1),
    ("tariq_bi",
     "SELECT o.status, count(*) FROM W.orders_orders o "
     "JOIN W.traffic_sessions s ON s.customer_id = o.customer_id GROUP BY o.status", 6),
    ("mia_analytics",
     "SELECT c.customer_id, count(o.order_id) FROM W.users_customer_profiles c "
     "LEFT JOIN W.orders_orders o ON o.customer_id = c.customer_id GROUP BY 1", 4),
    ("svc_payments_recon",
     "SELECT o.order_id, o.total_amount, p.amount FROM W.orders_orders o "
     "JOIN W.payments_payments p ON p.order_id = o.order_id WHERE o.total_amount <> p.amount", 3),
    ("svc_crm_sync", "SELECT * FROM W.users_customer_profiles WHERE updated_at > now() - interval '1 day'", 2),
    ("svc_customer_identity", "SELECT count(*) FROM W.users_customer_profiles", 2),
    ("tariq_bi", "SELEC broken FROM", 1),  # unparseable: counted, not fatal
]  # fmt: skip


def _log(schema: str, now: datetime) -> list[Record]:
    rng = random.Random(19)  # noqa: S311  # nosec B311 - demo data
    records = []
    for day in range(DAYS, 0, -1):
        base = now - timedelta(days=day)
        for principal, sql, per_day in STATEMENTS:
            text = sql.replace("W.", f"{schema}.")
            for _ in range(per_day + rng.randint(0, per_day)):
                at = base + timedelta(minutes=rng.randint(0, 24 * 60 - 1))
                records.append(Record(principal, at, text, rows=rng.randint(1, 500)))
    return records


def seed() -> int:
    """Map the demo principals and replay the log; returns the queries replayed (0: skipped)."""
    source = DataSource.objects.filter(slug="demo-warehouse").first()
    if source is None:
        return 0
    users = get_user_model().objects.in_bulk(field_name="username")
    teams = Team.objects.in_bulk(field_name="slug")
    for principal, (kind, key) in MAPPINGS.items():
        target = {"team": teams.get(key)} if kind == "team" else {"user": users.get(key)}
        if None not in target.values():
            ConsumerMapping.objects.get_or_create(
                data_source=source, principal=principal, defaults=target
            )
    now = datetime.now(UTC)
    if IngestRun.objects.filter(
        data_source=source, created_at__gte=now - timedelta(days=7)
    ).exists():
        return 0
    run = usage_services.usage_ingest(
        source=source, records=_log(demo_warehouse.schema_name(), now), door="command"
    )
    return run.events
