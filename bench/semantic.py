"""Semantic search: quality on labelled queries, and what it adds to a search's time.

    python -m bench.semantic [--products 10000] [--runs 3]

1. Quality: a fresh SQLite database (under var/bench-semantic/) with the demo mesh (`seed_demo`,
   which embeds it); every query of bench/semantic_queries.yaml is searched with keywords alone
   (MESH_SEMANTIC_SEARCH off) and hybrid (on), through `search_products`, the entry point of
   the search page, the API and the MCP tool. Reports recall@10 and MRR of each.
2. Cost: BENCH_DATABASE_URL (PostgreSQL, default mesh_bench as `make bench` uses) with a
   generated mesh of --products products (`seed_scale --no-embeddings` if it is not there).
   Products without a vector get a made-up one close to a labelled query's (`_fill_vectors`):
   computing 10,000 real ones takes about half an hour on two cores, and the made-up ones give
   every query enough neighbours that the whole fusion runs. Each labelled query is timed
   (first page of 20, evaluated) with keywords alone and hybrid; the added time is their
   difference, p50/p95, for a query never asked before (its vector forgotten in the process's
   LRU and in Redis: the target's figure), asked before in another process (Redis has it) and
   in this one. Then the parts: the model's forward pass (wall and CPU time) and the scan of
   the vectors in memory.

Writes bench/results/semantic.json and semantic.md, and the table in docs/benchmarks.md
between its `<!-- semantic:… -->` markers.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
QUERIES = ROOT / "bench" / "semantic_queries.yaml"
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/mesh_bench"
PAGE = 20
GENERATED = "bench-near-query"  # text_hash of the vectors the bench made up
GENERATED_PRODUCTS = 400  # the generated mesh of the quality part: ~11 products per subject


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def load_queries() -> list[dict]:
    """The labelled queries over the demo mesh."""
    return yaml.safe_load(QUERIES.read_text())["queries"]


def load_generated() -> list[dict]:
    """The labelled queries over a generated mesh (`entities` instead of `expect`)."""
    return yaml.safe_load(QUERIES.read_text())["generated"]


def _child(mode: str, env: dict, args: list[str]) -> dict:
    """Run one part in its own process (each needs its own database settings)."""
    out = subprocess.run(  # noqa: S603  # nosec B603
        [sys.executable, "-m", "bench.semantic", "--part", mode, *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    sys.stderr.write(out.stderr[-4000:])
    if out.returncode != 0:
        raise SystemExit(f"bench.semantic {mode} failed ({out.returncode})")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meshportal.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _top(q: str, semantic_on: bool) -> list:
    from django.conf import settings

    from products.discovery.search import search_products
    from products.models import DataProduct

    settings.MESH_SEMANTIC_SEARCH = semantic_on
    return list(search_products(DataProduct.objects.select_related("domain"), q)[:10])


def _scores(items: list[dict], relevant, wanted) -> dict:
    """Recall@10 and MRR of keywords alone and hybrid over `items`: `relevant(item, product)`
    says whether a product answers the query; `wanted(item)` how many answers there are at
    most in the first ten."""
    out: dict = {"count": len(items), "queries": []}
    for mode in ("keyword", "hybrid"):
        found = ranks = 0.0
        for item in items:
            top = _top(item["q"], mode == "hybrid")
            hits = [rank for rank, p in enumerate(top, start=1) if relevant(item, p)]
            found += min(len(hits), wanted(item)) / wanted(item)
            ranks += 1.0 / hits[0] if hits else 0.0
            if mode == "hybrid":
                out["queries"].append(
                    {"q": item["q"], "top": [f"{p.domain.slug}:{p.slug}" for p in top[:3]]}
                )
        out[mode] = {
            "recall_at_10": round(found / len(items), 3),
            "mrr": round(ranks / len(items), 3),
        }
    return out


def part_quality() -> dict:
    """The demo mesh's labelled queries."""
    _setup()
    from django.core.management import call_command

    from products.discovery import semantic

    if not semantic.enabled():
        raise SystemExit("Semantic search is off: install the `semantic` extra (make install).")
    call_command("migrate", verbosity=0)
    call_command("seed_demo", verbosity=0)
    return _scores(
        load_queries(),
        lambda item, p: f"{p.domain.slug}:{p.slug}" in item["expect"],
        lambda item: len(item["expect"]),
    )


def part_quality_generated(products: int) -> dict:
    """The generated mesh's labelled queries: `seed_scale` with real vectors (each computed
    as the embed task does; about 0.1-0.3 s a product on two cores)."""
    _setup()
    from django.core.management import call_command

    from products.discovery import semantic
    from products.models import DataProduct

    if not semantic.enabled():
        raise SystemExit("Semantic search is off: install the `semantic` extra (make install).")
    call_command("migrate", verbosity=0)
    call_command("seed_scale", products=products, verbosity=0)
    names = list(DataProduct.objects.values_list("name", flat=True))

    def answers(item: dict, name: str) -> bool:
        # "<Qualifier> <Entity>[ <Region>]": the subject follows the qualifier's one word.
        subject = name.split(" ", 1)[1] if " " in name else name
        return any(subject.startswith(e.title()) for e in item["entities"])

    def wanted(item: dict) -> int:
        return max(1, min(10, sum(answers(item, n) for n in names)))

    out = _scores(load_generated(), lambda item, p: answers(item, p.name), wanted)
    out["products"] = products
    return out


def _fill_vectors(queries: list[str]) -> int:
    """Give every generated product (no real vector) one close to a labelled query's: a
    product's vector is 0.6 * a query's + 0.8 * a random unit vector (cosine ~0.6 with it), so
    each query has hundreds of neighbours above the similarity floor and a search runs the
    whole fusion, as a real mesh's would. (Purely random vectors are nobody's neighbours: the
    fusion never ran and the bench measured less than a real search costs.)"""
    import numpy as np
    from django.db import connection

    from products.discovery import embedding, semantic
    from products.models import DataProduct, ProductEmbedding

    ProductEmbedding.objects.filter(text_hash="random").delete()  # older benches' vectors
    missing = list(DataProduct.objects.filter(embedding__isnull=True).values_list("pk", flat=True))
    anchors = embedding.encode(queries)
    rng = np.random.default_rng(42)
    for start in range(0, len(missing), 2000):
        chunk = missing[start : start + 2000]
        noise = rng.standard_normal((len(chunk), embedding.DIMENSIONS)).astype(np.float32)
        noise /= np.linalg.norm(noise, axis=1, keepdims=True)
        vectors = 0.6 * anchors[rng.integers(0, len(anchors), len(chunk))] + 0.8 * noise
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        semantic.save(
            [(pk, GENERATED, v.astype(np.float32)) for pk, v in zip(chunk, vectors, strict=True)]
        )
    if connection.vendor == "postgresql":
        # As autovacuum would after such a bulk write: fresh statistics and visibility map, so
        # that the vectors' stamp (a count) is an index-only scan.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE products_productembedding")
    return len(missing)


def _pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def part_cost(products: int, runs: int) -> dict:
    _setup()
    from django.core.management import call_command

    from demo import scale
    from products.discovery import embedding, semantic
    from products.discovery.search import search_products
    from products.models import DataProduct, ProductEmbedding

    call_command("migrate", verbosity=0)
    have = scale.existing_size()
    if have != products:
        log(f"generating a mesh of {products:,} products (seed_scale --no-embeddings)")
        call_command(
            "seed_scale", products=products, reset=bool(have), no_embeddings=True, verbosity=0
        )
    from django.conf import settings

    queries = [item["q"] for item in load_queries()]
    filled = _fill_vectors(queries)
    total = DataProduct.objects.count()

    def timed(q: str, on: bool, *, cold: bool = True) -> float:
        settings.MESH_SEMANTIC_SEARCH = on
        if cold:  # as if asked for the first time, in any process
            semantic.forget_queries([q])
        t0 = time.perf_counter()
        list(search_products(DataProduct.objects.all(), q)[:PAGE])
        return (time.perf_counter() - t0) * 1000

    def clock(f) -> float:
        t0 = time.perf_counter()
        f()
        return (time.perf_counter() - t0) * 1000

    for q in queries[:3]:  # warm up: the model and the vectors are loaded once per process
        timed(q, True)
        timed(q, False)
    series: dict[str, list[float]] = {
        k: []
        for k in (
            "keyword",
            "hybrid",
            "added",
            "added_shared_cache",
            "added_process_cache",
            "encode",
            "encode_cpu",
            "encode_numpy",
            "scan",
        )
    }
    encoder = embedding.encoder()
    for _ in range(runs):
        for q in queries:
            k = timed(q, False)
            h = timed(q, True)  # cold: the query's vector is encoded
            series["keyword"].append(k)
            series["hybrid"].append(h)
            series["added"].append(h - k)
            # Asked again in this process (its next page, a facet click) ...
            series["added_process_cache"].append(timed(q, True, cold=False) - k)
            # ... and in another worker, whose own memory does not have it (Redis does).
            semantic._query_vector.cache_clear()
            series["added_shared_cache"].append(timed(q, True, cold=False) - k)
            # The parts: the model's forward pass alone, then the scan of the vectors in
            # memory with the query's vector known.
            cpu = time.thread_time()
            series["encode"].append(
                clock(lambda q=q: embedding.encode_query(semantic.normalise(q)))
            )
            series["encode_cpu"].append((time.thread_time() - cpu) * 1000)
            # The NumPy float32 pass, which encodes queries without onnxruntime.
            series["encode_numpy"].append(
                clock(lambda q=q: encoder.encode([semantic.normalise(q)]))
            )
            series["scan"].append(clock(lambda q=q: semantic.nearest(q)))
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    per_search = {}
    for mode, on in (("keyword", False), ("hybrid", True)):
        settings.MESH_SEMANTIC_SEARCH = on
        with CaptureQueriesContext(connection) as ctx:
            list(search_products(DataProduct.objects.all(), queries[0])[:PAGE])
        per_search[mode] = len(ctx.captured_queries)
    result = {
        "products": total,
        "queries_per_search": per_search,
        "vectors": ProductEmbedding.objects.count(),
        "generated_vectors": ProductEmbedding.objects.filter(text_hash=GENERATED).count(),
        "generated_vectors_added": filled,
        "load_average": [round(x, 1) for x in os.getloadavg()],
        "samples": len(series["added"]),
        "query_encoder": "onnxruntime int8" if embedding.fast_queries() else "numpy float32",
        "vector_store": "pgvector" if not semantic.in_memory() else "memory",
        **{
            f"{name}_ms": {"p50": round(_pct(v, 50), 1), "p95": round(_pct(v, 95), 1)}
            for name, v in series.items()
        },
    }
    # Leave the mesh as found: `make bench` runs the page bench first, and on a mesh that kept
    # these vectors its next run would measure every search with the semantic fusion on.
    ProductEmbedding.objects.filter(text_hash=GENERATED).delete()
    return result


def markdown(report: dict) -> str:
    q, c = report["quality"], report.get("cost")
    meshes = (
        (f"demo mesh ({q['demo']['count']} queries)", q["demo"]),
        (
            f"generated mesh, {q['generated']['products']:,} products "
            f"({q['generated']['count']} queries)",
            q["generated"],
        ),
        (f"**all {q['count']} queries**", q),
    )
    lines = [
        f"Semantic search, {report['finished']} (labelled queries of "
        "`bench/semantic_queries.yaml`; recall@10 and MRR, keywords alone → hybrid, keywords + "
        "meaning by RRF; target: hybrid ≥ keywords + 30 points of recall@10):",
        "",
        "| | recall@10, keywords | recall@10, hybrid | gain | MRR, keywords | MRR, hybrid |",
        "|---|---|---|---|---|---|",
        *(
            f"| {label} | {m['keyword']['recall_at_10']:.0%} | {m['hybrid']['recall_at_10']:.0%} "
            f"| {100 * (m['hybrid']['recall_at_10'] - m['keyword']['recall_at_10']):+.0f} points "
            f"| {m['keyword']['mrr']:.2f} | {m['hybrid']['mrr']:.2f} |"
            for label, m in meshes
        ),
    ]
    if c:
        lines += [
            "",
            f"Cost at {c['products']:,} products (PostgreSQL, {c['samples']} timed searches, "
            "first page evaluated; "
            f"{c['generated_vectors']:,} generated products with made-up vectors near the queries'; "
            "machine load "
            f"average {c['load_average'][0]} on {os.cpu_count()} cores):",
            "",
            "| | p50 | p95 |",
            "|---|---|---|",
            *(
                f"| {label} | {c[key]['p50']} ms | {c[key]['p95']} ms |"
                for label, key in (
                    ("keyword search", "keyword_ms"),
                    ("hybrid search, query never asked before", "hybrid_ms"),
                    ("**added by semantic search**, query never asked before", "added_ms"),
                    (f"… of which encoding the query ({c['query_encoder']})", "encode_ms"),
                    (
                        "… the same, CPU time of this thread (what the load adds is wall time)",
                        "encode_cpu_ms",
                    ),
                    ("(encoding by the NumPy float32 pass, for comparison)", "encode_numpy_ms"),
                    (
                        "… of which finding the nearest vectors "
                        + (
                            "(pgvector's HNSW index, one query)"
                            if c.get("vector_store") == "pgvector"
                            else "(a scan of the vectors in memory)"
                        ),
                        "scan_ms",
                    ),
                    (
                        "added, query asked before in another process (Redis)",
                        "added_shared_cache_ms",
                    ),
                    ("added, query asked before in this process", "added_process_cache_ms"),
                )
            ),
            "",
            "The rest of the added time is the database's: one small query (which of the "
            "nearest products the user may see, by primary key"
            + (", with the vectors' stamp" if c.get("vector_store") != "pgvector" else "")
            + ") and "
            "the fusion's share of the page's own query (a window numbering the keyword hits; "
            "`products/discovery/search.py`).",
            "",
            f"Database queries of one search (`search_products`, first page): keywords alone "
            f"{c['queries_per_search']['keyword']}, hybrid {c['queries_per_search']['hybrid']}.",
        ]
    return "\n".join(lines) + "\n"


def _combined(*parts: dict) -> dict:
    """Recall@10 and MRR over every labelled query of `parts` (each weighs by its count)."""
    n = sum(p["count"] for p in parts)
    out: dict = {"count": n}
    for mode in ("keyword", "hybrid"):
        out[mode] = {
            key: round(sum(p[mode][key] * p["count"] for p in parts) / n, 3)
            for key in ("recall_at_10", "mrr")
        }
    return out


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.semantic", description=__doc__.split("\n")[0])
    p.add_argument("--products", type=int, default=10_000)
    p.add_argument("--runs", type=int, default=3, help="timed passes over the queries")
    p.add_argument("--no-cost", action="store_true", help="quality only (no PostgreSQL needed)")
    p.add_argument("--no-docs", action="store_true", help="do not update docs/benchmarks.md")
    p.add_argument(
        "--generated",
        type=int,
        default=GENERATED_PRODUCTS,
        help="products of the generated mesh the quality part searches (real vectors)",
    )
    p.add_argument(
        "--part", choices=["quality", "quality-generated", "cost"], help=argparse.SUPPRESS
    )
    args = p.parse_args()
    if args.part == "quality":
        print(json.dumps(part_quality()))
        return
    if args.part == "quality-generated":
        print(json.dumps(part_quality_generated(args.generated)))
        return
    if args.part == "cost":
        print(json.dumps(part_cost(args.products, args.runs)))
        return

    work = ROOT / "var" / "bench-semantic"
    work.mkdir(parents=True, exist_ok=True)
    db = work / "demo.sqlite3"
    db.unlink(missing_ok=True)
    log("quality: demo mesh on SQLite, keyword vs hybrid")
    quality_env = {
        "DATABASE_URL": f"sqlite:///{db}",
        "MESH_DEMO_WAREHOUSE_PATH": str(work / "warehouse.sqlite3"),
    }
    demo = _child("quality", quality_env, [])
    db.unlink(missing_ok=True)
    log(f"quality: a generated mesh of {args.generated:,} products on SQLite, real vectors")
    generated = _child("quality-generated", quality_env, ["--generated", str(args.generated)])
    report: dict = {"quality": {"demo": demo, "generated": generated, **_combined(demo, generated)}}
    if not args.no_cost:
        url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB)
        sys.path.insert(0, str(ROOT))
        from bench.__main__ import ensure_database

        ensure_database(url)
        log(f"cost: {args.products:,} products on {url.rsplit('@', 1)[-1]}")
        report["cost"] = _child(
            "cost",
            {"DATABASE_URL": url},
            ["--products", str(args.products), "--runs", str(args.runs)],
        )
    report["finished"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "semantic.json").write_text(json.dumps(report, indent=2) + "\n")
    table = markdown(report)
    (RESULTS / "semantic.md").write_text(table)
    if not args.no_docs:
        from bench.__main__ import update_benchmarks_doc

        update_benchmarks_doc(table, "semantic")
    print(table)


if __name__ == "__main__":
    main()
