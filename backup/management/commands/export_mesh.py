"""python manage.py export_mesh DIR"""

from django.core.management.base import BaseCommand

from backup import mesh as backup


class Command(BaseCommand):
    help = (
        "Write the whole mesh to DIR as YAML (each product as its ODCS v3 contract, plus users, "
        "teams, domains, data sources, glossary, product state and policies). Re-exporting an "
        "unchanged mesh gives byte-identical files, so DIR can live in git."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory", help="where to write (created if missing)")

    def handle(self, *args, directory, **options):
        counts = backup.export_mesh(directory)
        self.stdout.write(
            f"Exported to {directory}: " + ", ".join(f"{n:,} {what}" for what, n in counts.items())
        )
