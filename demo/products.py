"""The demo mesh: domains, teams, people, ~25 products, and the warehouse tables they describe.

The tables are real and some are deliberately flawed (nulls, duplicates, stale timestamps,
values outside their accepted set) so that quality checks find real problems.
"""

from typing import Any

PASSWORD = "mesh-demo"  # noqa: S105 - demo sign-ins, in the README  # nosec B105

# username: (first, last, email, staff)
USERS = {
    "admin": ("Ada", "Admin", "admin@example.com", True),
    "olivia": ("Olivia", "Owens", "olivia@example.com", False),
    "milo": ("Milo", "Martin", "milo@example.com", False),
    "uma": ("Uma", "Ueda", "uma@example.com", False),
    "carl": ("Carl", "Consumer", "carl@example.com", False),
    "tariq": ("Tariq", "Turner", "tariq@example.com", False),
    "pat": ("Pat", "Price", "pat@example.com", False),
    "mia": ("Mia", "Moreno", "mia@example.com", False),
    "ivan": ("Ivan", "Ivanov", "ivan@example.com", False),
}
PLATFORM = ["admin"]
COUNCIL = ["olivia", "uma", "tariq", "pat", "mia", "ivan"]

# slug: (name, description, contact, {username: role})
TEAMS = {
    "order-management": (
        "Order Management",
        "Owns the order lifecycle from cart to delivery.",
        "orders-team@example.com",
        {"olivia": "owner", "milo": "member"},
    ),
    "customer-identity": (
        "Customer Identity",
        "Sign-up, login and customer profiles.",
        "identity@example.com",
        {"uma": "owner"},
    ),
    "web-analytics": (
        "Web Analytics",
        "Clickstream and sessions from the web shop.",
        "web-analytics@example.com",
        {"tariq": "owner"},
    ),
    "payments-core": (
        "Payments Core",
        "Payments, refunds and fraud.",
        "payments@example.com",
        {"pat": "owner"},
    ),
    "growth-marketing": (
        "Growth Marketing",
        "Campaigns, segments and the customer 360.",
        "growth@example.com",
        {"mia": "owner"},
    ),
    "supply-chain": (
        "Supply Chain",
        "Stock, catalogue and shipping.",
        "supply@example.com",
        {"ivan": "owner"},
    ),
}

# slug: (name, team, parent, description)
DOMAINS = {
    "users": (
        "Users",
        "customer-identity",
        None,
        "Everything about **who** our customers are: accounts, profiles and logins.",
    ),
    "traffic": (
        "Traffic",
        "web-analytics",
        None,
        "How people reach and move through the web shop.",
    ),
    "orders": ("Orders", "order-management", None, "Orders, their items, returns and revenue."),
    "payments": ("Payments", "payments-core", None, "Money in and money back."),
    "marketing": ("Marketing", "growth-marketing", None, "Campaigns and customer insight."),
    "inventory": ("Inventory", "supply-chain", None, "What we have and where it is."),
    "warehousing": ("Warehousing", "supply-chain", "inventory", "Shipments out of our warehouses."),
}


def F(name, logical="string", *, pk=False, req=False, uniq=False, pii=False, desc="", gen=None):
    return {
        "name": name,
        "logical_type": logical,
        "primary_key": pk,
        "required": req or pk,
        "unique": uniq or pk,
        "pii": pii,
        "description": desc,
        "gen": gen,
    }


# Each product: domain, slug, name, status, classification, summary, tags, SLO hours, ports.
# A port's "table" names the warehouse table; "rows" and "flaws" shape its contents.
PRODUCTS: list[dict[str, Any]] = [
    # -- Orders -------------------------------------------------------------------------------
    dict(
        domain="orders",
        slug="orders",
        name="Orders",
        status="published",
        classification="confidential",
        tags=["orders", "finance", "core"],
        slo=24,
        summary="Every customer order with its status and total, one row per order.",
        description="## Orders\n\nOne row per order placed in the web shop or the app. "
        "Updated hourly from the order service.\n\n* `order_status` follows the "
        "order lifecycle.\n* Amounts are in the order's currency.",
        ports=[
            dict(
                slug="orders",
                name="Orders table",
                kind="table",
                table="orders_orders",
                rows=1200,
                flaws={
                    "nulls": {"customer_id": 0.04},
                    "duplicates": ["order_id"],
                    "stale": "ordered_at",
                    "invalid": {"order_status": "lost"},
                },
                fields=[
                    F("order_id", "integer", pk=True, desc="Order number."),
                    F("customer_id", "integer", req=True, desc="Who ordered."),
                    F(
                        "order_status",
                        desc="accepted, shipped, delivered or cancelled",
                        gen="order_status",
                    ),
                    F("total_amount", "number", req=True, desc="Order total."),
                    F("currency", desc="ISO 4217 code.", gen="currency"),
                    F("ordered_at", "timestamp", req=True, desc="When it was placed."),
                ],
            )
        ],
    ),
    dict(
        domain="orders",
        slug="order-items",
        name="Order Items",
        status="published",
        classification="internal",
        tags=["orders"],
        slo=24,
        summary="The lines of each order: product, quantity and price.",
        description="One row per order line.",
        ports=[
            dict(
                slug="order-items",
                name="Order items table",
                kind="table",
                table="orders_order_items",
                rows=2500,
                fields=[
                    F("order_id", "integer", req=True),
                    F("line_no", "integer", req=True),
                    F("sku", req=True, gen="sku"),
                    F("quantity", "integer", req=True),
                    F("unit_price", "number", req=True),
                ],
            )
        ],
    ),
    dict(
        domain="orders",
        slug="returns",
        name="Returns",
        status="published",
        classification="internal",
        tags=["orders", "customer-service"],
        slo=48,
        summary="Returned orders and the reasons customers gave.",
        description="Returns registered by customer service.",
        ports=[
            dict(
                slug="returns",
                name="Returns table",
                kind="table",
                table="orders_returns",
                rows=300,
                flaws={"nulls": {"reason": 0.2}},
                fields=[
                    F("return_id", "integer", pk=True),
                    F("order_id", "integer", req=True),
                    F("reason", gen="return_reason"),
                    F("returned_at", "timestamp"),
                ],
            )
        ],
    ),
    dict(
        domain="orders",
        slug="lapsed-customers",
        name="Lapsed Customers",
        status="published",
        classification="internal",
        tags=["orders", "retention"],
        slo=24,
        summary="Buyers who stopped ordering: when they last bought, how long they had stayed "
        "with us and the reason they gave when they closed their account.",
        description="Derived nightly from **Orders**: a buyer lapses after 90 days without an "
        "order. The retention team's starting point for win-back campaigns.",
        ports=[
            dict(
                slug="lapsed-customers",
                name="Lapsed customers table",
                kind="table",
                table="orders_lapsed_customers",
                rows=250,
                fields=[
                    F("buyer_id", "integer", pk=True),
                    F("last_order_at", "timestamp", req=True),
                    F("tenure_days", "integer"),
                    F("closure_reason", desc="As given when the account was closed."),
                ],
            )
        ],
    ),
    dict(
        domain="orders",
        slug="daily-revenue",
        name="Daily Revenue",
        status="published",
        classification="confidential",
        tags=["finance", "kpi"],
        slo=26,
        summary="Revenue and order count per day, the finance team's headline number.",
        description="Aggregated nightly from **Orders**.",
        ports=[
            dict(
                slug="daily-revenue",
                name="Daily revenue table",
                kind="table",
                table="orders_daily_revenue",
                rows=365,
                fields=[
                    F("day", "date", pk=True),
                    F("revenue", "number", req=True),
                    F("order_count", "integer", req=True),
                ],
            )
        ],
    ),
    dict(
        domain="orders",
        slug="order-events",
        name="Order Events Stream",
        status="draft",
        classification="internal",
        tags=["orders", "streaming"],
        slo=None,
        summary="Order state changes as a Kafka stream (work in progress).",
        description="",
        ports=[
            dict(
                slug="order-events",
                name="order-events topic",
                kind="stream",
                location="kafka://orders.order-events.v1",
                format="avro",
                fields=[
                    F("order_id", "integer", req=True),
                    F("event_type"),
                    F("occurred_at", "timestamp"),
                ],
            )
        ],
    ),
    dict(
        domain="orders",
        slug="carts-legacy",
        name="Carts (legacy)",
        status="deprecated",
        classification="internal",
        tags=["orders", "legacy"],
        slo=None,
        summary="Abandoned and converted carts from the old shop.",
        description="Superseded by Order Events.",
        ports=[
            dict(
                slug="carts",
                name="Carts table",
                kind="table",
                table="orders_carts_legacy",
                rows=200,
                fields=[
                    F("cart_id", "integer", pk=True),
                    F("customer_id", "integer"),
                    F("created_at", "timestamp"),
                ],
            )
        ],
    ),
    # -- Users --------------------------------------------------------------------------------
    dict(
        domain="users",
        slug="customer-profiles",
        name="Customer Profiles",
        status="published",
        classification="confidential",
        tags=["customers", "pii", "core"],
        slo=24,
        summary="One row per customer: contact details, country and consent.",
        description="The golden record of our customers. Contains **personal data**.",
        ports=[
            dict(
                slug="profiles",
                name="Customer profiles table",
                kind="table",
                table="users_customer_profiles",
                rows=800,
                flaws={"nulls": {"country": 0.1}, "duplicates": ["email"]},
                fields=[
                    F("customer_id", "integer", pk=True),
                    F("email", req=True, pii=True, uniq=True, gen="email"),
                    F("full_name", pii=True, gen="full_name"),
                    F("country", gen="country"),
                    F("signup_at", "timestamp", req=True),
                    F("marketing_opt_in", "boolean"),
                ],
            )
        ],
    ),
    dict(
        domain="users",
        slug="user-accounts",
        name="User Accounts (legacy)",
        status="published",
        classification="internal",
        tags=["customers", "legacy"],
        slo=None,
        summary="Accounts exported from the old identity system.",
        description="Column names come from the old system and do not follow our conventions.",
        ports=[
            dict(
                slug="UserAccounts",
                name="UserAccounts",
                kind="table",
                table="users_user_accounts",
                rows=400,
                fields=[
                    F("UserID", "integer", pk=True),
                    F("LastLoginTS", "timestamp"),
                    F("isActive", "boolean"),
                    F("EmailAddress", pii=True, gen="email"),
                ],
            )
        ],
    ),
    dict(
        domain="users",
        slug="login-events",
        name="Login Events",
        status="published",
        classification="internal",
        tags=["customers", "security"],
        slo=6,
        summary="Every login attempt with device and outcome.",
        description="Streamed from the identity service and landed every 5 minutes.",
        ports=[
            dict(
                slug="login-events",
                name="Login events table",
                kind="table",
                table="users_login_events",
                rows=3000,
                fields=[
                    F("event_id", "integer", pk=True),
                    F("customer_id", "integer", req=True),
                    F("logged_in_at", "timestamp", req=True),
                    F("device", gen="device"),
                    F("success", "boolean"),
                ],
            )
        ],
    ),
    dict(
        domain="users",
        slug="customer-segments",
        name="Customer Segments",
        status="draft",
        classification="internal",
        tags=["customers"],
        slo=None,
        summary="Behavioural segments (draft, not yet reviewed).",
        description="",
        ports=[
            dict(
                slug="segments",
                name="Segments table",
                kind="table",
                table="users_customer_segments",
                rows=100,
                fields=[F("customer_id", "integer", pk=True), F("segment")],
            )
        ],
    ),
    dict(
        domain="users",
        slug="user-preferences",
        name="User Preferences",
        status="deprecated",
        classification="internal",
        tags=["customers", "legacy"],
        slo=None,
        summary="Old preference flags; moved into Customer Profiles.",
        description="",
        ports=[
            dict(
                slug="preferences",
                name="Preferences table",
                kind="table",
                table="users_user_preferences",
                rows=100,
                fields=[F("customer_id", "integer", pk=True), F("newsletter", "boolean")],
            )
        ],
    ),
    # -- Traffic ------------------------------------------------------------------------------
    dict(
        domain="traffic",
        slug="page-views",
        name="Page Views",
        status="published",
        classification="internal",
        tags=["clickstream", "web"],
        slo=2,
        summary="Every page view in the web shop with referrer and session.",
        description="Raw clickstream, de-duplicated.",
        ports=[
            dict(
                slug="page-views",
                name="Page views table",
                kind="table",
                table="traffic_page_views",
                rows=5000,
                flaws={"stale": "viewed_at"},
                fields=[
                    F("view_id", "integer", pk=True),
                    F("session_id", "integer", req=True),
                    F("url", gen="url"),
                    F("referrer", gen="url"),
                    F("viewed_at", "timestamp", req=True),
                    F("customer_id", "integer"),
                ],
            )
        ],
    ),
    dict(
        domain="traffic",
        slug="sessions",
        name="Sessions",
        status="published",
        classification="internal",
        tags=["clickstream", "web"],
        slo=6,
        summary="Web sessions with channel and duration.",
        description="",
        ports=[
            dict(
                slug="sessions",
                name="Sessions table",
                kind="table",
                table="traffic_sessions",
                rows=1500,
                fields=[
                    F("session_id", "integer", pk=True),
                    F("customer_id", "integer"),
                    F("started_at", "timestamp", req=True),
                    F("duration_s", "integer"),
                    F("channel", gen="channel"),
                ],
            )
        ],
    ),
    dict(
        domain="traffic",
        slug="campaign-attribution",
        name="Campaign Attribution",
        status="published",
        classification="internal",
        tags=["marketing", "attribution"],
        slo=24,
        summary="Which campaign and channel led to each order.",
        description="Joins **Sessions** with **Orders**.",
        ports=[
            dict(
                slug="attribution",
                name="Attribution table",
                kind="table",
                table="traffic_campaign_attribution",
                rows=800,
                fields=[
                    F("order_id", "integer", pk=True),
                    F("channel", gen="channel"),
                    F("campaign"),
                    F("attributed_at", "timestamp"),
                ],
            )
        ],
    ),
    dict(
        domain="traffic",
        slug="bot-traffic",
        name="Bot Traffic",
        status="draft",
        classification="internal",
        tags=["web", "security"],
        slo=None,
        summary="Requests classified as bots (draft).",
        description="",
        ports=[
            dict(
                slug="bots",
                name="Bots table",
                kind="table",
                table="traffic_bot_traffic",
                rows=100,
                fields=[F("request_id", "integer", pk=True), F("user_agent")],
            )
        ],
    ),
    # -- Payments -----------------------------------------------------------------------------
    dict(
        domain="payments",
        slug="payments",
        name="Payments",
        status="published",
        classification="restricted",
        tags=["finance", "payments", "core"],
        slo=12,
        summary="Every payment attempt with method and outcome.",
        description="Restricted: request access with a purpose.",
        ports=[
            dict(
                slug="payments",
                name="Payments table",
                kind="table",
                table="payments_payments",
                rows=1300,
                flaws={"invalid": {"status": "unknown"}},
                fields=[
                    F("payment_id", "integer", pk=True),
                    F("order_id", "integer", req=True),
                    F("amount", "number", req=True),
                    F("method", gen="pay_method"),
                    F("status", gen="pay_status"),
                    F("paid_at", "timestamp", req=True),
                    F("card_last4", pii=True, gen="last4"),
                ],
            )
        ],
    ),
    dict(
        domain="payments",
        slug="refunds",
        name="Refunds",
        status="published",
        classification="confidential",
        tags=["finance", "payments"],
        slo=24,
        summary="Refunds paid back to customers.",
        description="",
        ports=[
            dict(
                slug="refunds",
                name="Refunds table",
                kind="table",
                table="payments_refunds",
                rows=250,
                fields=[
                    F("refund_id", "integer", pk=True),
                    F("payment_id", "integer", req=True),
                    F("amount", "number", req=True),
                    F("refunded_at", "timestamp"),
                ],
            )
        ],
    ),
    dict(
        domain="payments",
        slug="fraud-scores",
        name="Fraud Scores",
        status="draft",
        classification="restricted",
        tags=["payments", "ml"],
        slo=None,
        summary="Model scores per payment (draft).",
        description="",
        ports=[
            dict(
                slug="scores",
                name="Scores table",
                kind="table",
                table="payments_fraud_scores",
                rows=300,
                fields=[F("payment_id", "integer", pk=True), F("score", "number")],
            )
        ],
    ),
    dict(
        domain="payments",
        slug="chargebacks",
        name="Chargebacks",
        status="deprecated",
        classification="confidential",
        tags=["payments", "legacy"],
        slo=None,
        summary="Chargebacks from the old acquirer.",
        description="",
        ports=[
            dict(
                slug="chargebacks",
                name="Chargebacks table",
                kind="table",
                table="payments_chargebacks",
                rows=60,
                fields=[F("chargeback_id", "integer", pk=True), F("payment_id", "integer")],
            )
        ],
    ),
    # -- Marketing ----------------------------------------------------------------------------
    dict(
        domain="marketing",
        slug="customer-360",
        name="Customer 360",
        status="published",
        classification="confidential",
        tags=["customers", "marketing"],
        slo=24,
        summary="Customers with their lifetime value, last order and segment.",
        description="Built from **Customer Profiles** and **Orders**.",
        ports=[
            dict(
                slug="customer-360",
                name="Customer 360 table",
                kind="table",
                table="marketing_customer_360",
                rows=800,
                fields=[
                    F("customer_id", "integer", pk=True),
                    F("lifetime_value", "number"),
                    F("last_order_at", "timestamp"),
                    F("segment"),
                ],
            )
        ],
    ),
    dict(
        domain="marketing",
        slug="email-campaigns",
        name="Email Campaigns",
        status="published",
        classification="internal",
        tags=["marketing", "email"],
        slo=48,
        summary="Campaign sends, opens and clicks.",
        description="",
        ports=[
            dict(
                slug="campaigns",
                name="Campaigns table",
                kind="table",
                table="marketing_email_campaigns",
                rows=400,
                fields=[
                    F("campaign_id", "integer", pk=True),
                    F("sent_at", "timestamp"),
                    F("opens", "integer"),
                    F("clicks", "integer"),
                ],
            )
        ],
    ),
    dict(
        domain="marketing",
        slug="churn-predictions",
        name="Churn Predictions",
        status="draft",
        classification="confidential",
        tags=["ml", "customers"],
        slo=None,
        summary="Probability that a customer leaves within 90 days (draft).",
        description="",
        ports=[
            dict(
                slug="churn",
                name="Churn table",
                kind="table",
                table="marketing_churn_predictions",
                rows=200,
                fields=[F("customer_id", "integer", pk=True), F("churn_probability", "number")],
            )
        ],
    ),
    # -- Inventory ----------------------------------------------------------------------------
    dict(
        domain="inventory",
        slug="stock-levels",
        name="Stock Levels",
        status="published",
        classification="internal",
        tags=["inventory", "core"],
        slo=1,
        summary="Units on hand per SKU and warehouse, refreshed hourly.",
        description="",
        ports=[
            dict(
                slug="stock-levels",
                name="Stock levels table",
                kind="table",
                table="inventory_stock_levels",
                rows=900,
                flaws={"stale": "updated_at"},
                fields=[
                    F("sku", req=True, gen="sku"),
                    F("warehouse_id", "integer", req=True),
                    F("on_hand", "integer", req=True),
                    F("updated_at", "timestamp"),
                ],
            )
        ],
    ),
    dict(
        domain="inventory",
        slug="product-catalog",
        name="Product Catalog",
        status="published",
        classification="public",
        tags=["inventory", "catalog"],
        slo=24,
        summary="Every SKU we sell with name, category and list price.",
        description="",
        ports=[
            dict(
                slug="catalog",
                name="Catalog table",
                kind="table",
                table="inventory_product_catalog",
                rows=500,
                fields=[
                    F("sku", pk=True, gen="sku_unique"),
                    F("name"),
                    F("category", gen="category"),
                    F("price", "number"),
                ],
            )
        ],
    ),
    dict(
        domain="warehousing",
        slug="shipments",
        name="Shipments",
        status="published",
        classification="internal",
        tags=["inventory", "logistics"],
        slo=12,
        summary="Parcels leaving our warehouses with carrier and tracking state.",
        description="",
        ports=[
            dict(
                slug="shipments",
                name="Shipments table",
                kind="table",
                table="warehousing_shipments",
                rows=900,
                fields=[
                    F("shipment_id", "integer", pk=True),
                    F("order_id", "integer", req=True),
                    F("carrier", gen="carrier"),
                    F("shipped_at", "timestamp"),
                ],
            ),
            # Parquet files in the demo lake, checked through DuckDB (demo/lake.py).
            dict(
                slug="shipment-events",
                name="Shipment events (Parquet)",
                kind="file",
                format="parquet",
                lake="shipments/events-*.parquet",
                rows=600,
                fields=[
                    F("event_id", "integer", pk=True),
                    F("shipment_id", "integer", req=True),
                    F("carrier", gen="carrier"),
                    F("event_at", "timestamp"),
                ],
                flaws={"nulls": {"carrier": 0.05}},
            ),
        ],
    ),
    dict(
        domain="inventory",
        slug="supplier-deliveries",
        name="Supplier Deliveries",
        status="draft",
        classification="internal",
        tags=["inventory"],
        slo=None,
        summary="Deliveries from suppliers (draft).",
        description="",
        ports=[
            dict(
                slug="deliveries",
                name="Deliveries table",
                kind="table",
                table="inventory_supplier_deliveries",
                rows=100,
                fields=[F("delivery_id", "integer", pk=True), F("sku", gen="sku")],
            )
        ],
    ),
]

# Accepted values, for generators and (later) accepted-value checks.
VALUES = {
    "order_status": ["accepted", "shipped", "delivered", "cancelled"],
    "currency": ["EUR", "USD", "GBP"],
    "return_reason": ["damaged", "wrong size", "not as described", "changed mind"],
    "country": ["DE", "FR", "NL", "GB", "US", "ES", "IT"],
    "device": ["ios", "android", "web"],
    "channel": ["organic", "paid_search", "email", "social", "direct"],
    "pay_method": ["card", "paypal", "invoice", "apple_pay"],
    "pay_status": ["authorised", "captured", "failed", "refunded"],
    "category": ["shoes", "shirts", "trousers", "accessories"],
    "carrier": ["DHL", "UPS", "PostNL", "DPD"],
}
