"""python manage.py import_odps FILE... --user NAME [--dry-run]"""

from products.contracts import odps
from products.contracts import services as contracts
from products.management.document_import import DocumentImportCommand


class Command(DocumentImportCommand):
    help = (
        "Create or update data products from ODPS v1.1.0 documents, as --user would through "
        "the API (same rules). Exits non-zero if any document is rejected."
    )

    def import_text(self, text, *, actor, dry_run, options):
        with contracts.enforcing():
            return odps.odps_import(text=text, user=actor, dry_run=dry_run)

    def report(self, name, result, *, dry_run):
        for i in result.ignored:
            self.stdout.write(f"{name}: not taken: {i['path']}: {i['reason']}")
        for i in result.kept:
            self.stdout.write(f"{name}: kept as it came: {i['path']}")
        urn = result.product.urn if result.product else "(new product)"
        if not result.changed:
            self.stdout.write(f"{name}: {urn} unchanged")
            return
        self.stdout.write(f"{name}: {urn} {self.verb(result, dry_run=dry_run)}")
        for change in result.changes:
            self.stdout.write(f"  {change}")
