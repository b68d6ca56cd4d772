"""Backup and restore benchmark (issue 17): `import_mesh` of the generated mesh's backup.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mesh_bench \\
    CELERY_BROKER_URL=redis://127.0.0.1:6379/15 python -m bench.restore

Exports DATABASE_URL's mesh (`make bench` seeds 10,000 products there) with `export_mesh` into a
temporary folder, then restores it with `import_mesh` into a throwaway test database (test_<name>,
created, migrated and dropped here), as its first superuser `restorer`, counting the statements.
Target: the 10,000-product backup in ≤ 5 minutes, all or nothing (one transaction) and through the
same validation as a contract upload. Writes bench/results/restore.json and restore.md and the
table between `<!-- restore:… -->` in docs/benchmarks.md (`--no-docs`: not).
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
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
RESTORE_MAX_SECONDS = 300  # for 10,000 products


def log(msg: str) -> None:
    print(f"[bench.restore] {msg}", flush=True)


def counted(fn):
    count = [0]

    def counter(execute, sql, params, many, context):
        count[0] += 1
        return execute(sql, params, many, context)

    t0, c0 = time.perf_counter(), time.process_time()
    with connection.execute_wrapper(counter):
        out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0, count[0]


def run(folder: Path) -> tuple[str, list[dict]]:
    from backup.mesh import export_mesh, import_mesh
    from products.models import DataProduct, SchemaField

    products = DataProduct.objects.count()
    fields = SchemaField.objects.count()
    version = connection.cursor().connection.info.server_version
    log(f"exporting {products:,} products ({fields:,} fields) to {folder}")
    _, export_s, export_cpu, export_q = counted(lambda: export_mesh(folder))
    log(f"exported in {export_s:.1f} s; restoring into a fresh database")
    setup_test_environment()
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        from django.contrib.auth import get_user_model

        get_user_model().objects.create_superuser("restorer", "restorer@example.com", None)
        counts, seconds, cpu, queries = counted(lambda: import_mesh(folder, user="restorer"))
        restored = DataProduct.objects.count()
    finally:
        connection.creation.destroy_test_db(name, verbosity=0)
    limit = RESTORE_MAX_SECONDS * products / 10_000
    return f"{connection.vendor} {version}", [
        {
            "name": f"export_mesh of {products:,} products",
            "seconds": round(export_s, 1),
            "cpu_seconds": round(export_cpu, 1),
            "queries": export_q,
            "target": "",
            "met": True,
            "detail": f"{fields:,} fields",
        },
        {
            "name": f"import_mesh of {products:,} products",
            "seconds": round(seconds, 1),
            "cpu_seconds": round(cpu, 1),
            "queries": queries,
            "target": f"≤ {limit:g} s ({RESTORE_MAX_SECONDS} s per 10,000 products)",
            "met": seconds <= limit and restored == products,
            "detail": ", ".join(f"{v:,} {k}" for k, v in counts.items()),
        },
    ]


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        f"Measured {report['finished']} on {m['cpus']} CPUs, Python {m['python']}, "
        f"{m['database']} (load average {m['load_average'][0]} at the end), commit "
        f"{report['commit']} (`python -m bench.restore`).",
        "",
        "| scenario | time | CPU | SQL queries | target | | restored |",
        "|---|--:|--:|--:|---|---|---|",
    ]
    for r in report["results"]:
        lines.append(
            f"| {r['name']} | {r['seconds']} s | {r['cpu_seconds']} s | {r['queries']:,} | "
            f"{r['target']} | {'met' if r['met'] else 'not met'} | {r['detail']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.restore", description=__doc__.split("\n")[0])
    p.add_argument("--no-docs", action="store_true", help="leave docs/benchmarks.md alone")
    p.add_argument("--output", default=str(RESULTS / "restore"), help="path without extension")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="mesh-backup-") as tmp:
        database, results = run(Path(tmp))
    from bench.__main__ import git_commit

    commit = git_commit()
    report = {
        "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "database": database,
            "load_average": [round(x, 2) for x in os.getloadavg()],
        },
        "results": results,
    }
    for r in results:
        log(
            f"{r['name']:36} {r['seconds']:8.1f} s {r['queries']:8,} queries  target "
            f"{r['target'] or '-'}: {'met' if r['met'] else 'NOT MET'}  ({r['detail']})"
        )
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    table = markdown(report)
    out.with_suffix(".md").write_text(table)
    if not args.no_docs and out == RESULTS / "restore":
        from bench.__main__ import update_benchmarks_doc

        update_benchmarks_doc(table, marker="restore")


if __name__ == "__main__":
    main()
