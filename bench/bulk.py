"""Bulk paths benchmark (issue 17): the quality scheduler's dispatch and sweep at scale.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mesh_bulk \\
    CELERY_BROKER_URL=redis://127.0.0.1:6379/15 python -m bench.bulk [--products 10000]

Runs in a throwaway test database (test_<name>, created and dropped here). Builds PRODUCTS
products (one in ten a draft) of 200 teams of 5 people, each with a table and a view port and
one check per port (20,000 checks at 10,000 products), some watchers and team webhooks, then
times, counting the portal-database statements:

1. **dispatch**: every check due at once through `dispatch_due` (runs inserted, schedules
   moved on, tasks published to the broker after commit) — target ≤ 30 statements;
2. **sweep**: half of those runs (10,000 at 10,000 products) stuck past their deadline through
   `sweep_stuck` (runs and checks, one alert per check, incidents, trust once per product) —
   target ≤ 10 statements per 1,000 runs, and one alert per check, not per run;
3. **quality full path**: one table run of ten checks over `bench.quality`'s 1,000,000-row
   table through `execute_runs` against the engine alone — target ≤ 1.15×.

The tasks it publishes are purged from the broker's `quality` and `notifications` queues
afterwards; e-mails go to Django's in-memory outbox. Writes bench/results/bulk.json and
bulk.md and the table between `<!-- bulk:… -->` in docs/benchmarks.md (`--no-docs`: not).
"""

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meshportal.settings")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

RESULTS = ROOT / "bench" / "results"
TEAMS, MEMBERS = 200, 5
DISPATCH_MAX_QUERIES = 30
SWEEP_MAX_PER_1000 = 10


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def build(products: int) -> None:
    """The mesh the scheduler works on, in bulk (a few seconds at 10,000 products)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group, Permission

    from domains.models import Domain, Membership, Team
    from governance.models import DataSource, QualityCheck, Webhook
    from products.models import (
        DataProduct,
        DataProductGroupObjectPermission,
        OutputPort,
        SchemaField,
        Watch,
    )

    User = get_user_model()
    groups = Group.objects.bulk_create(Group(name=f"team:bench-{t}") for t in range(TEAMS))
    teams = Team.objects.bulk_create(
        Team(slug=f"bench-{t}", name=f"Bench team {t}", group=g) for t, g in enumerate(groups)
    )
    users = User.objects.bulk_create(
        User(username=f"u{i}", email=f"u{i}@bench.example", password="!")  # noqa: S106
        for i in range(TEAMS * MEMBERS)
    )
    Membership.objects.bulk_create(
        Membership(team=teams[i // MEMBERS], user=u, role="owner" if i % MEMBERS == 0 else "member")
        for i, u in enumerate(users)
    )
    User.groups.through.objects.bulk_create(
        User.groups.through(user_id=u.pk, group_id=groups[i // MEMBERS].pk)
        for i, u in enumerate(users)
    )
    domains = Domain.objects.bulk_create(
        Domain(slug=f"d{d}", name=f"Domain {d}", owner_team=teams[d * 10]) for d in range(20)
    )
    items = DataProduct.objects.bulk_create(
        (
            DataProduct(
                domain=domains[i % 20],
                owner_team=teams[i % TEAMS],
                slug=f"p{i}",
                name=f"Product {i}",
                summary="A generated product",
                status="draft" if i % 10 == 0 else "published",
                freshness_slo_hours=24 if i % 3 == 0 else None,
            )
            for i in range(products)
        ),
        batch_size=2000,
    )
    view = Permission.objects.get(codename="view_dataproduct")
    DataProductGroupObjectPermission.objects.bulk_create(
        (
            DataProductGroupObjectPermission(
                content_object=p, group=groups[i % TEAMS], permission=view
            )
            for i, p in enumerate(items)
            if p.status == "draft"
        ),
        batch_size=2000,
    )
    source = DataSource.objects.create(slug="wh", name="WH", kind="postgresql", database="wh")
    ports = OutputPort.objects.bulk_create(
        (
            OutputPort(
                product=p,
                slug=kind,
                name=kind.title(),
                kind=kind,
                location=f"s{i % 50}.{kind}_{i}",
                data_source=source,
            )
            for i, p in enumerate(items)
            for kind in ("table", "view")
        ),
        batch_size=2000,
    )
    SchemaField.objects.bulk_create(
        (
            SchemaField(port=port, name=f"f{k}", ordinal=k, description="described" if k else "")
            for port in ports
            for k in range(3)
        ),
        batch_size=5000,
    )
    due = datetime.now(UTC) - timedelta(minutes=1)
    QualityCheck.objects.bulk_create(
        (
            QualityCheck(
                port=port,
                name="rows" if port.kind == "table" else "names present",
                kind="row_count" if port.kind == "table" else "missing",
                columns=[] if port.kind == "table" else ["f1"],
                params={"min": 1} if port.kind == "table" else {"max": 0},
                next_run_at=due,
                interval_minutes=60 if n % 4 else 1440,
            )
            for n, port in enumerate(ports)
        ),
        batch_size=5000,
    )
    Watch.objects.bulk_create(
        [
            Watch(user=users[(i * 7) % len(users)], product=items[(i * 31) % products])
            for i in range(300)
        ]
        + [Watch(user=users[(i * 11) % len(users)], domain=domains[i % 20]) for i in range(20)]
    )
    Webhook.objects.bulk_create(
        Webhook(team=teams[t], url=f"https://hooks.bench.example/{t}", secret="s")  # noqa: S106
        for t in range(0, TEAMS, 10)
    )


def timed(fn):
    """(result, seconds, portal-database statements) of fn()."""
    count = [0]

    def counter(execute, sql, params, many, context):
        count[0] += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(counter):
        t0 = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - t0
    return result, seconds, count[0]


def purge_broker() -> None:
    from meshportal.celery import app

    try:
        with app.connection_for_write() as conn:
            for name in ("quality", "notifications"):
                conn.default_channel.queue_purge(name)
    except Exception as e:  # noqa: BLE001 — a bench clean-up; report and go on
        log(f"could not purge the broker's queues: {e}")


def run(products: int) -> list[dict]:
    from django.core import mail
    from django.db.models import Count

    from governance.models import QualityCheck, QualityRun, WebhookDelivery
    from governance.quality import services
    from meshportal.models import Notification

    t0 = time.perf_counter()
    build(products)
    checks = QualityCheck.objects.count()
    log(f"built {products:,} products, {checks:,} checks in {time.perf_counter() - t0:.1f} s")
    results = []

    queued, seconds, queries = timed(services.dispatch_due)
    assert queued == checks, (queued, checks)
    results.append(
        {
            "name": f"dispatch {checks:,} due checks",
            "seconds": round(seconds, 2),
            "queries": queries,
            "target": f"≤ {DISPATCH_MAX_QUERIES} queries",
            "met": queries <= DISPATCH_MAX_QUERIES,
            "detail": f"{queued:,} runs queued",
        }
    )

    # Half the runs stuck: their worker never came (queued) or died (running).
    ids = list(QualityRun.objects.order_by("pk").values_list("pk", flat=True)[::2])
    past = datetime.now(UTC) - timedelta(minutes=1)
    QualityRun.objects.filter(pk__in=ids[::2]).update(deadline=past)
    QualityRun.objects.filter(pk__in=ids[1::2]).update(status="running", deadline=past)
    mail.outbox = []
    swept, seconds, queries = timed(services.sweep_stuck)
    assert swept == len(ids), (swept, len(ids))
    alerts = Notification.objects.filter(kind="quality.error")
    per_check = alerts.values("user", "title").annotate(n=Count("pk")).order_by("-n").first()
    per_1000 = queries / (swept / 1000)
    one_per_check = per_check is None or per_check["n"] == 1
    deliveries = WebhookDelivery.objects.filter(event="quality.check.error").count()
    results.append(
        {
            "name": f"sweep {swept:,} stuck runs",
            "seconds": round(seconds, 2),
            "queries": queries,
            "target": f"≤ {SWEEP_MAX_PER_1000} queries per 1,000 runs; one alert per check",
            "met": per_1000 <= SWEEP_MAX_PER_1000 and one_per_check,
            "detail": (
                f"{per_1000:.1f} queries per 1,000 runs; {alerts.count():,} in-app alerts "
                f"({'one' if one_per_check else 'MORE THAN ONE'} per check and recipient), "
                f"{len(mail.outbox):,} e-mails, {deliveries:,} webhook deliveries"
            ),
        }
    )
    results.append(quality_full_path())
    purge_broker()
    return results


FULL_PATH_MAX_RATIO = 1.15


def quality_full_path(repeat: int = 3) -> dict:
    """One table run of ten checks over the 1,000,000-row table of `bench.quality` (built in
    DATABASE_URL's database, kept between runs), through `execute_runs` (claim, one scan, runs
    and checks recorded, alerts, incidents, trust) against the engine alone on the same checks:
    target full path <= 1.15x the engine. Medians of `repeat` runs, interleaved."""
    from bench import quality as bq
    from governance.models import DataSource, QualityCheck, QualityRun
    from governance.quality import engine, services
    from products.models import OutputPort

    owner = bq.source_from_url(os.environ["DATABASE_URL"])  # the bench's own database
    bq.build(owner, 1, 1_000_000)  # kept between runs; sets the reader role's password
    reader = bq.reader_source(owner)
    source = DataSource.objects.create(
        slug="bench-quality",
        name="Bench quality table",
        kind="postgresql",
        host=reader.host,
        port=reader.port,
        database=reader.database,
        user=reader.user,
        password_env=reader.password_env,
        default_schema=bq.SCHEMA,
        max_timeout_seconds=3600,
    )
    port = OutputPort.objects.select_related("product").filter(product__status="published")[0]
    port.product.classification = "internal"  # failing values read, as for most products
    port.product.save(update_fields=["classification"])
    port.data_source, port.location = source, f"{bq.SCHEMA}.t000"
    port.save(update_fields=["data_source", "location"])
    port.fields.all().delete()
    specs = bq.specs_for_table(0, 10)
    checks = [
        QualityCheck.objects.create(
            port=port,
            name=f"bench {i} {spec.kind}",
            kind=spec.kind,
            columns=spec.columns,
            params=spec.params,
            timeout_seconds=3600,
        )
        for i, spec in enumerate(specs)
    ]
    alone, full, queries = [], [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        engine.run_table(source, port.location, specs, declared_fields=[], allow_samples=True)
        alone.append(time.perf_counter() - t0)
        deadline = datetime.now(UTC) + timedelta(hours=1)
        runs = [QualityRun.objects.create(quality_check=c, deadline=deadline).pk for c in checks]
        outcome, seconds, n = timed(lambda runs=runs: services.execute_runs(run_ids=runs))
        assert "error" not in outcome.values(), outcome
        full.append(seconds)
        queries.append(n)

    def median(xs):
        return sorted(xs)[len(xs) // 2]

    ratio = median(full) / median(alone)
    return {
        "name": "quality: one table run, full path",
        "seconds": round(median(full), 2),
        "queries": median(queries),
        "target": f"≤ {FULL_PATH_MAX_RATIO}× the engine alone",
        "met": ratio <= FULL_PATH_MAX_RATIO,
        "detail": (
            f"{ratio:.2f}× the engine alone ({median(alone):.2f} s; 10 checks over "
            f"1,000,000 rows, failing values on); {median(queries)} portal queries per table run"
        ),
    }


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        f"Measured {report['finished']} on {m['cpus']} CPUs, Python {m['python']}, "
        f"{m['database']} (load average {m['load_average'][0]} at the end: other processes "
        f"share the CPUs), commit {report['commit']}. {report['products']:,} products, "
        "statements counted on the portal database (`python -m bench.bulk`).",
        "",
        "| scenario | time | SQL queries | target | | detail |",
        "|---|--:|--:|---|---|---|",
    ]
    for r in report["results"]:
        lines.append(
            f"| {r['name']} | {r['seconds']} s | {r['queries']} | {r['target']} | "
            f"{'met' if r['met'] else 'not met'} | {r['detail']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.bulk", description=__doc__.split("\n")[0])
    p.add_argument("--products", type=int, default=10_000)
    p.add_argument("--no-docs", action="store_true", help="leave docs/benchmarks.md alone")
    p.add_argument("--output", default=str(RESULTS / "bulk"), help="path without extension")
    args = p.parse_args()
    setup_test_environment()
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        results = run(args.products)
        vendor = connection.vendor
        version = (
            connection.cursor().connection.info.server_version
            if vendor == "postgresql"
            else connection.Database.sqlite_version
        )
    finally:
        connection.creation.destroy_test_db(name, verbosity=0)
    from bench.__main__ import git_commit

    commit = git_commit()
    report = {
        "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
        "products": args.products,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "database": f"{vendor} {version}",
            "load_average": [round(x, 2) for x in os.getloadavg()],
        },
        "results": results,
    }
    for r in results:
        log(
            f"{r['name']:32} {r['seconds']:8.2f} s {r['queries']:6} queries  "
            f"target {r['target']}: {'met' if r['met'] else 'NOT MET'}  ({r['detail']})"
        )
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    table = markdown(report)
    out.with_suffix(".md").write_text(table)
    if not args.no_docs and out == RESULTS / "bulk":
        from bench.__main__ import update_benchmarks_doc

        update_benchmarks_doc(table, marker="bulk")
    print(table)


if __name__ == "__main__":
    main()
