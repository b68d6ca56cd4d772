"""The demo's quality checks, on the warehouse tables demo/products.py builds with flaws.

(domain, product, port): [(name, kind, columns, params)]. Failing on purpose: missing
customer ids, duplicate order ids and e-mails, stale timestamps, 'lost' and 'unknown' statuses.
The schema checks fail too, on the same rows: the contracts declare `order_id` and `email`
unique and `customer_id` required, as datacontract-cli also finds.
"""

from typing import Any

from demo.products import VALUES
from governance.models import QualityCheck
from governance.quality.services import check_create
from products.models import OutputPort

DEMO_INTERVAL_MINUTES = 15

CHECKS: dict[tuple[str, str, str], list[tuple[str, str, list[str], dict[str, Any]]]] = {
    ("orders", "orders", "orders"): [
        ("Has orders", "row_count", [], {"min": 1000}),
        ("Every order has a customer", "missing", ["customer_id"], {"max": 0}),
        ("Order ids are unique", "duplicates", ["order_id"], {"max": 0}),
        (
            "Known order status",
            "accepted_values",
            ["order_status"],
            {"values": ["accepted", "shipped", "delivered", "cancelled"]},
        ),
        ("Known currency", "accepted_values", ["currency"], {"values": ["EUR", "USD", "GBP"]}),
        ("Positive totals", "range", ["total_amount"], {"min": 0, "max": 100000}),
        ("Orders are fresh", "freshness", ["ordered_at"], {"hours": 24}),
        ("Schema matches the contract", "schema", [], {}),
    ],
    ("orders", "order-items", "order-items"): [
        ("Has items", "row_count", [], {"min": 1}),
        ("Quantities are sane", "range", ["quantity"], {"min": 0, "max": 1000}),
        ("SKU format", "pattern", ["sku"], {"pattern": r"^SKU-\d{5}$"}),
    ],
    ("orders", "returns", "returns"): [
        ("Reason mostly given", "missing", ["reason"], {"max": 30, "unit": "percent"}),
    ],
    ("orders", "lapsed-customers", "lapsed-customers"): [
        ("Has lapsed customers", "row_count", [], {"min": 1}),
        ("One row per buyer", "duplicates", ["buyer_id"], {"max": 0}),
    ],
    ("users", "customer-profiles", "profiles"): [
        ("E-mails are unique", "duplicates", ["email"], {"max": 0}),
        ("Country mostly known", "missing", ["country"], {"max": 15, "unit": "percent"}),
        ("Schema matches the contract", "schema", [], {}),
    ],
    ("traffic", "page-views", "page-views"): [
        ("Page views are fresh", "freshness", ["viewed_at"], {"hours": 2}),
    ],
    ("payments", "payments", "payments"): [
        (
            "Known payment status",
            "accepted_values",
            ["status"],
            {"values": ["authorised", "captured", "failed", "refunded"]},
        ),
        (
            "No payment without an order",
            "custom_sql",
            [],
            {"sql": "SELECT COUNT(*) FROM ${object} WHERE order_id IS NULL"},
        ),
    ],
    # Parquet files read through DuckDB (demo/lake.py): 5% of the events lack a carrier.
    ("warehousing", "shipments", "shipment-events"): [
        ("Every event has a carrier", "missing", ["carrier"], {"max": 0}),
        ("Known carrier", "accepted_values", ["carrier"], {"values": VALUES["carrier"]}),
        ("Events are fresh", "freshness", ["event_at"], {"hours": 12}),
        ("Schema matches the contract", "schema", [], {}),
    ],
    ("inventory", "stock-levels", "stock-levels"): [
        ("Stock is fresh", "freshness", ["updated_at"], {"hours": 6}),
    ],
}


def seed() -> int:
    """Checks on the demo warehouse's tables (see demo/products.py's flaws). Idempotent."""
    created = 0
    for (domain, product, port), checks in CHECKS.items():
        port_obj = OutputPort.objects.filter(
            product__domain__slug=domain,
            product__slug=product,
            slug=port,
            data_source__isnull=False,
        ).first()
        if port_obj is None:
            continue
        for name, kind, columns, params in checks:
            if QualityCheck.objects.filter(port=port_obj, name=name).exists():
                continue
            check_create(
                port=port_obj,
                name=name,
                kind=kind,
                columns=columns,
                params=params,
                interval_minutes=DEMO_INTERVAL_MINUTES,
                verify_columns=False,
            )
            created += 1
    return created
