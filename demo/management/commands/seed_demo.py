from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from demo import analytics as analytics_demo
from demo import lake as demo_lake
from demo import lineage as lineage_demo
from demo import policies as policy_demo
from demo import products as demo
from demo import quality as quality_demo
from demo import usage as usage_demo
from demo import warehouse as demo_warehouse
from domains import services as domain_services
from domains.models import Domain, Team
from governance.models import DataSource
from meshportal.audit import audit_context
from meshportal.notifications import without_email
from meshportal.permissions import GOVERNANCE_GROUP, PLATFORM_GROUP
from products import services
from products.discovery import semantic
from products.discovery.search import deferred_indexing
from products.models import DataProduct


class Command(BaseCommand):
    help = "Load the demo mesh and its warehouse. Idempotent: a second run changes no row."

    def handle(self, *args, **options):
        # The demo's own actions (votes, waivers, requests) leave in-app notifications but no
        # e-mail: with no mail server they would be printed to the console.
        with without_email():
            with audit_context(door="command"), transaction.atomic(), deferred_indexing():
                created = seed()
                lineage_demo.seed()
                policy_demo.seed()
            tables = demo_warehouse.build(
                [p for spec in demo.PRODUCTS for p in spec["ports"] if p.get("table")]
            )
            demo_lake.build([p for spec in demo.PRODUCTS for p in spec["ports"] if p.get("lake")])
            with audit_context(door="command"), transaction.atomic():
                quality_demo.seed()  # checks on the warehouse tables, due at once
                usage_demo.seed()  # a fortnight of query log: the Usage tab, observed lineage
                analytics_demo.seed()  # a fortnight of page views and searches: /analytics/
            # Semantic search's vectors now rather than in a task (only those whose text
            # changed: a second run computes none).
            semantic.embed(DataProduct.objects.all())
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo mesh ready: {created} new products, {tables} new warehouse tables. "
                f"Sign in as olivia / {demo.PASSWORD} (see README)."
            )
        )


def seed() -> int:
    User = get_user_model()
    platform, _ = Group.objects.get_or_create(name=PLATFORM_GROUP)
    council, _ = Group.objects.get_or_create(name=GOVERNANCE_GROUP)
    users = {}
    for username, (first, last, email, staff) in demo.USERS.items():
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User(
                username=username,
                first_name=first,
                last_name=last,
                email=email,
                is_staff=staff,
                is_superuser=staff,
            )
            user.set_password(demo.PASSWORD)
            user.save()
            if username in demo.PLATFORM:
                user.groups.add(platform)
            if username in demo.COUNCIL:
                user.groups.add(council)
        users[username] = user

    teams = {}
    for slug, (name, description, contact, members) in demo.TEAMS.items():
        team = Team.objects.filter(slug=slug).first()
        if team is None:
            team = domain_services.team_create(
                slug=slug, name=name, description=description, contact_email=contact
            )
            for username, role in members.items():
                domain_services.membership_set(team=team, user=users[username], role=role)
        teams[slug] = team

    domains: dict[str, Domain] = {}
    for slug, (name, team_slug, parent, description) in demo.DOMAINS.items():
        domain = Domain.objects.filter(slug=slug).first()
        if domain is None:
            domain = domain_services.domain_create(
                slug=slug,
                name=name,
                owner_team=teams[team_slug],
                description=description,
                parent=domains.get(parent) if parent else None,
            )
        domains[slug] = domain

    source = _demo_source()
    lake = demo_lake.lake_source()
    created = 0
    for spec in demo.PRODUCTS:
        if DataProduct.objects.filter(domain=domains[spec["domain"]], slug=spec["slug"]).exists():
            continue
        services.product_create(
            domain=domains[spec["domain"]],
            slug=spec["slug"],
            name=spec["name"],
            summary=spec["summary"],
            description=spec["description"],
            classification=spec["classification"],
            tags=spec["tags"],
            freshness_slo_hours=spec["slo"],
            ports=[_port(p, lake if p.get("lake") else source) for p in spec["ports"]],
        )
        product = DataProduct.objects.get(domain=domains[spec["domain"]], slug=spec["slug"])
        if spec["status"] != "draft":
            services.product_publish(product=product)
        if spec["status"] == "deprecated":
            services.product_deprecate(product=product)
        created += 1
    return created


def _demo_source() -> DataSource:
    source = DataSource.objects.filter(slug="demo-warehouse").first()
    reader = settings.MESH_DEMO_WAREHOUSE_ROLE
    if source is not None:
        if source.kind == "postgresql" and source.user != reader:
            # Older demos connected as the portal's own (superuser) role: move to the reader.
            source.user = reader
            source.save(update_fields=["user"])
        return source
    db = settings.DATABASES["default"]
    if demo_warehouse.is_postgres():
        return DataSource.objects.create(
            slug="demo-warehouse",
            name="Demo warehouse",
            kind="postgresql",
            host=db.get("HOST") or "127.0.0.1",
            port=int(db.get("PORT") or 5432),
            database=db["NAME"],
            # A login role that can only SELECT the demo schema (demo_warehouse.grant_reader).
            user=reader,
            password_env="DEMO_WAREHOUSE_PASSWORD",  # noqa: S106 - a variable name  # nosec B106
            default_schema=settings.MESH_DEMO_WAREHOUSE_SCHEMA,
            description="Demo tables in a schema of the portal's PostgreSQL database, read "
            f"as {reader} (SELECT on that schema only).",
        )
    return DataSource.objects.create(
        slug="demo-warehouse",
        name="Demo warehouse",
        kind="sqlite",
        database=settings.MESH_DEMO_WAREHOUSE_PATH,
        default_schema="main",
        description="Demo tables in a SQLite file beside the portal's database.",
    )


def _port(spec: dict, source: DataSource) -> dict:
    port = {
        "slug": spec["slug"],
        "name": spec["name"],
        "kind": spec["kind"],
        "format": spec.get("format", ""),
    }
    types = demo_warehouse.physical_type
    if spec.get("table"):
        port["location"] = f"{demo_warehouse.schema_name()}.{spec['table']}"
        port["data_source"] = source
    elif spec.get("lake"):  # files in the demo lake, read through DuckDB
        port["location"] = spec["lake"]
        port["data_source"] = source
        types = demo_lake.physical_type
    else:
        port["location"] = spec.get("location", "")
    port["fields"] = [
        {k: v for k, v in f.items() if k != "gen"} | {"physical_type": types(f["logical_type"])}
        for f in spec["fields"]
    ]
    return port
