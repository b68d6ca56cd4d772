"""`make load`: many signed-in people at once against gunicorn, on the generated mesh.

Reuses `make bench`'s set-up (database, `seed_scale` unless a mesh of the size is there,
gunicorn on a free 127.0.0.1 port, now with gunicorn.conf.py) and runs locust headless with
bench/locustfile.py: `--users` people (default 200), each a different generated user with their
own session, browsing and calling the API for `--duration` seconds. Writes
bench/results/load.json and load.md, the load table in docs/benchmarks.md, and exits non-zero
when any request failed. Only loopback traffic; locust and gunicorn are stopped at the end.
"""

import argparse
import csv
import json
import os
import random
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.__main__ import (
    DEFAULT_DB,
    RESULTS,
    ROOT,
    ensure_database,
    gunicorn,
    log,
    machine,
    percentile,
    prepare_mesh,
    setup_django,
    update_benchmarks_doc,
)
from bench.scenarios import SEARCHES


def parse_args():
    p = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n")[0])
    p.add_argument("--products", type=int, default=10_000)
    p.add_argument("--users", type=int, default=200, help="concurrent simulated people")
    p.add_argument("--spawn-rate", type=float, default=20, help="people started per second")
    p.add_argument("--duration", type=int, default=60, help="seconds of load")
    p.add_argument("--wait", default="2,8", help="think time between requests: min,max seconds")
    p.add_argument("--workers", type=int, default=(os.cpu_count() or 1) * 2 + 1)
    p.add_argument("--threads", type=int, default=1, help="gunicorn threads per worker")
    p.add_argument("--reseed", action="store_true")
    p.add_argument(
        "--no-docs",
        action="store_true",
        help="do not update docs/benchmarks.md's table",
    )
    return p.parse_args()


def make_plan(n_users: int, search: str) -> dict:
    """Sessions for n generated users (signed in directly: hashing 200 passwords would be the
    test), and published products and domains for them to visit. Deterministic choices."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    from demo import scale
    from domains.models import Domain
    from products.models import DataProduct

    users = list(
        get_user_model()
        .objects.filter(email__endswith=f"@{scale.SCALE_EMAIL_DOMAIN}", is_active=True)
        .order_by("username")[:n_users]
    )
    sessions = []
    for user in users:
        client = Client()
        client.force_login(user)
        sessions.append(client.cookies[settings.SESSION_COOKIE_NAME].value)
    published = list(
        scale.scale_products()
        .filter(status=DataProduct.Status.PUBLISHED)
        .order_by("domain__slug", "slug")
        .values_list("domain__slug", "slug")
    )
    rng = random.Random(42)  # noqa: S311 - a sample, not a secret
    return {
        "cookie_name": settings.SESSION_COOKIE_NAME,
        "sessions": sessions,
        "products": rng.sample(published, min(500, len(published))),
        "domains": list(Domain.objects.order_by("slug").values_list("slug", flat=True)),
        "search": search,
        "searches": [q.replace("&domain={domain}", "") for _, q in SEARCHES],
    }


def read_stats(prefix: Path) -> list[dict]:
    rows = []
    with open(f"{prefix}_stats.csv", newline="") as f:
        for row in csv.DictReader(f):
            rows.append(
                {
                    "name": row["Name"],
                    "requests": int(row["Request Count"]),
                    "failures": int(row["Failure Count"]),
                    "rps": round(float(row["Requests/s"]), 1),
                    "p50_ms": float(row["50%"]),
                    "p95_ms": float(row["95%"]),
                    "p99_ms": float(row["99%"]),
                    "max_ms": round(float(row["Max Response Time"]), 1),
                }
            )
    return rows


def read_failures(prefix: Path) -> list[dict]:
    path = Path(f"{prefix}_failures.csv")
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [
            {"name": r["Name"], "error": r["Error"], "count": int(r["Occurrences"])}
            for r in csv.DictReader(f)
        ]


# gunicorn.conf.py's access log: `addr "GET /path HTTP/1.1" status bytes 123ms "agent"`.
ACCESS = re.compile(r'"GET (\S+) [^"]*" \d+ \S+ (\d+)ms')
KINDS = [
    ("search", re.compile(r"^/search/$")),
    ("home", re.compile(r"^/$")),
    ("domain page", re.compile(r"^/domains/[^/]+/$")),
    ("product page", re.compile(r"^/products/[^/]+/[^/]+/$")),
    ("API product list", re.compile(r"^/api/v1/products/$")),
    ("API product detail", re.compile(r"^/api/v1/products/[^/]+/[^/]+/$")),
    ("API contract export", re.compile(r"^/api/v1/products/[^/]+/[^/]+/contract$")),
]


def server_times(log_file: Path) -> dict[str, dict]:
    """Per request kind, the time gunicorn spent on it (no queueing), from its access log."""
    times: dict[str, list[float]] = {}
    for line in log_file.read_text(errors="replace").splitlines():
        m = ACCESS.search(line)
        if not m or m.group(1) == "/healthz":
            continue
        kind = next((k for k, rx in KINDS if rx.match(m.group(1))), "other")
        for key in (kind, "Aggregated"):
            times.setdefault(key, []).append(float(m.group(2)))
    return {
        k: {f"server_p{p}_ms": round(percentile(v, p)) for p in (50, 95, 99)}
        for k, v in times.items()
    }


def markdown(report: dict) -> str:
    m, s = report["machine"], report["settings"]
    total = report["total"]
    lines = [
        f"Measured {report['finished']} on {m['cpus']} CPUs, Python {m['python']}, Django "
        f"{m['django']}, PostgreSQL {m['postgresql']}; load average {report['load_before'][0]} "
        f"before, {m['load_average'][0]} at the end (other processes share the CPUs; locust "
        f"runs on the same host). {s['users']} signed-in users (spawned at {s['spawn_rate']:g}/s)"
        f" for {s['duration']} s, think time {s['wait']} s; gunicorn.conf.py with "
        f"{s['workers']} workers × {s['threads']} thread(s); "
        f"{report['mesh']['sizes']['products']:,} products.",
        "",
        f"**{total['requests']:,} requests, {total['failures']} errors, "
        f"{total['rps']} req/s.** Times in ms: p50/p95/p99/max as the users saw them (locust, "
        "queueing included), and server p50/p95 as gunicorn's access log has them.",
        "",
        "| request | count | errors | req/s | p50 | p95 | p99 | max | server p50 | server p95 |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in report["results"]:
        name = "**all**" if r["name"] == "Aggregated" else r["name"]
        lines.append(
            f"| {name} | {r['requests']:,} | {r['failures']} | {r['rps']} | {r['p50_ms']:g} | "
            f"{r['p95_ms']:g} | {r['p99_ms']:g} | {r['max_ms']:g} | "
            f"{r.get('server_p50_ms', '')} | {r.get('server_p95_ms', '')} |"
        )
    for f in report["failures"]:
        lines.append(f"\nError: {f['name']}: {f['error']} × {f['count']}")
    return "\n".join(lines) + "\n"


def main() -> int:
    args = parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    db = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB)
    env = {
        "DATABASE_URL": db,
        "CELERY_BROKER_URL": os.environ.get("BENCH_CELERY_BROKER_URL", "redis://127.0.0.1:6379/15"),
        "DEBUG": "false",
        "SECRET_KEY": "load-" + os.urandom(16).hex(),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
        "GUNICORN_THREADS": str(args.threads),
        "AXES_ENABLED": "false",
    }
    ensure_database(db)
    setup_django(env)
    mesh = prepare_mesh(args.products, args.reseed)
    plan_file = RESULTS / "load-plan.json"
    prefix = RESULTS / "load"
    load_before = [round(x, 2) for x in os.getloadavg()]
    log(f"load average before: {load_before}")
    with gunicorn(
        {**os.environ, **env},
        args.workers,
        ("-c", str(ROOT / "gunicorn.conf.py")),
        log="gunicorn-load.log",
    ) as base:
        plan = make_plan(args.users, "/search/")
        plan_file.write_text(json.dumps(plan))
        log(f"{len(plan['sessions'])} users, {len(plan['products'])} products; locust on {base}")
        cmd = [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(ROOT / "bench" / "locustfile.py"),
            "--headless",
            "--host",
            base,
            "--users",
            str(args.users),
            "--spawn-rate",
            str(args.spawn_rate),
            "--run-time",
            f"{args.duration}s",
            "--stop-timeout",
            "15",
            "--csv",
            str(prefix),
            "--only-summary",
            "--loglevel",
            "WARNING",
        ]
        started = time.monotonic()
        proc = subprocess.run(
            cmd,
            env={**os.environ, "LOAD_PLAN": str(plan_file), "LOAD_WAIT": args.wait},
            timeout=args.duration + 120,  # bounded: locust stops itself well before this
            check=False,
        )
        elapsed = round(time.monotonic() - started, 1)
    plan_file.unlink()
    results = read_stats(prefix)
    server = server_times(RESULTS / "gunicorn-load.log")
    for r in results:
        r.update(server.get(r["name"], {}))
    failures = read_failures(prefix)
    for suffix in ("_stats.csv", "_failures.csv", "_exceptions.csv", "_stats_history.csv"):
        Path(f"{prefix}{suffix}").unlink(missing_ok=True)
    total = next(r for r in results if r["name"] == "Aggregated")
    report = {
        "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(env),
        "load_before": load_before,
        "mesh": mesh,
        "settings": {
            "users": args.users,
            "spawn_rate": args.spawn_rate,
            "duration": args.duration,
            "wait": args.wait,
            "workers": args.workers,
            "threads": args.threads,
            "elapsed_s": elapsed,
        },
        "total": total,
        "results": results,
        "failures": failures,
        "locust_exit_code": proc.returncode,
    }
    (RESULTS / "load.json").write_text(json.dumps(report, indent=2) + "\n")
    table = markdown(report)
    (RESULTS / "load.md").write_text(table)
    if not args.no_docs:
        update_benchmarks_doc(table, "load")
    print(table)
    if total["failures"] or proc.returncode:
        log(f"FAILED: {total['failures']} errors (locust exit code {proc.returncode})")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
