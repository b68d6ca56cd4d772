"""`make bench`'s verdicts and tables: the fair ceiling's ratio and the scale curve."""

import bench.__main__ as bench_main
from bench.scenarios import CEILING, SCENARIOS, Scenario, in_curve


def test_a_page_under_its_share_of_the_ceiling_is_not_met():
    s = Scenario("product page", "/p/", p95_ms=15, min_ceiling=0.5)
    ok = {"status": "ok", "p95_ms": 14.0, "queries": 9, "ratio": 0.1, "ceiling_ratio": 0.6}
    assert bench_main.verdict(s, ok) == []
    slow = {**ok, "p95_ms": 16.0, "ceiling_ratio": 0.4}
    assert bench_main.verdict(s, slow) == [
        "p95 16.0 ms > 15 ms",
        "throughput 40% < 50% of ceiling",
    ]
    assert s.targets() == "p95 ≤ 15 ms, ≥ 50% of ceiling, ≤ 15 queries"


def test_the_ceiling_is_measured_and_the_curve_covers_search_product_page_and_api_list():
    assert CEILING in SCENARIOS and CEILING.target == "/ceiling/"
    curve = {s.name for s in SCENARIOS if in_curve(s)}
    assert {"product page", "API product list"} <= curve
    assert any(name.startswith("search: ") for name in curve)
    assert "home" not in curve


def test_each_curve_size_has_its_own_database():
    db = "postgres://postgres@127.0.0.1:5432/mesh_bench"
    assert bench_main.size_database(db, 10_000, 10_000) == db
    assert bench_main.size_database(db, 1_000, 10_000).endswith("/mesh_bench_1k")
    assert bench_main.size_database(db, 50_000, 10_000).endswith("/mesh_bench_50k")
    assert bench_main.size_database(db, 2_500, 10_000).endswith("/mesh_bench_2500")


def test_the_curve_table_prints_growth_and_the_target_at_the_largest_size():
    table = bench_main.curve_markdown(
        {
            "sizes": [1000, 10000, 50000],
            "load": {"1000": 1.0, "10000": 1.5, "50000": 2.0},
            "rows": [
                {
                    "name": "search: orders",
                    "p95_ms": {"1000": 5.0, "10000": 10.0, "50000": 45.0},
                    "target": "p95 ≤ 40 ms at 50,000",
                    "result": "not met: 45.0 ms",
                }
            ],
        }
    )
    assert "| search: orders | 5.0 | 10.0 | 45.0 | 2.0 | 4.5 | p95 ≤ 40 ms at 50,000 |" in table
    assert "load average 1.0, 1.5, 2.0" in table


def test_the_generated_meshs_labelled_queries_name_subjects_seed_scale_makes():
    from bench import semantic as bench_semantic
    from demo.scale import ENTITIES

    generated = bench_semantic.load_generated()
    assert len(bench_semantic.load_queries()) + len(generated) >= 30
    for item in generated:
        assert item["entities"] and set(item["entities"]) <= set(ENTITIES), item
        # Phrased without the subject's own words (the keyword search's blind spot).
        words = set(item["q"].lower().split())
        assert not words & {w for e in item["entities"] for w in e.split()}, item


def test_the_semantic_table_gives_each_mesh_and_the_gain_against_the_target():
    from bench import semantic as bench_semantic

    def part(count, keyword, hybrid):
        return {
            "count": count,
            "keyword": {"recall_at_10": keyword, "mrr": keyword},
            "hybrid": {"recall_at_10": hybrid, "mrr": hybrid},
        }

    demo, generated = part(36, 0.03, 0.81), {**part(24, 0.0, 0.43), "products": 400}
    table = bench_semantic.markdown(
        {
            "finished": "2026-12-05 13:00 UTC",
            "quality": {
                "demo": demo,
                "generated": generated,
                **bench_semantic._combined(demo, generated),
            },
        }
    )
    assert "| demo mesh (36 queries) | 3% | 81% | +78 points |" in table
    assert "| generated mesh, 400 products (24 queries) | 0% | 43% | +43 points |" in table
    # All 60 queries, each weighing the same: (36 * 0.78 + 24 * 0.43) / 60.
    assert "| **all 60 queries** | 2% | 66% | +64 points |" in table


def test_a_pages_ceiling_is_measured_in_turn_with_it():
    """The page's share of the ceiling comes from slices of each, one after the other, so that
    both see the same machine (a real HTTP server here: the requests' order is its log's)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        page, ceiling = bench_main.paired_throughput({}, base, "/page/", "/ceiling/", 2, 0.6)
    finally:
        server.shutdown()
    assert page > 0 and ceiling > 0
    runs = [path for i, path in enumerate(seen) if i == 0 or seen[i - 1] != path]
    assert runs == ["/ceiling/", "/page/"] * bench_main.PAIRED_ROUNDS
