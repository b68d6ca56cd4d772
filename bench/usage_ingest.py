"""Usage ingest benchmark: a large synthetic query log through the ingest service.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mesh_x .venv/bin/python bench/usage_ingest.py [EVENTS]

Runs in a throwaway test database (test_<name>, created and dropped here; in memory on
SQLite). 1,000 products with one table port each on one data source; 300 principals; a pool of
5,000 distinct statements (reads of one to three product tables, one in ten an INSERT … SELECT
into another product's table, one in a hundred unparseable), repeated as real logs repeat them;
EVENTS (default 1,000,000) events over 30 days. It times, separately:

1. `import_usage`'s reader on the JSON-lines file of the first 200,000 events (lines per second);
2. `usage_ingest` on all EVENTS (parse, map to ports, raw events by COPY on PostgreSQL, daily
   totals, observed edges) — the issue's target is 1,000,000 events in ≤ 120 s;
3. the Usage tab's reads afterwards (the pages read only daily totals).

Writes bench/results/usage_ingest.md.
"""

import json
import os
import platform
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meshportal.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

PRODUCTS, PRINCIPALS, STATEMENTS, FILE_EVENTS = 1_000, 300, 5_000, 200_000
TARGET_SECONDS = 120
RESULTS = Path(__file__).resolve().parent / "results" / "usage_ingest.md"


def build():
    from domains import services as domain_services
    from governance.models import DataSource
    from meshportal.audit import audit_context
    from products.models import DataProduct, OutputPort

    with audit_context(door="command"):
        team = domain_services.team_create(slug="bench", name="Bench")
        domain = domain_services.domain_create(slug="d", name="Domain", owner_team=team)
    source = DataSource.objects.create(slug="wh", name="WH", kind="postgresql", database="wh")
    products = DataProduct.objects.bulk_create(
        [
            DataProduct(
                domain=domain, slug=f"p{i}", name=f"P {i}", owner_team=team, status="published"
            )
            for i in range(PRODUCTS)
        ],
        batch_size=2000,
    )
    OutputPort.objects.bulk_create(
        [
            OutputPort(
                product=p, slug="main", name="Main", location=f"s{i % 20}.t{i}", data_source=source
            )
            for i, p in enumerate(products)
        ],
        batch_size=2000,
    )
    return source, products


def statements(rnd: random.Random) -> list[str]:
    out = []
    for n in range(STATEMENTS):
        tables = [f"s{(t := rnd.randrange(PRODUCTS)) % 20}.t{t}" for _ in range(rnd.randint(1, 3))]
        select = f"SELECT a.id, count(*) AS n{n} FROM {tables[0]} a"
        for j, t in enumerate(tables[1:]):
            select += f" JOIN {t} b{j} ON b{j}.id = a.id"
        select += f" WHERE a.created_at > now() - interval '{n % 30 + 1} days' GROUP BY a.id"
        if n % 100 == 99:
            out.append(f"SELEC broken {n} FROM")
        elif n % 10 == 0:
            t = rnd.randrange(PRODUCTS)
            out.append(f"INSERT INTO s{t % 20}.t{t} {select}")
        else:
            out.append(select)
    return out


def events(total: int):
    """(principal, at, statement, rows), generated lazily: the log does not fit in a list."""
    from usage.formats import Record

    rnd = random.Random(19)
    pool = statements(rnd)
    principals = [f"svc_{i}" for i in range(PRINCIPALS)]
    start = datetime.now(UTC) - timedelta(days=30)
    step = 30 * 86400 / total
    for i in range(total):
        # Each principal runs its own few hundred statements, as BI tools and pipelines do.
        p = rnd.randrange(PRINCIPALS)
        sql = pool[(p * 17 + rnd.randrange(40)) % STATEMENTS]
        yield Record(
            principals[p], start + timedelta(seconds=i * step), sql, rows=rnd.randrange(1000)
        )


def main() -> None:
    from django.db.models import Sum

    from usage import formats, selectors, services
    from usage.models import ObservedEdge, ProductUsage, QueryEvent

    total = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    setup_test_environment()
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        source, products = build()
        lines = [
            json.dumps(
                {
                    "user": r.principal,
                    "query": r.statement,
                    "timestamp": r.occurred_at.isoformat(),
                    "rows": r.rows,
                }
            )
            for r in events(min(FILE_EVENTS, total))
        ]
        text = "\n".join(lines)
        t = time.perf_counter()
        records, errors = formats.read_file(text, "json")
        read_s = time.perf_counter() - t
        assert not errors and len(records) == len(lines)
        del text, lines, records

        t = time.perf_counter()
        if os.environ.get("BENCH_PROFILE"):
            import cProfile
            import pstats

            with cProfile.Profile() as prof:
                run = services.usage_ingest(source=source, records=events(total), door="command")
            pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
        else:
            run = services.usage_ingest(source=source, records=events(total), door="command")
        ingest_s = time.perf_counter() - t

        print(f"ingest: {run.events:,} events in {ingest_s:.1f} s")
        from django.contrib.auth import get_user_model

        reader = get_user_model().objects.create_user("reader")
        product = products[0]
        t = time.perf_counter()
        for _ in range(20):
            selectors.product_usage(user=reader, product=product)
        tab_ms = (time.perf_counter() - t) / 20 * 1000
        usage_rows = ProductUsage.objects.count()
        counted = ProductUsage.objects.filter(kind="read").aggregate(n=Sum("queries"))["n"]
        rows = [
            f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}, {connection.vendor} (load average "
            f"{os.getloadavg()[0]:.2f} at the end: other processes share the CPUs).",
            "",
            "| what | figure |",
            "|---|---|",
            f"| events ingested (`usage_ingest`, one batch) | {run.events:,} |",
            f"| time | {ingest_s:.1f} s (target ≤ {TARGET_SECONDS} s: {'met' if ingest_s <= TARGET_SECONDS else 'missed'}) |",
            f"| events per second | {run.events / ingest_s:,.0f} |",
            f"| matched to ports / unparsed | {run.matched:,} / {run.unparsed:,} |",
            f"| raw events stored | {QueryEvent.objects.count():,} |",
            f"| daily usage rows / observed edges | {usage_rows:,} / {ObservedEdge.objects.count():,} |",
            f"| read queries counted in the daily rows | {counted:,} |",
            f"| JSON-lines reader (`import_usage --format json`), {min(FILE_EVENTS, total):,} lines | {read_s:.1f} s, {min(FILE_EVENTS, total) / read_s:,.0f} lines/s |",
            f"| Usage tab reads afterwards (`product_usage`, one product) | {tab_ms:.1f} ms |",
        ]  # fmt: skip
        print("\n".join(rows))
        RESULTS.write_text("# Usage ingest (bench/usage_ingest.py)\n\n" + "\n".join(rows) + "\n")
    finally:
        connection.creation.destroy_test_db(name, verbosity=0)


if __name__ == "__main__":
    main()
