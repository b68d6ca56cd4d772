"""A large, realistic, deterministic mesh for benchmarks and query-count tests (`seed_scale`).

The generator is a list of stages (`all_stages()`, written out in full at the end of this
module), each a function `stage(ctx) -> rows written`. A feature's stages live in their own
module (`demo/lineage_scale.py`, `demo/scale_stages.py`) and are named in that list.

A stage reads what earlier stages made from `ctx` (`ctx.users`, `ctx.teams`, `ctx.domains`,
`ctx.products`, `ctx.ports`, ...), draws from `ctx.rng` (seeded: same options, same mesh) and
writes through `ctx.insert(model, fields, rows)`, which uses PostgreSQL's COPY when it can and
`bulk_create` elsewhere. Ids are allocated by the generator (`ctx.next_ids`) so rows can point
at each other without reading them back; sequences are reset at the end.

Generated objects are recognisable: their users and teams have e-mail addresses at
`SCALE_EMAIL_DOMAIN`, so `reset()` removes exactly them and what hangs off them.
"""

import json
import random
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management.color import no_style
from django.db import connection, models, transaction
from django.utils.text import slugify

from domains.models import Domain, Membership, Team
from meshportal import audit, bulk
from meshportal import cache as shared_cache
from meshportal.models import AuditEntry
from products.models import (
    AccessRequest,
    DataProduct,
    DataProductGroupObjectPermission,
    DataProductUserObjectPermission,
    OutputPort,
    SchemaField,
    Tag,
)

SCALE_EMAIL_DOMAIN = "scale.mesh.example"
# every generated user signs in with it (benchmarks)
PASSWORD = "mesh-scale"  # noqa: S105  # nosec B105
SQLITE_MAX_PRODUCTS = 2000
BASE_TIME = datetime(2025, 1, 1, tzinfo=UTC)


@dataclass
class Options:
    products: int = 10_000
    domains: int = 20
    teams: int = 200
    ports_per_product: int = 3
    fields_per_port: int = 17
    users: int | None = None  # default: 5 per team
    seed: int = 42
    lineage_edges: int | None = None  # product-to-product inputs; default: 3 per product
    checks_per_product: float = 2.0  # quality checks, on table and view ports
    check_runs: int | None = None  # quality check runs in all; default: 100 per product
    # Semantic search vectors (with the `semantic` extra): `seed_scale` computes them unless
    # --no-embeddings; off for other callers (tests), as they cost 0.1-0.3 s a product.
    embeddings: bool = False

    @property
    def user_count(self) -> int:
        return self.users if self.users is not None else max(self.teams * 5, 20)

    @property
    def edge_count(self) -> int:
        return self.lineage_edges if self.lineage_edges is not None else 3 * self.products

    @property
    def run_count(self) -> int:
        return self.check_runs if self.check_runs is not None else 100 * self.products


@dataclass
class Stage:
    name: str
    run: Callable[["Context"], int]
    # Removes this stage's rows of a generated mesh, given its products (for --reset); runs
    # before the core tables are emptied, in reverse stage order.
    reset: Callable[[models.QuerySet], None] | None = None


def _column(model: type[models.Model], name: str) -> str:
    f = model._meta.get_field(name)
    if not isinstance(f, models.Field) or not f.column:
        raise ValueError(f"{model.__name__}.{name} is not a column")
    return f.column


@dataclass
class Context:
    options: Options
    rng: random.Random
    progress: Callable[[str], None]
    now: datetime = BASE_TIME
    # What earlier stages made, for later ones (plain tuples: cheap at 500,000 rows).
    users: list[int] = field(default_factory=list)
    teams: list[dict] = field(default_factory=list)  # id, slug, group_id, owners, members
    domains: list[dict] = field(default_factory=list)  # id, slug, team_ids
    tags: list[int] = field(default_factory=list)
    products: list[dict] = field(default_factory=list)  # id, slug, domain, team, status
    ports: list[tuple[int, int]] = field(default_factory=list)  # (port id, product id)
    port_kinds: dict[int, str] = field(default_factory=dict)
    fields_by_port: dict[int, list[str]] = field(default_factory=dict)  # field names
    # Wall-clock time of the run: histories that schedules and "last N days" rules read
    # (quality runs, policy evaluations) end here rather than at the fixed BASE_TIME.
    clock: datetime = field(default_factory=lambda: datetime.now(UTC))
    counts: dict[str, float] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # what a stage hands to a later one
    _next: dict[type, int] = field(default_factory=dict)
    touched: set = field(default_factory=set)

    def next_ids(self, model: type[models.Model], n: int) -> range:
        """Reserve n primary keys for model (above whatever the table already holds)."""
        if model not in self._next:
            top = model._default_manager.aggregate(m=models.Max("pk"))["m"] or 0
            self._next[model] = top + 1
        start = self._next[model]
        self._next[model] = start + n
        return range(start, start + n)

    def insert(
        self,
        model: type[models.Model],
        fields: list[str],
        rows: Iterable[tuple],
        total: int | None = None,
    ) -> int:
        """Write rows (tuples in `fields` order): COPY on PostgreSQL, bulk_create elsewhere."""
        self.touched.add(model)
        label = model._meta.db_table
        # Columns a stage does not name take their model default: a field added later (with a
        # default, as every new NOT NULL column has) never breaks COPY's NOT NULL.
        named = set(fields)
        extra = [
            f
            for f in model._meta.concrete_fields
            if not f.primary_key and f.has_default() and not named & {f.name, f.attname}
        ]
        if extra:
            fields = [*fields, *(f.name for f in extra)]
            defaults = tuple(f.get_default() for f in extra)
            rows = (tuple(row) + defaults for row in rows)
        n = 0
        step = max((total or 0) // 10, 50_000)
        started = time.monotonic()

        def counted(it):
            nonlocal n
            for row in it:
                n += 1
                if total and n % step == 0:
                    self.progress(
                        f"  {label}: {n:,}/{total:,} ({100 * n // total}%) "
                        f"{time.monotonic() - started:.1f}s"
                    )
                yield row

        # JSON columns take Python values or JSON text from a stage: COPY needs text, model
        # instances need values.
        json_at = [
            i
            for i, f in enumerate(fields)
            if isinstance(model._meta.get_field(f), models.JSONField)
        ]
        if connection.vendor == "postgresql":
            stmt, types = bulk.copy_statement(model, [_column(model, f) for f in fields])
            if types:  # binary: JSON columns as values, which its writer serialises
                rows = _json_columns(rows, json_at, json.loads, wanted=(dict, list))
            elif json_at:
                rows = _json_columns(rows, json_at, json.dumps, wanted=str)
            with connection.cursor() as cursor, cursor.cursor.copy(stmt) as copy:
                if types:
                    copy.set_types(types)
                for row in counted(rows):
                    copy.write_row(row)
        else:
            if json_at:
                rows = _json_columns(rows, json_at, json.loads, wanted=(dict, list))
            batch: list[models.Model] = []
            for row in counted(rows):
                batch.append(model(**dict(zip(fields, row, strict=True))))
                if len(batch) >= 2000:
                    model._default_manager.bulk_create(batch)
                    batch = []
            if batch:
                model._default_manager.bulk_create(batch)
        self.counts[label] = self.counts.get(label, 0) + n
        return n

    def at(self, days_ago: float) -> datetime:
        return self.now - timedelta(days=days_ago)

    def stage_rng(self, name: str) -> random.Random:
        """A generator of its own for a stage, so adding a stage leaves the others' draws alone."""
        # Test data, not secrets.
        return random.Random(f"{self.options.seed}:{name}")  # nosec B311


def _json_columns(rows: Iterable[tuple], at: list[int], convert: Callable, wanted) -> Iterable:
    if not at:
        yield from rows
        return
    for row in rows:
        values = list(row)
        for i in at:
            if values[i] is not None and not isinstance(values[i], wanted):
                values[i] = convert(values[i])
        yield tuple(values)


# -- vocabulary ------------------------------------------------------------------------------

DOMAIN_NAMES = [
    "Sales",
    "Finance",
    "Logistics",
    "Customer Support",
    "Human Resources",
    "Procurement",
    "Manufacturing",
    "Fulfilment",
    "Pricing",
    "Loyalty",
    "Risk",
    "Fraud Detection",
    "Billing",
    "Shipping",
    "Catalogue",
    "Search",
    "Recommendations",
    "Advertising",
    "Partners",
    "Legal",
    "Compliance",
    "Treasury",
    "Facilities",
    "Product Analytics",
    "Mobile",
    "Web",
    "Content",
    "Supply Chain",
    "Returns",
    "Subscriptions",
]
TEAM_WORDS = [
    "Core",
    "Analytics",
    "Platform",
    "Insights",
    "Ingestion",
    "Reporting",
    "Modelling",
    "Operations",
    "Experience",
    "Intelligence",
    "Data",
    "Services",
    "Growth",
    "Quality",
]
ENTITIES = [
    "orders",
    "customers",
    "invoices",
    "payments",
    "shipments",
    "returns",
    "sessions",
    "page views",
    "clicks",
    "campaigns",
    "leads",
    "contracts",
    "suppliers",
    "products",
    "prices",
    "stock levels",
    "warehouses",
    "employees",
    "tickets",
    "refunds",
    "subscriptions",
    "churn",
    "revenue",
    "margins",
    "forecasts",
    "transactions",
    "accounts",
    "devices",
    "events",
    "reviews",
    "deliveries",
    "routes",
    "claims",
    "budgets",
    "vendors",
    "carts",
]
QUALIFIERS = [
    "Daily",
    "Hourly",
    "Monthly",
    "Enriched",
    "Raw",
    "Curated",
    "Aggregated",
    "Cleaned",
    "Historical",
    "Real-time",
    "Weekly",
    "Consolidated",
    "Verified",
    "Scored",
    "Global",
]
REGIONS = ["", "", "", "EMEA", "APAC", "Americas", "EU", "UK", "US", "Nordics"]
TAG_WORDS = [
    "gdpr",
    "pii",
    "finance",
    "kpi",
    "ml-feature",
    "golden",
    "certified",
    "experimental",
    "marketing",
    "operations",
    "realtime",
    "batch",
    "executive",
    "regulatory",
    "sox",
    "customer-360",
    "forecasting",
    "attribution",
    "cost",
    "sla-critical",
    "self-serve",
    "sandbox",
    "legacy",
    "streaming",
    "geo",
    "pricing",
    "inventory",
    "hr",
    "support",
    "risk",
]
FIELD_NAMES = [
    ("id", "integer"),
    ("customer_id", "integer"),
    ("order_id", "integer"),
    ("account_id", "integer"),
    ("product_id", "integer"),
    ("session_id", "string"),
    ("created_at", "timestamp"),
    ("updated_at", "timestamp"),
    ("deleted_at", "timestamp"),
    ("event_time", "timestamp"),
    ("event_date", "date"),
    ("valid_from", "date"),
    ("valid_to", "date"),
    ("amount", "number"),
    ("currency", "string"),
    ("quantity", "integer"),
    ("unit_price", "number"),
    ("discount", "number"),
    ("tax_amount", "number"),
    ("total_amount", "number"),
    ("status", "string"),
    ("channel", "string"),
    ("country_code", "string"),
    ("region", "string"),
    ("city", "string"),
    ("postal_code", "string"),
    ("email", "string"),
    ("phone", "string"),
    ("first_name", "string"),
    ("last_name", "string"),
    ("birth_date", "date"),
    ("street_address", "string"),
    ("ip_address", "string"),
    ("user_agent", "string"),
    ("device_type", "string"),
    ("is_active", "boolean"),
    ("is_test", "boolean"),
    ("is_deleted", "boolean"),
    ("score", "number"),
    ("probability", "number"),
    ("segment", "string"),
    ("category", "string"),
    ("sku", "string"),
    ("warehouse_id", "integer"),
    ("supplier_id", "integer"),
    ("campaign_id", "integer"),
    ("source", "string"),
    ("medium", "string"),
    ("referrer", "string"),
    ("attributes", "object"),
    ("tags", "array"),
    ("line_items", "array"),
    ("metadata", "object"),
    ("version", "integer"),
    ("ingested_at", "timestamp"),
    ("batch_id", "string"),
    ("hash", "string"),
    ("notes", "string"),
    ("priority", "integer"),
    ("assignee_id", "integer"),
    ("resolved_at", "timestamp"),
    ("margin", "number"),
    ("cost", "number"),
    ("latitude", "number"),
    ("longitude", "number"),
    ("language", "string"),
    ("plan", "string"),
    ("renewal_date", "date"),
    ("mrr", "number"),
    ("employee_id", "integer"),
]
PII_FIELDS = {
    "email",
    "phone",
    "first_name",
    "last_name",
    "birth_date",
    "street_address",
    "ip_address",
    "postal_code",
}
PHYSICAL = {
    "integer": "bigint",
    "string": "varchar",
    "timestamp": "timestamptz",
    "date": "date",
    "number": "numeric(18,4)",
    "boolean": "boolean",
    "object": "jsonb",
    "array": "jsonb",
}
FIRST = [
    "ava",
    "ben",
    "chloe",
    "dan",
    "emma",
    "finn",
    "grace",
    "hugo",
    "iris",
    "jack",
    "kim",
    "leo",
    "maya",
    "noah",
    "olga",
    "paul",
    "quinn",
    "rosa",
    "sam",
    "tara",
    "uri",
    "vera",
    "will",
    "xena",
    "yuri",
    "zoe",
]
LAST = [
    "smith",
    "jones",
    "garcia",
    "müller",
    "rossi",
    "dubois",
    "kowalski",
    "silva",
    "nguyen",
    "kim",
    "patel",
    "cohen",
    "larsen",
    "novak",
    "ivanova",
    "okafor",
    "tanaka",
    "lopez",
]
PORT_KINDS = ["table", "table", "table", "view", "view", "file", "api", "stream", "dashboard"]
STATUSES = ["published"] * 14 + ["draft"] * 3 + ["deprecated"] * 2 + ["retired"]
CLASSIFICATIONS = ["internal"] * 5 + ["public"] * 2 + ["confidential"] * 2 + ["restricted"]
SENTENCES = [
    "Refreshed by the {team} team from the operational systems of {domain}.",
    "One row per {entity_singular}, deduplicated and conformed to the company calendar.",
    "Use it for reporting, forecasting and feature engineering.",
    "Late-arriving records are merged for up to seven days.",
    "Amounts are in the original currency; see the `currency` column.",
    "Personal data is pseudonymised unless you hold an approved grant.",
    "Backfilled from 2019; earlier history lives in the legacy warehouse.",
    "Questions go to the owning team's channel; incidents to the on-call rota.",
]


def _unique(slug: str, taken: set[str]) -> str:
    candidate, n = slug, 2
    while candidate in taken:
        candidate = f"{slug}-{n}"
        n += 1
    taken.add(candidate)
    return candidate


# -- stages ----------------------------------------------------------------------------------


def stage_users(ctx: Context) -> int:
    User = get_user_model()
    n = ctx.options.user_count
    ids = ctx.next_ids(User, n)
    password = make_password(PASSWORD)
    taken = set(User.objects.values_list("username", flat=True))
    rows = []
    for i, pk in enumerate(ids):
        first, last = ctx.rng.choice(FIRST), ctx.rng.choice(LAST)
        username = _unique(f"{first}.{slugify(last)}{i}", taken)
        rows.append(
            (
                pk,
                username,
                first.title(),
                last.title(),
                f"{username}@{SCALE_EMAIL_DOMAIN}",
                password,
                False,
                False,
                True,
                ctx.at(400 - i % 365),
            )
        )
        ctx.users.append(pk)
    return ctx.insert(
        User,
        [
            "id",
            "username",
            "first_name",
            "last_name",
            "email",
            "password",
            "is_staff",
            "is_superuser",
            "is_active",
            "date_joined",
        ],
        rows,
    )


def stage_teams(ctx: Context) -> int:
    """Teams, their Django groups, and memberships (1-2 owners and 3-8 members each)."""
    o = ctx.options
    taken = set(Team.objects.values_list("slug", flat=True))
    group_ids = ctx.next_ids(Group, o.teams)
    team_ids = ctx.next_ids(Team, o.teams)
    groups, teams = [], []
    for i in range(o.teams):
        domain_name = DOMAIN_NAMES[i % o.domains % len(DOMAIN_NAMES)]
        word = TEAM_WORDS[(i // max(o.domains, 1)) % len(TEAM_WORDS)]
        name = f"{domain_name} {word}"
        slug = _unique(slugify(name), taken)
        groups.append((group_ids[i], f"team:{slug}"))
        teams.append(
            (
                team_ids[i],
                slug,
                name,
                f"The {name} team.",
                f"{slug}@{SCALE_EMAIL_DOMAIN}",
                group_ids[i],
                ctx.at(500),
                ctx.at(30),
            )
        )
        ctx.teams.append(
            {"id": team_ids[i], "slug": slug, "group_id": group_ids[i], "owners": [], "members": []}
        )
    written = ctx.insert(Group, ["id", "name"], groups)
    written += ctx.insert(
        Team,
        [
            "id",
            "slug",
            "name",
            "description",
            "contact_email",
            "group_id",
            "created_at",
            "updated_at",
        ],
        teams,
    )
    members, user_groups = [], []
    for t in ctx.teams:
        people = ctx.rng.sample(ctx.users, min(len(ctx.users), ctx.rng.randint(4, 10)))
        n_owners = ctx.rng.randint(1, 2)
        for j, uid in enumerate(people):
            role = "owner" if j < n_owners else "member"
            t["owners" if role == "owner" else "members"].append(uid)
            members.append((t["id"], uid, role, ctx.at(200)))
            user_groups.append((uid, t["group_id"]))
    ids = ctx.next_ids(Membership, len(members))
    written += ctx.insert(
        Membership,
        ["id", "team_id", "user_id", "role", "created_at"],
        [(pk, *row) for pk, row in zip(ids, members, strict=True)],
    )
    through = get_user_model().groups.through
    ids = ctx.next_ids(through, len(user_groups))
    written += ctx.insert(
        through,
        ["id", "user_id", "group_id"],
        [(pk, *row) for pk, row in zip(ids, user_groups, strict=True)],
    )
    return written


def stage_domains(ctx: Context) -> int:
    o = ctx.options
    taken = set(Domain.objects.values_list("slug", flat=True))
    ids = ctx.next_ids(Domain, o.domains)
    rows = []
    for i, pk in enumerate(ids):
        name = DOMAIN_NAMES[i % len(DOMAIN_NAMES)]
        if i >= len(DOMAIN_NAMES):
            name = f"{name} {i // len(DOMAIN_NAMES) + 1}"
        slug = _unique(slugify(name), taken)
        team_ids = [t["id"] for k, t in enumerate(ctx.teams) if k % o.domains == i]
        team_ids = team_ids or [ctx.teams[i % len(ctx.teams)]["id"]]
        # Every fifth domain (after the first few) is a sub-domain, as real meshes have.
        parent = ids[i - 3] if i >= 5 and i % 5 == 0 else None
        rows.append(
            (
                pk,
                slug,
                name,
                f"Everything about **{name.lower()}**: "
                f"{ctx.rng.choice(SENTENCES).format(team=name, domain=name, entity_singular='record')}",
                parent,
                team_ids[0],
                ctx.at(500),
                ctx.at(20),
            )
        )
        ctx.domains.append({"id": pk, "slug": slug, "name": name, "team_ids": team_ids})
    return ctx.insert(
        Domain,
        [
            "id",
            "slug",
            "name",
            "description",
            "parent_id",
            "owner_team_id",
            "created_at",
            "updated_at",
        ],
        rows,
    )


def stage_tags(ctx: Context) -> int:
    existing = dict(Tag.objects.values_list("slug", "pk"))
    missing = [w for w in TAG_WORDS if w not in existing]
    ids = ctx.next_ids(Tag, len(missing))
    n = ctx.insert(
        Tag,
        ["id", "slug", "name"],
        [(pk, w, w.replace("-", " ")) for pk, w in zip(ids, missing, strict=True)],
    )
    ctx.tags = [existing.get(w) or ids[missing.index(w)] for w in TAG_WORDS]
    return n


def stage_products(ctx: Context) -> int:
    o, rng = ctx.options, ctx.rng
    ids = ctx.next_ids(DataProduct, o.products)
    taken: dict[int, set[str]] = {d["id"]: set() for d in ctx.domains}
    teams_by_id = {t["id"]: t for t in ctx.teams}

    def rows():
        for i, pk in enumerate(ids):
            d = ctx.domains[i % len(ctx.domains)]
            team = teams_by_id[rng.choice(d["team_ids"])]
            entity = rng.choice(ENTITIES)
            region = rng.choice(REGIONS)
            name = f"{rng.choice(QUALIFIERS)} {entity.title()}" + (f" {region}" if region else "")
            slug = _unique(slugify(name), taken[d["id"]])
            status = rng.choice(STATUSES)
            created = ctx.at(rng.uniform(30, 900))
            published = created + timedelta(days=rng.uniform(1, 20)) if status != "draft" else None
            text = " ".join(
                s.format(team=team["slug"], domain=d["name"], entity_singular=entity.rstrip("s"))
                for s in rng.sample(SENTENCES, 3)
            )
            # Drawn in this order so that the same seed keeps giving the same mesh.
            version = f"{rng.randint(1, 4)}.{rng.randint(0, 12)}.{rng.randint(0, 9)}"
            classification = rng.choice(CLASSIFICATIONS)
            slo = rng.choice([None, 1, 6, 24, 24, 168])
            ctx.products.append(
                {
                    "id": pk,
                    "slug": slug,
                    "domain": d,
                    "team": team,
                    "status": status,
                    "entity": entity,
                    "classification": classification,
                    "freshness_slo_hours": slo,
                }
            )
            yield (
                pk,
                d["id"],
                slug,
                name[:200],
                f"{name} for {d['name']}: {entity} as the {team['slug']} team publishes them."[
                    :300
                ],
                f"## {name}\n\n{text}\n",
                status,
                version,
                classification,
                team["id"],
                slo,
                rng.choice([None, Decimal("99.000"), Decimal("99.500"), Decimal("99.900")]),
                None,
                None,
                published,
                created,
                created + timedelta(days=rng.uniform(0, 30)),
            )

    return ctx.insert(
        DataProduct,
        [
            "id",
            "domain_id",
            "slug",
            "name",
            "summary",
            "description",
            "status",
            "version",
            "classification",
            "owner_team_id",
            "freshness_slo_hours",
            "availability_slo",
            "sunset_date",
            "replacement_id",
            "published_at",
            "created_at",
            "updated_at",
        ],
        rows(),
        total=o.products,
    )


def stage_product_tags(ctx: Context) -> int:
    through = DataProduct.tags.through
    pairs = [
        (p["id"], t) for p in ctx.products for t in ctx.rng.sample(ctx.tags, ctx.rng.randint(0, 4))
    ]
    ids = ctx.next_ids(through, len(pairs))
    return ctx.insert(
        through,
        ["id", "dataproduct_id", "tag_id"],
        [(pk, *pair) for pk, pair in zip(ids, pairs, strict=True)],
    )


def stage_ports(ctx: Context) -> int:
    o, rng = ctx.options, ctx.rng
    ids = iter(ctx.next_ids(OutputPort, o.products * o.ports_per_product))

    def rows():
        for p in ctx.products:
            base = p["entity"].replace(" ", "_")
            for j in range(o.ports_per_product):
                pk = next(ids)
                kind = rng.choice(PORT_KINDS)
                slug = f"{base.replace('_', '-')}-{j + 1}" if j else base.replace("_", "-")
                location = {
                    "table": f"{p['domain']['slug'].replace('-', '_')}.{base}_{j + 1}",
                    "view": f"{p['domain']['slug'].replace('-', '_')}.v_{base}_{j + 1}",
                    "file": f"s3://mesh-{p['domain']['slug']}/{p['slug']}/{j + 1}/",
                    "api": f"https://api.internal/{p['domain']['slug']}/{p['slug']}",
                    "stream": f"kafka://{p['domain']['slug']}.{p['slug']}.v{j + 1}",
                    "dashboard": f"https://bi.internal/d/{p['id']}-{j}",
                }[kind]
                fmt = {"file": "parquet", "stream": "avro", "api": "json"}.get(kind, "")
                ctx.ports.append((pk, p["id"]))
                ctx.port_kinds[pk] = kind
                yield (
                    pk,
                    p["id"],
                    slug,
                    f"{p['entity'].title()} {kind} {j + 1}",
                    kind,
                    location,
                    fmt,
                    f"The {kind} port of {p['slug']}.",
                    None,
                    ctx.at(100),
                    ctx.at(10),
                )

    return ctx.insert(
        OutputPort,
        [
            "id",
            "product_id",
            "slug",
            "name",
            "kind",
            "location",
            "format",
            "description",
            "data_source_id",
            "created_at",
            "updated_at",
        ],
        rows(),
        total=len(ctx.products) * o.ports_per_product,
    )


def stage_fields(ctx: Context) -> int:
    """Between half and 1.5 times fields_per_port fields per port (that many on average)."""
    o, rng = ctx.options, ctx.rng
    low = max(1, o.fields_per_port // 2)
    per_port = [rng.randint(low, 2 * o.fields_per_port - low) for _ in ctx.ports]
    total = sum(per_port)
    ids = iter(ctx.next_ids(SchemaField, total))

    def rows():
        for (port_id, _), n in zip(ctx.ports, per_port, strict=True):
            chosen = [FIELD_NAMES[0], *rng.sample(FIELD_NAMES[1:], min(n, len(FIELD_NAMES)) - 1)]
            ctx.fields_by_port[port_id] = [name for name, _ in chosen]
            for k, (name, logical) in enumerate(chosen):
                yield (
                    next(ids),
                    port_id,
                    name,
                    logical,
                    PHYSICAL[logical],
                    f"{name.replace('_', ' ').capitalize()}.",
                    k == 0,
                    k == 0,
                    k == 0,
                    name in PII_FIELDS,
                    k,
                )

    return ctx.insert(
        SchemaField,
        [
            "id",
            "port_id",
            "name",
            "logical_type",
            "physical_type",
            "description",
            "required",
            "unique",
            "primary_key",
            "pii",
            "ordinal",
        ],
        rows(),
        total=total,
    )


def _perm_id(codename: str) -> int:
    return Permission.objects.get(content_type__app_label="products", codename=codename).pk


def stage_team_permissions(ctx: Context) -> int:
    """What products.services.product_sync_permissions would write: the owning team's group
    holds view and change on each of its products."""
    perms = [_perm_id("view_dataproduct"), _perm_id("change_dataproduct")]
    ids = iter(ctx.next_ids(DataProductGroupObjectPermission, len(ctx.products) * len(perms)))
    return ctx.insert(
        DataProductGroupObjectPermission,
        ["id", "group_id", "permission_id", "content_object_id"],
        ((next(ids), p["team"]["group_id"], perm, p["id"]) for p in ctx.products for perm in perms),
        total=len(ctx.products) * len(perms),
    )


def stage_access_requests(ctx: Context) -> int:
    """About one request per open product: pending (owners' inboxes), approved (with the
    consume grant a real approval writes), denied, revoked and expired ones."""
    rng = ctx.rng
    open_products = [p for p in ctx.products if p["status"] in ("published", "deprecated")]
    consume = _perm_id("consume_dataproduct")
    reqs, grants = [], []
    for p in open_products:
        skip = set(p["team"]["owners"] + p["team"]["members"])
        for _ in range(rng.choice([0, 1, 1, 2])):
            requester = rng.choice(ctx.users)
            if requester in skip:
                continue
            skip.add(requester)
            status = rng.choice(["pending", "approved", "approved", "denied", "revoked", "expired"])
            created = ctx.at(rng.uniform(0, 120))
            decided = status != "pending"
            decider = rng.choice(p["team"]["owners"]) if decided else None
            decided_at = created + timedelta(days=1) if decided else None
            expires = created + timedelta(days=91) if status in ("approved", "expired") else None
            ended = decided_at if status in ("revoked", "expired") else None
            reqs.append(
                (
                    p["id"],
                    requester,
                    None,
                    f"Analysis of {p['entity']} for planning.",
                    90,
                    status,
                    decider,
                    decided_at,
                    "",
                    expires,
                    ended,
                    created,
                )
            )
            if status == "approved":
                grants.append((requester, consume, p["id"]))
    ids = ctx.next_ids(AccessRequest, len(reqs))
    n = ctx.insert(
        AccessRequest,
        [
            "id",
            "product_id",
            "requester_id",
            "team_id",
            "purpose",
            "duration_days",
            "status",
            "decided_by_id",
            "decided_at",
            "decision_comment",
            "expires_at",
            "ended_at",
            "created_at",
        ],
        [(pk, *r) for pk, r in zip(ids, reqs, strict=True)],
    )
    ids = ctx.next_ids(DataProductUserObjectPermission, len(grants))
    n += ctx.insert(
        DataProductUserObjectPermission,
        ["id", "user_id", "permission_id", "content_object_id"],
        [(pk, *g) for pk, g in zip(ids, grants, strict=True)],
    )
    return n


def stage_audit(ctx: Context) -> int:
    """A create entry for every team, domain and product, and an update for published ones."""
    ct = {m: ContentType.objects.get_for_model(m) for m in (Team, Domain, DataProduct)}
    entries = []
    for t in ctx.teams:
        entries.append((ct[Team], t["id"], t["slug"], "create", {"slug": [None, t["slug"]]}, 500))
    for d in ctx.domains:
        entries.append((ct[Domain], d["id"], d["name"], "create", {"slug": [None, d["slug"]]}, 500))
    for p in ctx.products:
        entries.append(
            (
                ct[DataProduct],
                p["id"],
                p["slug"],
                "create",
                {"slug": [None, p["slug"]], "status": [None, "draft"]},
                300,
            )
        )
        if p["status"] != "draft":
            entries.append(
                (
                    ct[DataProduct],
                    p["id"],
                    p["slug"],
                    "update",
                    {"status": ["draft", "published"]},
                    200,
                )
            )
    ids = iter(ctx.next_ids(AuditEntry, len(entries)))
    rows = (
        (
            next(ids),
            ctx.at(days),
            None,
            "command",
            "command",
            action,
            c.pk,
            str(obj_id),
            name,
            json.dumps(changes),
            c.pk,
            str(obj_id),
            "seed-scale",
        )
        for c, obj_id, name, action, changes, days in entries
    )
    return ctx.insert(
        AuditEntry,
        ["id", *audit.ROW],  # the columns audit.record_many writes
        rows,
        total=len(entries),
    )


def stage_search_index(ctx: Context) -> int:
    """The products' stored full-text vectors (names, tags, fields, glossary terms), as the
    product services keep them; without them search would find nothing but typos."""
    from products.discovery.search import reindex

    return reindex(DataProduct.objects.filter(pk__in=[p["id"] for p in ctx.products]))


def stage_embeddings(ctx: Context) -> int:
    """The products' meaning vectors for semantic search, as the embed task computes them
    (about 0.1-0.3 s a product on 2 cores: `--no-embeddings` leaves them out)."""
    from products.discovery import semantic

    if not ctx.options.embeddings:
        return 0
    return semantic.embed(DataProduct.objects.filter(pk__in=[p["id"] for p in ctx.products]))


def all_stages() -> list[Stage]:
    """Every stage, in order: what `seed_scale` writes, read top to bottom."""
    from demo import lineage_scale, scale_stages

    return [
        Stage("users", stage_users),
        Stage("teams", stage_teams),
        Stage("domains", stage_domains),
        Stage("tags", stage_tags),
        Stage("products", stage_products),
        Stage("product tags", stage_product_tags),
        Stage("ports", stage_ports),
        Stage("fields", stage_fields),
        Stage("lineage", lineage_scale.stage_lineage, lineage_scale.reset_lineage),
        Stage("team permissions", stage_team_permissions),
        Stage("access requests", stage_access_requests),
        Stage("audit", stage_audit),
        Stage("glossary", scale_stages.stage_glossary, scale_stages.reset_glossary),
        Stage("quality", scale_stages.stage_quality, scale_stages.reset_quality),
        Stage("policies", scale_stages.stage_policies, scale_stages.reset_policies),
        Stage("trust", scale_stages.stage_trust),
        Stage("search index", stage_search_index),  # reads every row above,
        Stage("embeddings", stage_embeddings),
    ]


# -- running ---------------------------------------------------------------------------------


def size_problem(products: int, vendor: str) -> str | None:
    """Why this database should not hold a mesh this big (None: it may)."""
    if vendor == "sqlite" and products > SQLITE_MAX_PRODUCTS:
        return (
            f"SQLite is for meshes up to {SQLITE_MAX_PRODUCTS:,} products; {products:,} "
            "needs PostgreSQL (set DATABASE_URL=postgres://…)."
        )
    return None


def scale_products():
    return DataProduct.objects.filter(owner_team__contact_email__endswith=f"@{SCALE_EMAIL_DOMAIN}")


def existing_size() -> int:
    """How many generated products the database holds (0: no scale mesh)."""
    return scale_products().count()


def reset(progress: Callable[[str], None] = lambda s: None) -> None:
    """Delete the generated mesh (and only it), fastest first: fields, ports, then the rest."""
    teams = Team.objects.filter(contact_email__endswith=f"@{SCALE_EMAIL_DOMAIN}")
    products = DataProduct.objects.filter(domain__owner_team__in=teams)
    with transaction.atomic():
        for stage in reversed(all_stages()):
            if stage.reset is not None:
                stage.reset(products)
        # Raw deletes: no per-row signals (governance marks a product changed for each field
        # deleted, which for 500,000 generated fields means minutes of queries after commit).
        SchemaField.objects.filter(port__product__in=products)._raw_delete(connection.alias)
        OutputPort.objects.filter(product__in=products)._raw_delete(connection.alias)
        AuditEntry.objects.filter(request_id="seed-scale").delete()
        DataProductGroupObjectPermission.objects.filter(content_object__in=products).delete()
        DataProductUserObjectPermission.objects.filter(content_object__in=products).delete()
        AccessRequest.objects.filter(product__in=products).delete()
        DataProduct.tags.through.objects.filter(dataproduct__in=products).delete()
        n = products.count()
        products.delete()
        domains = Domain.objects.filter(owner_team__in=teams)
        domains.filter(parent__isnull=False).delete()
        domains.delete()
        group_ids = list(teams.values_list("group_id", flat=True))
        teams.delete()
        Group.objects.filter(pk__in=group_ids).delete()
        get_user_model().objects.filter(email__endswith=f"@{SCALE_EMAIL_DOMAIN}").delete()
    progress(f"reset: removed the generated mesh ({n:,} products)")


def generate(
    options: Options,
    progress: Callable[[str], None] | None = None,
    stages: list[Stage] | None = None,
) -> Context:
    """Run every stage in one transaction; returns the context (counts per table)."""
    progress = progress or (lambda s: print(s, file=sys.stderr, flush=True))  # noqa: T201
    # seeded for reproducible test data, not for secrets
    ctx = Context(options=options, rng=random.Random(options.seed), progress=progress)  # nosec B311
    started = time.monotonic()
    with transaction.atomic():
        stages = stages or all_stages()
        for i, stage in enumerate(stages, 1):
            t0 = time.monotonic()
            n = stage.run(ctx)
            progress(
                f"[{i}/{len(stages)}] {stage.name}: {n:,} rows in {time.monotonic() - t0:.1f}s"
            )
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                for stmt in connection.ops.sequence_reset_sql(no_style(), list(ctx.touched)):
                    cursor.execute(stmt)
        shared_cache.forget_public()  # bulk writes send no signals: the mesh map, home tiles
    if connection.vendor == "postgresql":
        t0 = time.monotonic()
        with connection.cursor() as cursor:
            if not connection.in_atomic_block:  # VACUUM cannot run in a transaction (tests)
                # The search stage rewrites every product row (its vectors): without this the
                # table holds each row twice and a search reads twice the pages (a matched
                # search ~2x slower at 10,000 products), until something compacts it.
                cursor.execute("VACUUM FULL products_dataproduct")
                # VACUUM FULL leaves the visibility map empty: a plain VACUUM marks the pages
                # all-visible, so the lists' covering index is read without the rows, as
                # autovacuum would arrange on a live portal.
                cursor.execute("VACUUM products_dataproduct")
                # and the quality states, whose covering index the facet pass reads alone
                cursor.execute("VACUUM governance_productquality")
            cursor.execute("ANALYZE")
        progress(f"vacuum and analyze: {time.monotonic() - t0:.1f}s")
    ctx.counts["seconds"] = round(time.monotonic() - started, 1)
    return ctx
