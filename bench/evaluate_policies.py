"""Time evaluating every active policy over every product.

    DATABASE_URL=postgres://… python bench/evaluate_policies.py [--products 1000]

Works on whatever products exist (e.g. after `seed_demo` and `seed_scale`); with --products N it
first tops the mesh up to N products with bulk_create (3 ports x 8 fields each, some badly named).
It makes one active global policy per rule type if none is active. Not a test: prints numbers.
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meshportal.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from domains import services as domain_services  # noqa: E402
from domains.models import Domain, Team  # noqa: E402
from governance.models import Policy  # noqa: E402
from governance.policies import rules  # noqa: E402
from governance.policies import services as policy_services  # noqa: E402
from meshportal.audit import audit_context  # noqa: E402
from products.models import DataProduct, OutputPort, SchemaField  # noqa: E402


def top_up(n: int) -> None:
    missing = n - DataProduct.objects.count()
    if missing <= 0:
        return
    team = Team.objects.filter(slug="bench-team").first() or domain_services.team_create(
        slug="bench-team", name="Bench team"
    )
    domain = Domain.objects.filter(slug="bench").first() or domain_services.domain_create(
        slug="bench", name="Bench", owner_team=team
    )
    start = DataProduct.objects.filter(domain=domain).count()
    products = DataProduct.objects.bulk_create(
        [
            DataProduct(
                domain=domain,
                owner_team=team,
                slug=f"bench-{i}",
                name=f"Bench {i}",
                summary="A generated product for the benchmark",
                status="published",
                freshness_slo_hours=24 if i % 3 else None,
                classification="internal",
            )
            for i in range(start, start + missing)
        ],
        batch_size=1000,
    )
    if connection.vendor != "postgresql":  # SQLite's bulk_create returns no primary keys
        products = list(DataProduct.objects.filter(domain=domain, slug__startswith="bench-"))
    ports = OutputPort.objects.bulk_create(
        [
            OutputPort(
                product=p,
                slug=f"port-{j}",
                name=f"Port {j}",
                kind="table",
                location=f"bench.table_{j}",
            )
            for p in products
            for j in range(3)
        ],
        batch_size=2000,
    )
    if connection.vendor != "postgresql":
        ports = list(OutputPort.objects.filter(product__domain=domain))
    SchemaField.objects.bulk_create(
        [
            SchemaField(
                port=port,
                name=("BadName" if k == 7 and port.pk % 5 == 0 else f"field_{k}"),
                primary_key=k == 0,
                pii=k == 3 and port.pk % 7 == 0,
                description="described" if k % 2 else "",
                ordinal=k,
            )
            for port in ports
            for k in range(8)
        ],
        batch_size=5000,
    )


def ensure_policies() -> None:
    if Policy.objects.filter(status="active").exists():
        return
    for rule in rules.all_types():
        Policy.objects.create(
            key=f"bench-{rule.key}",
            title=f"Bench {rule.label}",
            rule_type=rule.key,
            status="active",
            parameters=rule.clean_params({}),
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--products", type=int, default=0, help="top the mesh up to N products")
    args = parser.parse_args()
    with audit_context(door="command"):
        top_up(args.products)
        ensure_policies()
        n = DataProduct.objects.count()
        fields = SchemaField.objects.count()
        policies = Policy.objects.filter(status="active").count()
        for label in ("first run (writes every result)", "second run (writes only changes)"):
            with CaptureQueriesContext(connection) as ctx:
                t = time.perf_counter()
                policy_services.evaluate_policies(trigger="command")
                secs = time.perf_counter() - t
            print(
                f"{connection.vendor}: {policies} policies x {n} products ({fields} fields), "
                f"{label}: {secs:.2f} s, {len(ctx.captured_queries)} queries"
            )


if __name__ == "__main__":
    main()
