"""Lineage graph query benchmark: 10,000 products, 30,000 edges.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mesh_x .venv/bin/python bench/lineage_bench.py

Runs in a throwaway test database (test_<name>, created and dropped here; in memory on
SQLite). The mesh is layered like a real one: 10 layers of 1,000 products, each product after
the first layer reading 3-4 products from the layers before it (mostly the one just before).
Prints median and 95th percentile timings of the graph queries the pages and API use.
`--existing` measures the mesh `seed_scale` left in DATABASE_URL instead (nothing is written).
"""

import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meshportal.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

PRODUCTS, EDGES, LAYERS, SAMPLES = 10_000, 30_000, 10, 40


def build() -> list[int]:
    from domains import services as domain_services
    from meshportal.audit import audit_context
    from products.models import DataProduct, InputPort, OutputPort

    rnd = random.Random(42)
    with audit_context(door="command"):
        team = domain_services.team_create(slug="bench", name="Bench")
        domains = [
            domain_services.domain_create(slug=f"d{i}", name=f"Domain {i}", owner_team=team)
            for i in range(20)
        ]
    per_layer = PRODUCTS // LAYERS
    products = DataProduct.objects.bulk_create(
        [
            DataProduct(
                domain=domains[i % 20],
                slug=f"p{i}",
                name=f"Product {i}",
                owner_team=team,
                status="draft" if i % 50 == 0 else "published",
            )
            for i in range(PRODUCTS)
        ],
        batch_size=2000,
    )
    ports = OutputPort.objects.bulk_create(
        [OutputPort(product=p, slug="main", name="Main") for p in products], batch_size=2000
    )
    pairs: set[tuple[int, int]] = set()
    while len(pairs) < EDGES:
        dst = rnd.randrange(per_layer, PRODUCTS)
        layer = dst // per_layer
        src_layer = layer - 1 if rnd.random() < 0.8 else rnd.randrange(0, layer)
        pairs.add((src_layer * per_layer + rnd.randrange(per_layer), dst))
    InputPort.objects.bulk_create(
        [
            InputPort(product=products[d], source_port=ports[s], source_product=products[s])
            for s, d in sorted(pairs)
        ],
        batch_size=5000,
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:  # what autovacuum would do after a bulk load
            cur.execute("ANALYZE")
    return [p.pk for p in products]


def timed(fn, samples) -> tuple[float, float]:
    runs = []
    for s in samples:
        t = time.perf_counter()
        fn(s)
        runs.append((time.perf_counter() - t) * 1000)
    runs.sort()
    return statistics.median(runs), runs[int(len(runs) * 0.95) - 1]


def existing_samples() -> tuple[list, list]:
    """On a `seed_scale` mesh: mid-layer products (they read others and are read), and
    products near the end of the graph (read, but by few)."""
    from django.db.models import Count

    from products.models import DataProduct

    rnd = random.Random(7)
    reading = DataProduct.objects.filter(status="published").annotate(
        ins=Count("input_ports", distinct=True), outs=Count("consumer_inputs", distinct=True)
    )
    middle_ids = list(
        reading.filter(ins__gt=0, outs__gte=3).order_by("pk").values_list("pk", flat=True)
    )
    late_ids = list(
        reading.filter(ins__gt=0, outs__range=(1, 2)).order_by("pk").values_list("pk", flat=True)
    )
    pick = lambda pool: [  # noqa: E731
        DataProduct.objects.select_related("domain").get(pk=rnd.choice(pool))
        for _ in range(SAMPLES)
    ]
    return pick(middle_ids), pick(late_ids)


def main() -> None:
    existing = "--existing" in sys.argv
    setup_test_environment()
    if not existing:
        name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        from products.lineage import graph as lineage
        from products.models import DataProduct, InputPort

        t = time.perf_counter()
        if existing:  # the mesh seed_scale generated in DATABASE_URL, left as it is
            print(
                f"{connection.vendor}: existing mesh, {DataProduct.objects.count()} products, "
                f"{InputPort.objects.filter(source_product__isnull=False).count()} edges"
            )
            user = (
                get_user_model()
                .objects.filter(email__endswith="@scale.mesh.example", memberships__isnull=True)
                .first()
                or get_user_model().objects.filter(is_staff=False).first()
            )
            middle, late = existing_samples()
        else:
            ids = build()
            print(
                f"{connection.vendor}: built {PRODUCTS} products, {EDGES} edges in "
                f"{time.perf_counter() - t:.1f} s (database {name})"
            )
            user = get_user_model().objects.create_user("reader")  # sees published products only
            rnd = random.Random(7)
            middle = [
                DataProduct.objects.select_related("domain").get(pk=rnd.choice(ids[4000:6000]))
                for _ in range(SAMPLES)
            ]
            late = [
                DataProduct.objects.select_related("domain").get(pk=rnd.choice(ids[8000:]))
                for _ in range(SAMPLES)
            ]
        rows = [
            (
                "edges_within down, depth 2",
                lambda p: lineage.edges_within([p.pk], depth=2, downstream=True),
                middle,
            ),
            (
                "edges_within up, depth 2",
                lambda p: lineage.edges_within([p.pk], depth=2, downstream=False),
                middle,
            ),
            (
                "product_graph depth 2 (nodes+visibility)",
                lambda p: lineage.product_graph(user=user, product=p, depth=2),
                middle,
            ),
            (
                "product_graph depth 3",
                lambda p: lineage.product_graph(user=user, product=p, depth=3),
                middle,
            ),
            (
                "impact, transitive (late product)"
                if existing
                else "impact, transitive (layer 9 product)",
                lambda p: lineage.impact(user=user, product=p),
                late,
            ),
            (
                "impact, transitive (mid-layer product)"
                if existing
                else "impact, transitive (layer 5 product)",
                lambda p: lineage.impact(user=user, product=p),
                middle,
            ),
        ]
        for label, fn, samples in rows:
            fn(samples[0])  # warm up
            sizes = (
                len(lineage.product_graph(user=user, product=samples[0], depth=2)["nodes"])
                if "graph" in label
                else ""
            )
            med, p95 = timed(fn, samples)
            print(f"  {label:45s} median {med:7.1f} ms   p95 {p95:7.1f} ms  {sizes}")
        if os.environ.get("BENCH_PROFILE"):
            import cProfile

            cProfile.runctx(
                "for p in middle[:10]: lineage.product_graph(user=user, product=p)",
                globals(),
                {"lineage": lineage, "middle": middle, "user": user},
                sort="tottime",
            )
        print(
            f"  mesh_map: {timed(lambda _: lineage.mesh_map(user=user), range(5))[0]:.1f} ms median"
        )
    finally:
        if not existing:
            connection.creation.destroy_test_db(name, verbosity=0)


if __name__ == "__main__":
    main()
