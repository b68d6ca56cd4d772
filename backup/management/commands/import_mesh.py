"""python manage.py import_mesh DIR [--user NAME] [--force]"""

from django.core.management.base import BaseCommand, CommandError

from backup import mesh as backup


class Command(BaseCommand):
    help = (
        "Restore a backup written by export_mesh into an empty portal, in one transaction: "
        "bad input is reported with its file and line, and then nothing changes."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory", help="a directory written by export_mesh")
        parser.add_argument(
            "--user", help="restore as this user (default: the backup's first superuser)"
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="import even though the portal already holds teams, domains or products",
        )

    def handle(self, *args, directory, user, force, **options):
        try:
            counts = backup.import_mesh(directory, user=user, force=force)
        except backup.BackupError as e:
            raise CommandError(f"{e} — nothing was imported.") from e
        self.stdout.write(
            f"Imported from {directory}: "
            + ", ".join(f"{n:,} {what}" for what, n in counts.items())
        )
