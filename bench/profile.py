"""Profile one page in-process against the benchmark database: SQL (with times) and pyinstrument.

python -m bench.profile /products/?q=orders [--user USERNAME] [--sql] [--html out.html]
"""

import argparse
import os
import sys
import time

from bench.__main__ import DEFAULT_DB, bench_env, mesh_facts, setup_django


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.profile")
    p.add_argument("url")
    p.add_argument("--user", default="")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--sql", action="store_true", help="print every query with its time")
    p.add_argument("--html", default="", help="write pyinstrument's HTML report here")
    args = p.parse_args()
    # The bench's own settings (the shared Redis cache, its key prefix, quiet logs), so that a
    # profile shows what `python -m bench` measures: with a per-process cache the navigation
    # badges and the home page's shared part were recomputed on every request.
    env = bench_env(os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    setup_django({**env, "SECRET_KEY": "profile", "ALLOWED_HOSTS": "testserver"})
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from pyinstrument import Profiler

    facts = mesh_facts()
    url = args.url.format(**facts["vars"], search="/products/")
    client = Client()
    client.force_login(get_user_model().objects.get(username=args.user or facts["user"]))
    client.get(url)  # warm-up
    queries = []

    def timed(execute, sql, params, many, context):
        t0 = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            queries.append(((time.perf_counter() - t0) * 1000, sql))

    profiler = Profiler(interval=0.0005)
    with connection.execute_wrapper(timed):
        profiler.start()
        t0 = time.perf_counter()
        for _ in range(args.repeat):
            response = client.get(url)
        total = (time.perf_counter() - t0) * 1000 / args.repeat
        profiler.stop()
    per = len(queries) // args.repeat
    sql_ms = sum(t for t, _ in queries) / args.repeat
    print(
        f"{url}: HTTP {response.status_code}, {total:.1f} ms per request, {per} queries "
        f"taking {sql_ms:.1f} ms",
        file=sys.stderr,
    )
    if args.sql:
        for t, sql in sorted(queries[:per], reverse=True):
            print(f"{t:8.1f} ms  {sql[:400]}")
    print(profiler.output_text(unicode=True, color=False, show_all=False))
    if args.html:
        with open(args.html, "w") as f:
            f.write(profiler.output_html())


if __name__ == "__main__":
    main()
