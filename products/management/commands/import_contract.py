"""python manage.py import_contract FILE... --user NAME [--dry-run] [--domain SLUG]"""

from products.contracts import services as contracts
from products.management.document_import import DocumentImportCommand


class Command(DocumentImportCommand):
    help = (
        "Create or update data products from ODCS v3 YAML documents, as --user would "
        "through the API (same rules). Exits non-zero if any document is rejected."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--domain", help="the domain (slug) for documents that name none")

    def import_text(self, text, *, actor, dry_run, options):
        return contracts.contract_import(
            text=text, user=actor, dry_run=dry_run, domain_slug=options["domain"]
        )

    def report(self, name, result, *, dry_run):
        urn = result.product.urn if result.product else "(new product)"
        for r in result.not_run:
            where = r["port"] + (f".{r['column']}" if r["column"] else "")
            self.stdout.write(f"{name}: rule {r['rule']} ({where}) not run: {r['reason']}")
        if not result.changed:
            self.stdout.write(f"{name}: {urn} unchanged")
            return
        version = (
            f" (contract version {result.version.number})" if result.version and not dry_run else ""
        )
        self.stdout.write(f"{name}: {urn} {self.verb(result, dry_run=dry_run)}{version}")
        for c in result.changes:
            self.stdout.write(f"  {'BREAKING ' if c.breaking else ''}{c.message}")
