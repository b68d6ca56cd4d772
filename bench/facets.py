"""Facet counts, old and new path interleaved in one process against the bench database:
`python -m bench.facets [--user NAME] [--rounds N]`.

The old path (one grouped count per facet, each repeating the full-text match and the
visibility test, SQLite's path) and the PostgreSQL one (`_over_matches`: the matching set once,
in a MATERIALIZED CTE) run alternately on the same queries, so load on a shared host hits both
alike. Prints the median and minimum of each in ms and checks that they count the same."""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUERIES = [
    {"q": "orders"},
    {"q": "orders", "status": ["published"]},
    {"q": "customer id"},
    {},
]


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.facets", description=__doc__.split("\n")[0])
    p.add_argument("--user", default="", help="sign-in name (default: an owner of a team)")
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args()
    os.environ.setdefault(
        "DATABASE_URL",
        os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mesh_bench"),
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meshportal.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from meshportal.permissions import visible
    from products.discovery import facets, shapes
    from products.discovery.search import search_products
    from products.models import DataProduct

    users = get_user_model().objects
    user = (
        users.get(username=args.user)
        if args.user
        else users.filter(memberships__role="owner").order_by("pk").first()
    )

    def key(rows):
        return sorted((r["facet_key"], r["value"], r["label"], r["n"]) for r in rows)

    for data in QUERIES:
        result = facets.search(user=user, data=data)
        fs, cleaned = result.filterset, result.cleaned
        base = visible(user, DataProduct.objects.all())
        searched = search_products(base, data["q"]) if data.get("q") else None
        pool = base.filter(pk__in=searched.values("pk")) if searched is not None else base
        active = [n for n, v in cleaned.items() if n != "q" and shapes.chosen(v)]
        paths = {
            "per facet": lambda: facets._per_facet(pool, fs, cleaned),  # noqa: B023
            "over matches": lambda: facets._over_matches(
                searched if searched is not None else base,  # noqa: B023
                fs,  # noqa: B023
                cleaned,  # noqa: B023
                active,  # noqa: B023
            ),
        }
        times: dict[str, list[float]] = {name: [] for name in paths}
        rows = {}
        for _ in range(args.rounds):
            for name, fn in paths.items():
                t = time.perf_counter()
                rows[name] = key(fn())
                times[name].append((time.perf_counter() - t) * 1000)
        same = rows["per facet"] == rows["over matches"]
        shown = ", ".join(
            f"{name} {statistics.median(ts):.0f} ms (min {min(ts):.0f})"
            for name, ts in times.items()
        )
        print(f"{data}: {shown}; same counts: {same}")


if __name__ == "__main__":
    main()
