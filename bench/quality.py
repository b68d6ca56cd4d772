"""Quality engine benchmark: N checks over M tables of R rows on PostgreSQL, run as the engine
runs them (one scan per table) and as one query per check.

    python -m bench.quality --tables 10 --rows 100000 --checks 100      # modest
    python -m bench.quality --tables 100 --rows 1000000 --checks 1000   # the issue's size

Connects to DATABASE_URL (a PostgreSQL URL), builds its tables in the schema `bench_quality`
(kept between runs of the same size unless --drop) and reads them over the engine's read-only
connection.
"""

import argparse
import os
import sys
import time
import urllib.parse
from types import SimpleNamespace

import psycopg

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from governance.quality import engine  # noqa: F401
from governance.quality.engine import CheckSpec  # noqa: E402

SCHEMA = "bench_quality"


def source_from_url(url: str) -> SimpleNamespace:
    u = urllib.parse.urlparse(url)
    if u.password:
        os.environ["BENCH_PG_PASSWORD"] = urllib.parse.unquote(u.password)
    return SimpleNamespace(
        kind="postgresql",
        host=u.hostname or "127.0.0.1",
        port=u.port or 5432,
        database=u.path.lstrip("/"),
        user=u.username or "postgres",
        password_env="BENCH_PG_PASSWORD" if u.password else "",
        sslmode="",
        default_schema=SCHEMA,
        max_timeout_seconds=3600,
    )


def build(src, tables: int, rows: int) -> None:
    kw = dict(
        host=src.host,
        port=src.port,
        dbname=src.database,
        user=src.user,
        password=os.environ.get("BENCH_PG_PASSWORD"),
        autocommit=True,
    )
    with psycopg.connect(**kw) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        for t in range(tables):
            name = f"{SCHEMA}.t{t:03d}"
            have = conn.execute(
                "SELECT reltuples::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relname = %s",
                [SCHEMA, f"t{t:03d}"],
            ).fetchone()
            if have and abs(have[0] - rows) <= rows * 0.05:
                continue
            conn.execute(f"DROP TABLE IF EXISTS {name}")
            conn.execute(
                f"CREATE UNLOGGED TABLE {name} AS SELECT g AS id, "
                f"CASE WHEN g %% 10 = 0 THEN NULL ELSE 'n' || (g %% 5000) END AS name, "
                f"(ARRAY['new','paid','shipped','lost'])[1 + g %% 4] AS status, "
                f"(g %% 1000)::numeric(12,2) AS amount, "
                f"now() - (g %% 10000) * interval '1 minute' AS created_at, "
                f"g %% 7 AS customer_id FROM generate_series(1, %s) g",
                [rows],
            )
            conn.execute(f"ANALYZE {name}")
            print(f"  built {name} ({rows} rows)", file=sys.stderr)


SKIP_DUPLICATES = False


def specs_for_table(t: int, n: int) -> list[CheckSpec]:
    """n checks on one table, cycling through the metric kinds and columns."""
    kinds = [
        ("row_count", [], {"min": 1}),
        ("missing", ["name"], {"max": 0}),
        ("missing", ["name"], {"max": 15, "unit": "percent"}),
        ("missing", ["customer_id"], {"max": 0}),
        ("duplicates", ["id"], {"max": 0}),
        ("duplicates", ["name"], {"max": 0}),
        ("accepted_values", ["status"], {"values": ["new", "paid", "shipped"]}),
        ("range", ["amount"], {"min": 0, "max": 500, "max_failing": 0}),
        ("pattern", ["name"], {"pattern": "^n[0-9]+$"}),
        ("freshness", ["created_at"], {"hours": 24}),
    ]
    if SKIP_DUPLICATES:
        kinds = [k for k in kinds if k[0] != "duplicates"]
    out = []
    for i in range(n):
        kind, cols, params = kinds[i % len(kinds)]
        out.append(CheckSpec(t * 10_000 + i, kind, cols, dict(params), timeout_seconds=3600))
    return out


def run_engine(src, tables, per_table):
    times, queries = [], []
    for t in range(tables):
        specs = specs_for_table(t, per_table)
        with engine.connect(src, 3600) as conn:
            started = time.perf_counter()
            engine._run_on(
                conn, SCHEMA, f"t{t:03d}", specs, [], False, engine.datetime.now(engine.UTC)
            )
            times.append(time.perf_counter() - started)
            queries.append(len(conn.statements))
    return times, queries


def run_per_check(src, tables, per_table):
    times, queries = [], []
    for t in range(tables):
        specs = specs_for_table(t, per_table)
        with engine.connect(src, 3600) as conn:
            table_sql = conn.table(SCHEMA, f"t{t:03d}")
            started = time.perf_counter()
            for s in specs:
                sql, params, _ = engine.compile_metrics(conn, table_sql, [s], (SCHEMA, f"t{t:03d}"))
                conn.execute(sql, params)
            times.append(time.perf_counter() - started)
            queries.append(len(conn.statements))
    return times, queries


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tables", type=int, default=10)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--checks", type=int, default=100)
    ap.add_argument("--url", default=os.environ.get("DATABASE_URL", ""))
    ap.add_argument(
        "--without-duplicates",
        action="store_true",
        help="leave out COUNT(DISTINCT) checks (their sorts dominate both ways)",
    )
    ap.add_argument("--drop", action="store_true", help="drop the bench schema afterwards")
    args = ap.parse_args(argv)
    if not args.url.startswith("postgres"):
        ap.error("set DATABASE_URL (or --url) to a PostgreSQL database")
    global SKIP_DUPLICATES
    SKIP_DUPLICATES = args.without_duplicates
    src = source_from_url(args.url)
    per_table = max(1, args.checks // args.tables)
    print(f"Building {args.tables} tables × {args.rows} rows…", file=sys.stderr)
    build(src, args.tables, args.rows)
    results = {}
    for label, fn in (
        ("engine (one scan per table)", run_engine),
        ("one query per check", run_per_check),
    ):
        started = time.perf_counter()
        times, queries = fn(src, args.tables, per_table)
        results[label] = (time.perf_counter() - started, times, queries)
    print(
        f"\n{args.tables * per_table} checks over {args.tables} tables of {args.rows:,} rows "
        f"({per_table} checks per table)\n"
    )
    print(f"{'':32} {'total s':>9} {'s/table':>9} {'queries/table':>14}")
    for label, (total, times, queries) in results.items():
        print(
            f"{label:32} {total:9.2f} {sum(times) / len(times):9.3f} "
            f"{sum(queries) / len(queries):14.1f}"
        )
    e, q = results["engine (one scan per table)"][0], results["one query per check"][0]
    print(f"\nspeed-up: {q / e:.1f}×")
    if args.drop:
        with psycopg.connect(
            host=src.host,
            port=src.port,
            dbname=src.database,
            user=src.user,
            password=os.environ.get("BENCH_PG_PASSWORD"),
            autocommit=True,
        ) as c:
            c.execute(f"DROP SCHEMA {SCHEMA} CASCADE")


if __name__ == "__main__":
    main()
