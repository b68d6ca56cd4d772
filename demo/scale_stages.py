"""Governance and quality for the generated mesh (`seed_scale`), registered in `apps.py`.

Stages, after the core mesh and its lineage:

- glossary: terms (global and per domain), linked to the fields named after them;
- quality: a data source per domain, checks on table and view ports, and their run history
  (1,000,000 runs at 10,000 products), each check's `last_status`/`next_run_at` taken from
  its newest run;
- policies: active policies of several rule types (plus a proposed and a retired one) and an
  evaluation history whose last state is what the rules say now, so the next scheduled
  evaluation finds nothing to change;
- trust: `ProductQuality` rows through `quality_services.trust_of`, as `product_quality_refresh`
  (checks, freshness, documentation, compliance), so lists, facets and trust sorts read the same
  numbers a refresh would write.

Histories end at the time of generation (`ctx.clock`): schedules become due and the rules'
"last N days" windows see them. Everything else is drawn from per-stage seeded generators.
"""

import json
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet

from demo import scale
from governance.models import (
    Compliance,
    ComplianceChange,
    DataSource,
    EvaluationRun,
    GlossaryTerm,
    Policy,
    PolicyRunSummary,
    ProductQuality,
    QualityCheck,
    QualityRun,
)
from governance.policies import rules
from products.models import DataProduct, OutputPort, SchemaField

SCALE_PREFIX = "scale-"

# slug, name, definition, synonyms, field names linked to it
TERMS = [
    (
        "customer",
        "Customer",
        "A person or company with an account.",
        "client, buyer",
        ["customer_id"],
    ),
    ("order", "Order", "A confirmed purchase by a **customer**.", "purchase", ["order_id"]),
    ("account", "Account", "A billing relationship with a customer.", "", ["account_id"]),
    (
        "product-item",
        "Product item",
        "A sellable item of the catalogue.",
        "article, sku",
        ["product_id", "sku"],
    ),
    (
        "amount",
        "Amount",
        "A money value in the row's `currency`.",
        "value",
        ["amount", "total_amount"],
    ),
    ("currency", "Currency", "ISO 4217 code of a money value.", "", ["currency"]),
    ("country", "Country", "ISO 3166-1 alpha-2 code.", "nation", ["country_code"]),
    (
        "email-address",
        "E-mail address",
        "A person's e-mail address: personal data.",
        "mail",
        ["email"],
    ),
    ("event-time", "Event time", "When something happened, in UTC.", "timestamp", ["event_time"]),
    (
        "sales-channel",
        "Sales channel",
        "Where a sale was made: web, app, store.",
        "channel",
        ["channel"],
    ),
    ("campaign", "Campaign", "A marketing campaign.", "", ["campaign_id"]),
    ("supplier", "Supplier", "A company we buy from.", "vendor", ["supplier_id"]),
]
ACCEPTED = {
    "currency": ["EUR", "USD", "GBP", "SEK"],
    "status": ["open", "closed", "cancelled"],
    "channel": ["web", "app", "store"],
}
TIMESTAMPS = ["updated_at", "ingested_at", "event_time", "created_at"]
NUMBERS = ["amount", "quantity", "total_amount", "unit_price", "score"]
INTERVALS = [60, 360, 1440, 1440]  # minutes


# -- glossary ----------------------------------------------------------------------------------


def stage_glossary(ctx: scale.Context) -> int:
    rng = ctx.stage_rng("glossary")
    taken = set(GlossaryTerm.objects.values_list("slug", flat=True))
    ids = iter(ctx.next_ids(GlossaryTerm, len(TERMS) + len(ctx.domains)))
    rows: list[tuple] = []
    links: list[tuple[int, list[str]]] = []
    for slug, name, definition, synonyms, fields in TERMS:
        pk = next(ids)
        rows.append((pk, scale._unique(SCALE_PREFIX + slug, taken), name, definition, synonyms))
        links.append((pk, fields))
    for d in ctx.domains:  # each domain keeps a term of its own, unlinked
        name = f"{d['name']} {rng.choice(scale.ENTITIES)}"
        rows.append(
            (
                next(ids),
                scale._unique(SCALE_PREFIX + scale.slugify(name), taken),
                name,
                f"How **{d['name']}** counts {name.split()[-1]}.",
                "",
                d["id"],
            )
        )
    status = GlossaryTerm.Status.APPROVED
    n = ctx.insert(
        GlossaryTerm,
        [
            "id",
            "slug",
            "name",
            "definition",
            "synonyms",
            "domain_id",
            "status",
            "created_at",
            "updated_at",
        ],
        [(*r[:5], r[5] if len(r) > 5 else None, status, ctx.at(300), ctx.at(30)) for r in rows],
    )
    if not ctx.ports:
        return n
    lo, hi = ctx.ports[0][0], ctx.ports[-1][0]
    pairs = [(name, pk) for pk, names in links for name in names]
    if connection.vendor == "postgresql":  # one pass over the fields, not one per term
        values = ", ".join(["(%s, %s)"] * len(pairs))
        with connection.cursor() as cur:
            # Only "(%s, %s)" placeholders are formatted in; the values are bound.
            query = f"UPDATE products_schemafield f SET glossary_term_id = v.term FROM (VALUES {values}) AS v(name, term) WHERE f.name = v.name AND f.port_id BETWEEN %s AND %s"  # noqa: S608  # nosec B608
            cur.execute(
                query,
                [x for pair in pairs for x in pair] + [lo, hi],
            )
            return n + cur.rowcount
    for name, pk in pairs:
        n += SchemaField.objects.filter(port_id__gte=lo, port_id__lte=hi, name=name).update(
            glossary_term_id=pk
        )
    return n


def reset_glossary(products: QuerySet) -> None:
    SchemaField.objects.filter(
        port__product__in=products, glossary_term__slug__startswith=SCALE_PREFIX
    ).update(glossary_term=None)
    GlossaryTerm.objects.filter(slug__startswith=SCALE_PREFIX).delete()


# -- quality -----------------------------------------------------------------------------------


def _check_templates(fields: list[str], slo: int | None) -> list[tuple[str, str, list, dict]]:
    """(name, kind, columns, params) a team would plausibly write for a port with these fields."""
    out: list[tuple[str, str, list[str], dict[str, Any]]] = [
        ("Row count", "row_count", [], {"min": 1000.0, "max": None}),
        ("Unique id", "duplicates", ["id"], {"max": 0.0, "unit": "count"}),
        ("Schema conforms", "schema", [], {"allow_extra": False}),
    ]
    for f in fields[1:4]:
        out.append((f"{f} present", "missing", [f], {"max": 1.0, "unit": "percent"}))
    for f in fields:
        if f in ACCEPTED:
            out.append(
                (
                    f"{f} accepted",
                    "accepted_values",
                    [f],
                    {"max": 0.0, "unit": "count", "values": ACCEPTED[f]},
                )
            )
        if f in NUMBERS:
            out.append(
                (
                    f"{f} not negative",
                    "range",
                    [f],
                    {"min": 0.0, "max": None, "unit": "count", "max_failing": 0.0},
                )
            )
        if f == "email":
            out.append(
                (
                    "email pattern",
                    "pattern",
                    [f],
                    {"max": 0.0, "unit": "count", "pattern": "^[^@]+@[^@]+$"},
                )
            )
    stamp = next((f for f in TIMESTAMPS if f in fields), None)
    if stamp:
        out.append((f"{stamp} fresh", "freshness", [stamp], {"hours": float(slo or 24)}))
    return out


def _observation(rng, kind: str, params: dict, status: str) -> tuple[float | None, str, str]:
    """observed value, threshold text and message of one run."""
    if status == "error":
        return None, "", "Could not connect to the data source: connection timed out."
    ok = status == "passed"
    if kind == "row_count":
        n = float(rng.randint(1000, 5_000_000) if ok else rng.randint(0, 999))
        return n, "≥ 1000 rows", f"{n:,.0f} rows"
    if kind == "freshness":
        hours = params["hours"]
        h = round(rng.uniform(0.1, hours) if ok else rng.uniform(hours * 1.01, hours * 4), 2)
        return h, f"≤ {hours:g} h old", f"Newest row is {h:g} h old"
    if kind == "schema":
        return (0.0 if ok else 1.0), "no difference", "" if ok else "1 column missing: updated_at"
    if params.get("unit") == "percent":
        v = round(rng.uniform(0, params["max"]) if ok else rng.uniform(params["max"] + 0.1, 20), 2)
        return v, f"≤ {params['max']:g}%", f"{v:g}% of rows"
    v = 0.0 if ok else float(rng.randint(1, 500))
    return v, "≤ 0 rows", f"{v:g} rows"


def stage_quality(ctx: scale.Context) -> int:
    rng = ctx.stage_rng("quality")
    o = ctx.options
    # One warehouse connection per domain; the checked (table and view) ports read through it.
    taken = set(DataSource.objects.values_list("slug", flat=True))
    source_ids = ctx.next_ids(DataSource, len(ctx.domains))
    n = ctx.insert(
        DataSource,
        [
            "id",
            "slug",
            "name",
            "kind",
            "host",
            "port",
            "database",
            "user",
            "password_env",
            "secret_file",
            "options",
            "default_schema",
            "sslmode",
            "max_timeout_seconds",
            "description",
            "created_at",
        ],  # fmt: skip
        [
            (
                pk,
                scale._unique(f"{SCALE_PREFIX}{d['slug']}"[:80], taken),
                f"{d['name']} warehouse",
                DataSource.Kind.POSTGRESQL,
                "warehouse.internal",
                5432,
                d["slug"].replace("-", "_"),
                "mesh_checks",
                "MESH_WAREHOUSE_PASSWORD",
                "",
                {},
                d["slug"].replace("-", "_"),
                "prefer",
                60,
                "Generated by seed_scale (no such server: runs end in errors).",
                ctx.at(400),
            )
            for pk, d in zip(source_ids, ctx.domains, strict=True)
        ],
    )
    source_of = {d["id"]: pk for pk, d in zip(source_ids, ctx.domains, strict=True)}
    checkable = defaultdict(list)
    for port_id, product_id in ctx.ports:
        if ctx.port_kinds.get(port_id) in ("table", "view"):
            checkable[product_id].append(port_id)
    if ctx.ports:
        lo, hi = ctx.ports[0][0], ctx.ports[-1][0]
        for d in ctx.domains:
            OutputPort.objects.filter(
                pk__gte=lo, pk__lte=hi, product__domain_id=d["id"], kind__in=["table", "view"]
            ).update(data_source_id=source_of[d["id"]])

    # Three quarters of the products have checks; the rest have none (trust 0 on checks).
    covered = [p for p in ctx.products if checkable[p["id"]] and rng.random() < 0.75]
    total = round(o.products * o.checks_per_product)
    wanted = dict.fromkeys((p["id"] for p in covered), 1)
    for p in rng.choices(covered, k=max(0, total - len(covered))) if covered else []:
        wanted[p["id"]] += 1
    checks = []  # (pk, port, name, kind, columns, params, interval, profile)
    check_ids = iter(ctx.next_ids(QualityCheck, sum(wanted.values())))
    for p in covered:
        options = []
        for port in checkable[p["id"]]:
            for t in _check_templates(
                ctx.fields_by_port.get(port, ["id"]), p["freshness_slo_hours"]
            ):
                options.append((port, *t))
        for port, name, kind, columns, params in rng.sample(
            options, min(wanted[p["id"]], len(options))
        ):
            r = rng.random()
            profile = "healthy" if r < 0.8 else "flaky" if r < 0.92 else "broken"
            checks.append(
                (next(check_ids), port, name, kind, columns, params, rng.choice(INTERVALS), profile)
            )
    runs_each = [o.run_count // len(checks)] * len(checks) if checks else []
    for i in rng.sample(range(len(checks)), o.run_count - sum(runs_each)) if checks else []:
        runs_each[i] += 1

    latest = {}  # check pk -> (status, finished_at, next_run_at)
    newest_data = {}  # check pk -> started_at - observed hours of its newest result
    run_ids = iter(ctx.next_ids(QualityRun, o.run_count))

    def run_rows():
        for (pk, _, _, kind, _, params, interval, profile), count in zip(
            checks, runs_each, strict=True
        ):
            last = ctx.clock - timedelta(minutes=rng.uniform(0, interval))
            broken_for = rng.randint(1, 5) if profile == "broken" else 0
            p_fail = {"healthy": 0.02, "flaky": 0.25, "broken": 0.02}[profile]
            for i in range(count):  # newest first
                finished = last - timedelta(minutes=interval * i)
                r = rng.random()
                status = (
                    "error" if r < 0.01 else "failed" if i < broken_for or r < p_fail else "passed"
                )
                observed, threshold, message = _observation(rng, kind, params, status)
                ms = rng.randint(20, 3000)
                started = finished - timedelta(milliseconds=ms)
                queued = started - timedelta(seconds=rng.uniform(0.1, 5))
                if i == 0:
                    latest[pk] = (status, finished, finished + timedelta(minutes=interval))
                if kind == "freshness" and pk not in newest_data and observed is not None:
                    newest_data[pk] = started - timedelta(hours=observed)
                yield (
                    next(run_ids), pk, status, "schedule", observed, threshold, message, "[]",
                    ms, queued, started, finished, queued + timedelta(minutes=15),
                )  # fmt: skip

    # Runs first (their newest results decide each check's state), then the checks; the
    # foreign key is checked at commit (deferred), so the order is free.
    n += ctx.insert(
        QualityRun,
        [
            "id",
            "quality_check_id",
            "status",
            "trigger",
            "observed",
            "threshold",
            "message",
            "sample",
            "duration_ms",
            "queued_at",
            "started_at",
            "finished_at",
            "deadline",
        ],  # fmt: skip
        run_rows(),
        total=o.run_count,
    )
    n += ctx.insert(
        QualityCheck,
        [
            "id",
            "port_id",
            "name",
            "kind",
            "columns",
            "params",
            "enabled",
            "interval_minutes",
            "cron",
            "timeout_seconds",
            "next_run_at",
            "last_status",
            "last_run_at",
            "created_by_id",
            "created_at",
        ],  # fmt: skip
        (
            (
                pk,
                port,
                name,
                kind,
                json.dumps(columns),
                json.dumps(params),
                True,
                interval,
                "",
                60,
                latest.get(pk, (None, None, ctx.clock))[2],
                latest.get(pk, ("",))[0],
                latest.get(pk, (None, None))[1],
                None,
                ctx.at(200),
            )  # fmt: skip
            for pk, port, name, kind, columns, params, interval, _ in checks
        ),
    )
    # What the trust stage needs: per product, its checks' latest statuses and freshness.
    port_product = dict(ctx.ports)
    ctx.extra["checks_by_product"] = by_product = defaultdict(list)
    newest: dict[int, datetime] = {}
    ctx.extra["newest_data"] = newest
    for pk, port, *_ in checks:
        product = port_product[port]
        by_product[product].append(latest.get(pk, ("",))[0])
        if pk in newest_data:
            at = newest_data[pk]
            newest[product] = min(newest.get(product, at), at)
    return n


def reset_quality(products: QuerySet) -> None:
    checks = QualityCheck.objects.filter(port__product__in=products)
    QualityRun.objects.filter(quality_check__in=checks)._raw_delete(QualityRun.objects.db)
    checks._raw_delete(QualityCheck.objects.db)
    ProductQuality.objects.filter(product__in=products)._raw_delete(ProductQuality.objects.db)
    OutputPort.objects.filter(product__in=products).update(data_source=None)
    DataSource.objects.filter(slug__startswith=SCALE_PREFIX, ports__isnull=True).delete()


# -- policies ----------------------------------------------------------------------------------

# key, title, rule type, parameters, severity, status; "{domain}": the first domain's policy.
POLICIES = [
    ("snake-case-fields", "Field names are snake_case", "naming", {}, "advisory", "active"),
    ("pii-classified", "Personal data is confidential", "classification", {}, "blocking", "active"),
    ("documented", "Products are documented", "documentation", {}, "advisory", "active"),
    (
        "fresh-daily",
        "Data is at most a day old",
        "freshness",
        {"max_hours": 24},
        "advisory",
        "active",
    ),
    (
        "deprecation-plan",
        "Deprecations name a sunset and a replacement",
        "lifecycle",
        {},
        "blocking",
        "active",
    ),
    (
        "quality-covered",
        "Tables carry quality checks",
        "quality_coverage",
        {"min_checks": 1},
        "advisory",
        "active",
    ),
    (
        "{domain}-glossary",
        "Fields use the glossary",
        "glossary",
        {"min_linked_pct": 15},
        "advisory",
        "active",
    ),
    ("primary-keys", "Tables declare a primary key", "schema", {}, "advisory", "proposed"),
    (
        "two-owners",
        "Teams have two members",
        "ownership",
        {"min_members": 2},
        "advisory",
        "retired",
    ),
]
HISTORY_DAYS = [28, 21, 14, 7, 3]  # earlier evaluation runs; the last one is an hour ago
FIXED_SHARE, REGRESSED_SHARE = 0.15, 0.1


def stage_policies(ctx: scale.Context) -> int:
    rng = ctx.stage_rng("policies")
    council = ctx.teams[0]["owners"][0] if ctx.teams and ctx.teams[0]["owners"] else None
    first_domain = ctx.domains[0] if ctx.domains else None
    taken = set(Policy.objects.values_list("key", flat=True))
    rows, active = [], []
    for pk, (key, title, rule_type, params, severity, status) in zip(
        ctx.next_ids(Policy, len(POLICIES)), POLICIES, strict=True
    ):
        domain = first_domain["id"] if "{domain}" in key and first_domain else None
        key = key.format(domain=first_domain["slug"] if first_domain else "any")
        key = scale._unique(f"{SCALE_PREFIX}{key}"[:80], taken)
        rows.append(
            (
                pk,
                key,
                title,
                f"Adopted by the council: {title.lower()}.",
                rule_type,
                json.dumps(params),
                severity,
                domain,
                status,
                council,
                ctx.clock - timedelta(days=40) if status != "proposed" else None,
                ctx.clock - timedelta(days=2) if status == "retired" else None,
                ctx.clock - timedelta(days=60),
                ctx.clock - timedelta(days=40),
            )  # fmt: skip
        )
        if status == "active":
            active.append((pk, rule_type, params, domain))
    n = ctx.insert(
        Policy,
        [
            "id",
            "key",
            "title",
            "rationale",
            "rule_type",
            "parameters",
            "severity",
            "domain_id",
            "status",
            "proposed_by_id",
            "activated_at",
            "retired_at",
            "created_at",
            "updated_at",
        ],  # fmt: skip
        rows,
    )

    # What the rules say now, over every live product (as evaluate_policies sees the mesh).
    live = DataProduct.objects.exclude(status=DataProduct.Status.RETIRED)
    scope = dict(live.values_list("pk", "domain_id"))
    truth = {}
    for pk, rule_type, params, domain in active:
        rule = rules.get(rule_type)
        products = live.filter(domain_id=domain) if domain else live
        failures = rule.evaluate(products, rule.clean_params(params))
        truth[pk] = {
            prod: ("fail", "; ".join(failures[prod])) if failures.get(prod) else ("pass", "")
            for prod, d in scope.items()
            if not domain or d == domain
        }

    # An evaluation history leading to it: some failures were fixed along the way, some
    # products regressed; each run writes only what changed (run 0: everything).
    times = [ctx.clock - timedelta(days=d) for d in HISTORY_DAYS] + [ctx.clock - timedelta(hours=1)]
    run_ids = list(ctx.next_ids(EvaluationRun, len(times)))
    results, summaries, statuses = [], [], []
    changed = [0] * len(times)
    for pk, outcomes in truth.items():
        state = {}
        changes = defaultdict(list)  # run index -> [(product, outcome, reason)]
        for prod, (outcome, reason) in outcomes.items():
            r = rng.random()
            if outcome == "pass" and r < FIXED_SHARE:
                at = rng.randrange(1, len(times))
                state[prod] = ("fail", "Failed here before its owners fixed it.")
                changes[at].append((prod, outcome, reason))
            elif outcome == "fail" and r < REGRESSED_SHARE:
                at = rng.randrange(1, len(times))
                state[prod] = ("pass", "")
                changes[at].append((prod, outcome, reason))
            else:
                state[prod] = (outcome, reason)
        changes[0] = [(prod, *v) for prod, v in state.items()]
        last_change = {}
        for i, (run, when) in enumerate(zip(run_ids, times, strict=True)):
            for prod, outcome, reason in changes[i]:
                state[prod] = (outcome, reason)
                last_change[prod] = (run, when)
                results.append((run, pk, prod, outcome, reason, when))
            changed[i] += len(changes[i])
            passed = sum(1 for v in state.values() if v[0] == "pass")
            summaries.append((run, pk, passed, len(state) - passed))
        for prod, (outcome, reason) in state.items():
            run, when = last_change[prod]
            statuses.append((pk, prod, outcome, reason, when, run))
    n += ctx.insert(
        EvaluationRun,
        ["id", "trigger", "started_at", "finished_at", "products", "policies", "changed"],
        [
            (run, "schedule", at, at + timedelta(seconds=20), len(scope), len(active), changed[i])
            for i, (run, at) in enumerate(zip(run_ids, times, strict=True))
        ],
    )
    n += ctx.insert(
        ComplianceChange,
        ["id", "run_id", "policy_id", "product_id", "outcome", "reason", "created_at"],
        (
            (pk, *r)
            for pk, r in zip(ctx.next_ids(ComplianceChange, len(results)), results, strict=True)
        ),
        total=len(results),
    )
    n += ctx.insert(
        PolicyRunSummary,
        ["id", "run_id", "policy_id", "passed", "failed"],
        [
            (pk, *s)
            for pk, s in zip(ctx.next_ids(PolicyRunSummary, len(summaries)), summaries, strict=True)
        ],
    )
    n += ctx.insert(
        Compliance,
        ["id", "policy_id", "product_id", "outcome", "reason", "changed_at", "run_id"],
        ((pk, *s) for pk, s in zip(ctx.next_ids(Compliance, len(statuses)), statuses, strict=True)),
        total=len(statuses),
    )
    # Compliance per product, for the trust stage: (passed, judged) over the active policies.
    compliance: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for _, prod, outcome, *_ in statuses:
        compliance[prod][0] += outcome == "pass"
        compliance[prod][1] += 1
    ctx.extra["compliance"] = compliance
    return n


def reset_policies(products: QuerySet) -> None:
    Policy.objects.filter(key__startswith=SCALE_PREFIX).delete()
    EvaluationRun.objects.filter(
        Q(compliance_changes__isnull=True) & Q(summaries__isnull=True), trigger="schedule"
    ).delete()


# -- trust -------------------------------------------------------------------------------------


def stage_trust(ctx: scale.Context) -> int:
    """ProductQuality through the one formula (quality_services.trust_of), from the values
    the earlier stages wrote, without a query per product."""
    from governance.quality.services import checks_state, trust_of

    checks = ctx.extra.get("checks_by_product", {})
    newest = ctx.extra.get("newest_data", {})
    compliance = ctx.extra.get("compliance", {})

    ids = ctx.next_ids(ProductQuality, len(ctx.products))  # not inside rows(): COPY is running

    def rows():
        for pk, p in zip(ids, ctx.products, strict=True):
            statuses = checks.get(p["id"], [])
            slo, at = p["freshness_slo_hours"], newest.get(p["id"])
            breached = bool(
                slo is not None and at is not None and ctx.clock - at > timedelta(hours=slo)
            )
            passed, judged = compliance.get(p["id"], [0, 0])
            score, breakdown = trust_of(
                {
                    "checks": statuses.count("passed") / len(statuses) if statuses else 0.0,
                    "freshness": 0.5 if slo is None or at is None else 0.0 if breached else 1.0,
                    # Generated products have a summary, a description and every field described.
                    "documentation": 1.0,
                    "compliance": passed / judged if judged else None,
                }
            )
            state = checks_state(statuses, bool(statuses))
            yield (pk, p["id"], score, json.dumps(breakdown), at, breached, state, ctx.clock)

    return ctx.insert(
        ProductQuality,
        [
            "id",
            "product_id",
            "trust_score",
            "components",
            "newest_data_at",
            "freshness_breached",
            "state",
            "updated_at",
        ],  # fmt: skip
        rows(),
        total=len(ctx.products),
    )
