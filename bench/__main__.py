"""`make bench`: the portal under gunicorn against a generated mesh on PostgreSQL.

1. Creates the benchmark database (BENCH_DATABASE_URL, default mesh_bench), migrates it and runs
   `seed_scale` unless it already holds a generated mesh of the requested size.
2. Starts gunicorn (DEBUG off, a SECRET_KEY, MESH_BENCH_HEADERS=1) on a free local port.
3. Signs in as an owner of a team, and for every scenario in bench/scenarios.py measures server
   time (p50/p95/p99, from the Server-Timing header), SQL queries (X-SQL-Queries), and for pages
   throughput with concurrent clients as a ratio of /healthz's and of the fair ceiling's (a
   signed-in page rendering the base layout and nothing else).
4. With `--curve 1000,10000,50000`, measures the curve scenarios (search, product page, API
   list) again at every other size, each on its own database (BENCH_DATABASE_URL's name with
   `_1k`, `_50k`, ...), and prints their growth (each size's results: latest-<size>.json).
5. Writes bench/results/latest.json and latest.md and the table in docs/benchmarks.md.
"""

import argparse
import contextlib
import importlib
import json
import os
import platform
import re
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import requests

from bench.scenarios import (
    CEILING,
    LARGE_P95_MS,
    LARGE_PRODUCTS,
    SCENARIOS,
    TRIVIAL,
    Scenario,
    in_curve,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/mesh_bench"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def parse_args():
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--products", type=int, default=10_000)
    p.add_argument("--requests", type=int, default=60, help="timed requests per scenario")
    p.add_argument("--duration", type=float, default=3.0, help="seconds of throughput per page")
    p.add_argument("--workers", type=int, default=3, help="gunicorn workers")
    p.add_argument("--clients", type=int, default=4, help="concurrent clients for throughput")
    p.add_argument("--only", default="", help="regex: run only matching scenarios")
    p.add_argument("--reseed", action="store_true", help="regenerate the mesh even if present")
    p.add_argument(
        "--curve",
        default="",
        help="sizes, e.g. 1000,10000,50000: measure search, product page and API list at each "
        "(its own database) and print the growth",
    )
    p.add_argument("--curve-only", action="store_true", help=argparse.SUPPRESS)
    p.add_argument(
        "--no-docs",
        action="store_true",
        help="do not update docs/benchmarks.md's table",
    )
    p.add_argument("--output", default=str(RESULTS / "latest"), help="path without extension")
    return p.parse_args()


# -- database --------------------------------------------------------------------------------


def ensure_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            log(f"creating database {name}")
            conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(env: dict) -> None:
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meshportal.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def prepare_mesh(products: int, reseed: bool) -> dict:
    from django.core.management import call_command

    from demo import scale

    call_command("migrate", verbosity=0, interactive=False)
    have = scale.existing_size()
    if reseed or have != products:
        log(f"generating a {products:,}-product mesh (found {have:,})")
        # Without meaning vectors (half an hour at 10,000 products on 2 cores); bench.semantic
        # gives the products random ones to measure what semantic search adds.
        call_command("seed_scale", products=products, reset=bool(have), no_embeddings=True)
    else:
        log(f"reusing the generated {have:,}-product mesh")
    return mesh_facts()


def mesh_facts() -> dict:
    """Sizes, and the person and objects the scenarios visit (deterministic choices)."""
    from django.db.models import Count

    from demo import scale
    from domains.models import Domain, Membership, Team
    from governance.models import Compliance, QualityCheck, QualityRun
    from products.models import (
        AccessRequest,
        DataProduct,
        DataProductGroupObjectPermission,
        InputPort,
        OutputPort,
        SchemaField,
    )

    # The busiest owner: most products in their team, i.e. the biggest inbox and most drafts.
    team = (
        Team.objects.filter(contact_email__endswith=f"@{scale.SCALE_EMAIL_DOMAIN}")
        .annotate(n=Count("products"))
        .order_by("-n", "slug")
        .first()
    )
    owner = (
        Membership.objects.filter(team=team, role="owner")
        .select_related("user")
        .order_by("user__username")
        .first()
        .user
    )
    # A published product with a typical schema, in that team.
    product = (
        DataProduct.objects.filter(owner_team=team, status="published")
        .select_related("domain")
        .order_by("slug")
        .first()
    )
    # The published product most others read from: the widest lineage graph and impact.
    hub = (
        DataProduct.objects.filter(status="published")
        .annotate(n=Count("consumer_inputs"))
        .select_related("domain")
        .order_by("-n", "pk")
        .first()
    )
    # A mid-layer product: it reads others and a few read it (the typical graph and impact).
    mid = (
        DataProduct.objects.filter(status="published")
        .annotate(
            ins=Count("input_ports", distinct=True), outs=Count("consumer_inputs", distinct=True)
        )
        .filter(ins__gt=0, outs__range=(3, 6))
        .select_related("domain")
        .order_by("pk")
        .first()
    ) or hub
    return {
        "sizes": {
            "domains": Domain.objects.count(),
            "teams": Team.objects.count(),
            "products": DataProduct.objects.count(),
            "ports": OutputPort.objects.count(),
            "fields": SchemaField.objects.count(),
            "access requests": AccessRequest.objects.count(),
            "team permission rows": DataProductGroupObjectPermission.objects.count(),
            "lineage edges": InputPort.objects.filter(source_product__isnull=False).count(),
            "quality checks": QualityCheck.objects.count(),
            "check runs": QualityRun.objects.count(),
            "policy statuses": Compliance.objects.count(),
        },
        "user": owner.username,
        "vars": {
            "domain": product.domain.slug,
            "product": product.slug,
            "team": team.slug,
            "urn": product.urn,
            "hub_domain": hub.domain.slug,
            "hub": hub.slug,
            "mid_domain": mid.domain.slug,
            "mid": mid.slug,
        },
    }


# -- server ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def gunicorn(env: dict, workers: int, extra: tuple[str, ...] = (), log: str = "gunicorn.log"):
    """gunicorn on a free loopback port; `extra` adds arguments (e.g. `-c gunicorn.conf.py`)."""
    port = free_port()
    logf = open(RESULTS / log, "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            *extra,
            "meshportal.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=logf,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(requests.ConnectionError, requests.Timeout):
                if requests.get(base + "/healthz", timeout=10).ok:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("gunicorn did not start:\n" + (RESULTS / log).read_text())
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        logf.close()


def sign_in(base: str, username: str, password: str) -> requests.Session:
    s = requests.Session()
    s.get(base + "/login/")
    r = s.post(
        base + "/login/",
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": s.cookies["csrftoken"],
        },
        headers={"Referer": base + "/login/"},
        allow_redirects=False,
    )
    if r.status_code != 302:
        raise SystemExit(f"could not sign in as {username}: HTTP {r.status_code}")
    return s


# -- measuring -------------------------------------------------------------------------------

TIMING = re.compile(r"app;dur=([\d.]+)")
CPU = re.compile(r"cpu;dur=([\d.]+)")
SQL = re.compile(r"sql;dur=([\d.]+)")


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * pct / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _queries(r: dict) -> str:
    """The steady-state count, and a worker's first (cold) request's when it differs."""
    cold = r.get("queries_max", r["queries"])
    return f"{r['queries']}" + (f" ({cold} cold)" if cold != r["queries"] else "")


def measure_url(session, base: str, url: str, n: int) -> dict:
    for _ in range(
        12
    ):  # warm-up: every worker's caches (content types, permission ids), connections
        r = session.get(base + url)
    if r.status_code != 200:  # a benchmark of an error page or a redirect measures nothing
        return {"status": "error", "reason": f"{url} answers HTTP {r.status_code}"}
    server, client, queries, cpu, sql = [], [], [], [], []
    for _ in range(n):
        t0 = time.perf_counter()
        r = session.get(base + url)
        client.append((time.perf_counter() - t0) * 1000)
        timing = r.headers.get("Server-Timing", "")
        server.append(float(TIMING.search(timing).group(1)))
        cpu.append(float(CPU.search(timing).group(1)))
        sql.append(float(SQL.search(timing).group(1)))
        queries.append(int(r.headers.get("X-SQL-Queries", "0")))
    return {
        "status": "ok",
        "url": url,
        "requests": n,
        "p50_ms": round(percentile(server, 50), 1),
        "p95_ms": round(percentile(server, 95), 1),
        "p99_ms": round(percentile(server, 99), 1),
        "client_p50_ms": round(percentile(client, 50), 1),
        "cpu_p50_ms": round(percentile(cpu, 50), 1),
        "sql_p50_ms": round(percentile(sql, 50), 1),
        # Steady state; a worker's very first request also fills its per-process caches.
        "queries": round(percentile(queries, 50)),
        "queries_max": max(queries),
        "bytes": len(r.content),
    }


def throughput(cookies, base: str, url: str, clients: int, seconds: float) -> float:
    done = [0] * clients
    stop = time.monotonic() + seconds

    def client(i):
        s = requests.Session()
        s.cookies.update(cookies)
        while time.monotonic() < stop:
            s.get(base + url).raise_for_status()
            done[i] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.monotonic() - started)


PAIRED_ROUNDS = 3  # slices of the page and of the ceiling, in turn, for one throughput ratio


def paired_throughput(
    cookies, base: str, url: str, ceiling_url: str, clients: int, seconds: float
) -> tuple[float, float]:
    """The page's and the ceiling's req/s, measured in turn in PAIRED_ROUNDS slices each (the
    page `seconds` in all, the ceiling half as long): on a shared machine whose speed drifts
    by a third within minutes, a ceiling measured once at the start made the same page 30 % of
    it in one run and 52 % in another. Paired, both see the same machine."""
    page, ceiling = [], []
    for _ in range(PAIRED_ROUNDS):
        ceiling.append(throughput(cookies, base, ceiling_url, clients, seconds / PAIRED_ROUNDS / 2))
        page.append(throughput(cookies, base, url, clients, seconds / PAIRED_ROUNDS))
    return sum(page) / len(page), sum(ceiling) / len(ceiling)


def measure_job(path: str, runs: int = 1) -> dict:
    module, _, name = path.rpartition(".")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return {"status": "error", "reason": f"{path} does not exist"}
    from django.db import connection, transaction

    count = [0]

    def counter(execute, sql, params, many, context):
        count[0] += 1
        return execute(sql, params, many, context)

    times = []
    with connection.execute_wrapper(counter):
        for _ in range(runs):
            # Rolled back (its tasks, sent on commit, never leave): the mesh stays as it was, so
            # the next bench measures the same work. Committed, a dispatch queued thousands of
            # runs no worker takes, and the next bench's dispatch swept them as stuck (397
            # queries instead of 8, an alert mail per check).
            with transaction.atomic():
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
                transaction.set_rollback(True)
    return {
        "status": "ok",
        "target": path,
        "seconds": round(min(times), 2),
        "queries": count[0] // runs,
    }


def verdict(s: Scenario, r: dict) -> list[str]:
    """The targets this result misses (empty: all met)."""
    missed = []
    if r.get("status") != "ok":
        return missed
    if s.p95_ms is not None and r["p95_ms"] > s.p95_ms:
        missed.append(f"p95 {r['p95_ms']} ms > {s.p95_ms:g} ms")
    if s.max_queries is not None and r["queries"] > s.max_queries:
        missed.append(f"{r['queries']} queries > {s.max_queries}")
    if s.min_ratio is not None and r.get("ratio") is not None and r["ratio"] < s.min_ratio:
        missed.append(f"throughput {r['ratio']:.0%} < {s.min_ratio:.0%} of /healthz")
    ceiling = r.get("ceiling_ratio")
    if s.min_ceiling is not None and ceiling is not None and ceiling < s.min_ceiling:
        missed.append(f"throughput {ceiling:.0%} < {s.min_ceiling:.0%} of ceiling")
    if s.max_seconds is not None and r["seconds"] > s.max_seconds:
        missed.append(f"{r['seconds']} s > {s.max_seconds:g} s")
    return missed


# -- report ----------------------------------------------------------------------------------


def machine(env: dict) -> dict:
    import django
    import psycopg

    with psycopg.connect(env["DATABASE_URL"]) as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0]
    mem = next(
        (
            int(line.split()[1]) // 1024
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        None,
    )
    return {
        "cpus": os.cpu_count(),
        "memory_mb": mem,
        "python": platform.python_version(),
        "django": django.get_version(),
        "postgresql": pg.split()[0],
        "platform": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def markdown(report: dict) -> str:
    m, sz = report["machine"], report["mesh"]["sizes"]
    lines = [
        f"Measured {report['finished']} on {m['cpus']} CPUs, {m['memory_mb'] / 1024:.0f} GB, "
        f"Python {m['python']}, Django {m['django']}, PostgreSQL {m['postgresql']} (load average "
        f"{m['load_average'][0]} at the end: other processes share the CPUs); gunicorn "
        f"with {report['settings']['workers']} workers, {report['settings']['clients']} "
        f"concurrent clients for throughput. Mesh: "
        + ", ".join(f"{v:,} {k}" for k, v in sz.items())
        + ".",
        "",
        "Server time from the Server-Timing header; CPU is the web worker's own CPU time and SQL "
        "the time spent in queries (both p50), which show where the time goes on a busy host. SQL "
        "queries: the steady-state count per request (a worker's first request also fills its "
        "per-process caches: content types, permission ids; shown as cold when it differs).",
        "",
        "Throughput: req/s of concurrent clients, as a share of /healthz's (no session, user or "
        "template) and of the ceiling's (`/ceiling/`: signed in, the whole middleware stack, the "
        "base layout with its navigation, nothing else), the ceiling measured in turn with each "
        "page (three slices of each), so that both see the same machine.",
        "",
        "| scenario | p50 ms | p95 ms | p99 ms | CPU ms | SQL ms | SQL queries | req/s "
        "| × /healthz | × ceiling | target | result |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|---|",
    ]
    for r in report["results"]:
        target = r.get("target", "")
        result = ("not met: " + "; ".join(r["missed"])) if r.get("missed") else "met"
        if r["status"] == "ok" and "p50_ms" in r:
            rps = f"{r['rps']:.0f}" if r.get("rps") else ""
            ratio = f"{r['ratio']:.0%}" if r.get("ratio") is not None else ""
            ceiling = f"{r['ceiling_ratio']:.0%}" if r.get("ceiling_ratio") is not None else ""
            lines.append(
                f"| {r['name']} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | "
                f"{r['cpu_p50_ms']} | {r['sql_p50_ms']} | {_queries(r)} | {rps} | {ratio} | "
                f"{ceiling} | {target} | {result} |"
            )
        elif r["status"] == "ok":
            lines.append(
                f"| {r['name']} | {r['seconds']} s (job) | | | | | {r['queries']} | | | | "
                f"{target} | {result} |"
            )
        else:
            lines.append(
                f"| {r['name']} | {r['status']}: {r['reason']} | | | | | | | | | {target} | |"
            )
    if report.get("curve"):
        lines += ["", curve_markdown(report["curve"])]
    return "\n".join(lines) + "\n"


def curve_markdown(curve: dict) -> str:
    """The growth table: p95 at every size, and how much it grew from one size to the next."""
    sizes = curve["sizes"]
    head = (
        "| scenario | "
        + " | ".join(f"p95 ms at {n:,}" for n in sizes)
        + " | "
        + " | ".join(f"× {a:,} → {b:,}" for a, b in zip(sizes, sizes[1:], strict=False))
        + " | target at the largest | result |"
    )
    lines = [
        "Scale curve: the same scenarios on meshes of "
        + ", ".join(f"{n:,}" for n in sizes)
        + " products (each its own database; load average "
        + ", ".join(f"{curve['load'][str(n)]}" for n in sizes)
        + " at the end of each).",
        "",
        head,
        "|---|" + "--:|" * (2 * len(sizes) - 1) + "---|---|",
    ]
    for row in curve["rows"]:
        p95 = [row["p95_ms"].get(str(n)) for n in sizes]
        growth = [f"{b / a:.1f}" if a and b else "" for a, b in zip(p95, p95[1:], strict=False)]
        lines.append(
            f"| {row['name']} | "
            + " | ".join("" if v is None else f"{v}" for v in p95)
            + " | "
            + " | ".join(growth)
            + f" | {row.get('target', '')} | {row.get('result', '')} |"
        )
    return "\n".join(lines) + "\n"


def git_commit() -> str:
    """The checkout's short commit id, for the records (empty outside a git checkout)."""
    return subprocess.run(  # noqa: S603
        ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    ).stdout.strip()


def update_benchmarks_doc(table: str, marker: str = "bench") -> None:
    """Replace docs/benchmarks.md's text between <!-- marker:start --> and <!-- marker:end -->.
    The published tables live there, never in the README (which stays short)."""
    doc = ROOT / "docs" / "benchmarks.md"
    text = doc.read_text()
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    if start not in text or end not in text:
        log(f"{doc}: markers {start} … {end} not found; table not written")
        return
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    doc.write_text(f"{head}{start}\n{table}{end}{tail}")


def size_database(db: str, products: int, main_size: int) -> str:
    """The curve's database for a size: the bench's own at its main size, `<name>_1k`,
    `<name>_50k` ... for the others (a mesh per size, so none is reseeded between runs)."""
    if products == main_size:
        return db
    parts = urlsplit(db)
    suffix = f"{products // 1000}k" if products % 1000 == 0 else str(products)
    return parts._replace(path=f"{parts.path.rstrip('/')}_{suffix}").geturl()


def bench_env(db: str) -> dict:
    broker = os.environ.get("BENCH_CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
    return {
        "DATABASE_URL": db,
        "CELERY_BROKER_URL": broker,
        # A shared cache, as production has (the mesh map is cached there); its keys carry the
        # database's name, so the curve's meshes never read each other's cached entries.
        "CACHE_URL": os.environ.get("BENCH_CACHE_URL", broker),
        "CACHE_KEY_PREFIX": "bench-" + urlsplit(db).path.strip("/"),
        "DEBUG": "false",
        "SECRET_KEY": "bench-" + os.urandom(16).hex(),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "MESH_BENCH_HEADERS": "1",
        "LOG_LEVEL": "WARNING",
        "DB_CONN_MAX_AGE": "600",
    }


def run_scenarios(env: dict, mesh: dict, chosen: list[Scenario], args) -> list[dict]:
    from demo import scale

    results = []
    with gunicorn({**os.environ, **env}, args.workers) as base:
        session = sign_in(base, mesh["user"], scale.PASSWORD)
        search = (
            "/search/"
            if session.get(base + "/search/?q=orders").status_code != 404
            else "/products/"
        )
        fmt = {**mesh["vars"], "search": search}
        baseline_rps: dict[str, float] = {}
        for s in chosen:
            if s.is_url:
                url = s.target.format(**fmt)
                r = measure_url(session, base, url, args.requests)
                if r["status"] == "ok" and s.kind in ("baseline", "page") and not args.curve_only:
                    ceiling = None
                    if s.kind == "page" and CEILING.name in baseline_rps:
                        rps, ceiling = paired_throughput(
                            session.cookies, base, url, CEILING.target, args.clients, args.duration
                        )
                    else:
                        rps = throughput(session.cookies, base, url, args.clients, args.duration)
                    r["rps"] = round(rps, 1)
                    if s.kind == "baseline":
                        baseline_rps[s.name] = r["rps"]
                    trivial = baseline_rps.get(TRIVIAL.name)
                    r["ratio"] = round(r["rps"] / trivial, 3) if trivial else None
                    if ceiling is not None:  # measured in turn with the page
                        r["ceiling_rps"] = round(ceiling, 1)
                        r["ceiling_ratio"] = round(r["rps"] / ceiling, 3)
                    elif s is CEILING:
                        r["ceiling_ratio"] = 1.0
            else:
                r = measure_job(s.target)
            r = {"name": s.name, "kind": s.kind, "target": s.targets(), **r}
            r["missed"] = verdict(s, r)
            results.append(r)
            shown = (
                f"p50 {r['p50_ms']} (cpu {r['cpu_p50_ms']}) p95 {r['p95_ms']} p99 {r['p99_ms']} ms, "
                f"{r['queries']} queries"
                + (f", {r['rps']} req/s" if r.get("rps") else "")
                + (f", {r['ceiling_ratio']:.0%} of ceiling" if r.get("ceiling_ratio") else "")
                if "p50_ms" in r
                else r.get("reason") or f"{r.get('seconds')} s"
            )
            log(
                f"{s.name:40} {shown}{'  MISSED: ' + '; '.join(r['missed']) if r['missed'] else ''}"
            )
    return results


def measure_curve(args, db: str, results: list[dict]) -> dict:
    """The curve scenarios at every other size, each in its own `python -m bench --curve-only`
    process (Django is set up once per process, on one database)."""
    sizes = sorted({int(n) for n in args.curve.split(",") if n.strip()} | {args.products})
    per_size = {args.products: results}
    load = {str(args.products): round(os.getloadavg()[0], 2)}
    for n in sizes:
        if n == args.products:
            continue
        out = Path(f"{args.output}-{n}")  # e.g. bench/results/latest-1000.json
        log(f"-- curve: {n:,} products")
        cmd = [
            sys.executable,
            "-m",
            "bench",
            "--curve-only",
            "--no-docs",
            f"--products={n}",
            f"--requests={args.requests}",
            f"--workers={args.workers}",
            f"--output={out}",
        ]
        if args.only:
            cmd.append(f"--only={args.only}")
        env = {**os.environ, "BENCH_DATABASE_URL": size_database(db, n, args.products)}
        subprocess.run(cmd, cwd=ROOT, env=env, check=True)  # noqa: S603
        other = json.loads(out.with_suffix(".json").read_text())
        per_size[n] = other["results"]
        load[str(n)] = other["machine"]["load_average"][0]
    rows = []
    for s in SCENARIOS:
        if not in_curve(s) or not any(r["name"] == s.name for r in results):
            continue
        p95 = {
            str(n): next((r.get("p95_ms") for r in per_size[n] if r["name"] == s.name), None)
            for n in sizes
        }
        row = {"name": s.name, "p95_ms": p95}
        limit = LARGE_P95_MS.get(s.kind)
        largest = p95.get(str(LARGE_PRODUCTS))
        if limit is not None and largest is not None:
            row["target"] = f"p95 ≤ {limit:g} ms at {LARGE_PRODUCTS:,}"
            row["result"] = "met" if largest <= limit else f"not met: {largest} ms"
        rows.append(row)
    return {"sizes": sizes, "load": load, "rows": rows}


def main() -> None:
    args = parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    db = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB)
    env = bench_env(db)
    ensure_database(db)
    setup_django(env)
    mesh = prepare_mesh(args.products, args.reseed)

    log(f"signing in as {mesh['user']}; product {mesh['vars']['urn']}")
    chosen = [
        s
        for s in SCENARIOS
        if (in_curve(s) and re.search(args.only, s.name))
        or (not args.curve_only and (s.kind == "baseline" or re.search(args.only, s.name)))
    ]
    results = run_scenarios(env, mesh, chosen, args)
    curve = measure_curve(args, db, results) if args.curve and not args.curve_only else None
    report = {
        "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(env),
        "mesh": mesh,
        "settings": {
            "workers": args.workers,
            "clients": args.clients,
            "requests": args.requests,
            "duration": args.duration,
        },
        "results": results,
    }
    if curve:
        report["curve"] = curve
    out = Path(args.output)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    table = markdown(report)
    out.with_suffix(".md").write_text(table)
    if not args.no_docs and out == RESULTS / "latest":
        update_benchmarks_doc(table)
    print(table)
    missed = [r["name"] for r in results if r["missed"]]
    missed += [
        f"{r['name']} (curve)"
        for r in (curve or {}).get("rows", [])
        if "not" in r.get("result", "")
    ]
    errors = [r["name"] for r in results if r["status"] != "ok"]
    log(
        f"{len(results)} scenarios, {len(missed)} missing a target"
        + (f": {', '.join(missed)}" if missed else "")
    )
    if errors:
        raise SystemExit(f"{len(errors)} scenarios did not run: {', '.join(errors)}")


if __name__ == "__main__":
    main()
