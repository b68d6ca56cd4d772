from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from demo import scale
from meshportal.audit import audit_context


class Command(BaseCommand):
    help = (
        "Generate a large, deterministic mesh for benchmarks (bulk inserts; COPY on "
        "PostgreSQL). Generated users sign in with the password 'mesh-scale'."
    )

    def add_arguments(self, parser):
        d = scale.Options()
        parser.add_argument("--products", type=int, default=d.products)
        parser.add_argument("--domains", type=int, default=d.domains)
        parser.add_argument("--teams", type=int, default=d.teams)
        parser.add_argument("--ports-per-product", type=int, default=d.ports_per_product)
        parser.add_argument(
            "--fields-per-port",
            type=int,
            default=d.fields_per_port,
            help="average; each port gets between half and 1.5 times this",
        )
        parser.add_argument("--users", type=int, default=None, help="default: 5 per team")
        parser.add_argument("--seed", type=int, default=d.seed)
        parser.add_argument(
            "--lineage-edges", type=int, default=None, help="default: 3 per product"
        )
        parser.add_argument(
            "--checks-per-product",
            type=float,
            default=d.checks_per_product,
            help="quality checks per product, on average",
        )
        parser.add_argument(
            "--check-runs",
            type=int,
            default=None,
            help="quality check runs; default: 100 per product",
        )
        parser.add_argument(
            "--no-embeddings",
            action="store_true",
            help="leave out the semantic search vectors (`manage.py reindex` adds them later)",
        )
        parser.add_argument(
            "--reset", action="store_true", help="delete a previously generated mesh first"
        )

    def handle(self, *args, **o):
        options = scale.Options(
            products=o["products"],
            domains=o["domains"],
            teams=o["teams"],
            ports_per_product=o["ports_per_product"],
            fields_per_port=o["fields_per_port"],
            users=o["users"],
            seed=o["seed"],
            lineage_edges=o["lineage_edges"],
            checks_per_product=o["checks_per_product"],
            check_runs=o["check_runs"],
            embeddings=not o["no_embeddings"],
        )
        if (
            min(
                options.products,
                options.domains,
                options.teams,
                options.ports_per_product,
                options.fields_per_port,
                options.user_count,
            )
            < 1
        ):
            raise CommandError("Every size must be at least 1.")
        if options.edge_count < 0 or options.run_count < 0 or options.checks_per_product < 0:
            raise CommandError("Edges, checks and runs cannot be negative.")
        if problem := scale.size_problem(options.products, connection.vendor):
            raise CommandError(problem)
        progress = (lambda s: self.stderr.write(s)) if o["verbosity"] else (lambda s: None)
        with audit_context(door="command"):
            if o["reset"]:
                scale.reset(progress)
            elif n := scale.existing_size():
                raise CommandError(
                    f"A generated mesh is already here ({n:,} products); "
                    "pass --reset to replace it."
                )
            ctx = scale.generate(options, progress)
        summary = ", ".join(f"{k} {v:,}" for k, v in ctx.counts.items() if k != "seconds")
        self.stdout.write(
            self.style.SUCCESS(
                f"Generated mesh in {ctx.counts['seconds']}s: {summary}. "
                f"Sign in as any generated user with the password {scale.PASSWORD!r}."
            )
        )
