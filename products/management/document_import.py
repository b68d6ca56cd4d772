"""The import commands' shared loop (`import_contract`, `import_odps`): read each file under the
same size and encoding rules as the API, import it as --user, print what changed, and exit
non-zero when a document is refused (nothing changes for it)."""

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from meshportal.audit import audit_context
from products.contracts import services as contracts


class DocumentImportCommand(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", help="the documents (YAML)")
        parser.add_argument("--user", required=True, help="the user to act as (their rights apply)")
        parser.add_argument("--dry-run", action="store_true", help="only show what would change")

    def import_text(self, text: str, *, actor, dry_run: bool, options: dict):
        raise NotImplementedError

    def report(self, name: str, result, *, dry_run: bool) -> None:
        raise NotImplementedError

    def handle(self, *args, files, user, dry_run, **options):
        actor = get_user_model().objects.filter(username=user, is_active=True).first()
        if actor is None:
            raise CommandError(f"No active user “{user}”.")
        failed = 0
        with audit_context(actor=actor, door="command"):
            for name in files:
                try:
                    path = Path(name)
                    if path.stat().st_size > contracts.max_bytes():  # before reading it
                        raise ValidationError(
                            {"document": contracts.too_large_message(path.stat().st_size)}
                        )
                    text = contracts.decode(path.read_bytes())
                    result = self.import_text(text, actor=actor, dry_run=dry_run, options=options)
                except OSError as e:
                    failed += 1
                    self.stderr.write(f"{name}: cannot read: {e}")
                    continue
                except PermissionDenied as e:
                    failed += 1
                    self.stderr.write(f"{name}: {e}")
                    continue
                except ValidationError as e:
                    failed += 1
                    for key, msgs in getattr(e, "message_dict", {"document": e.messages}).items():
                        for msg in msgs:
                            self.stderr.write(f"{name}: {key}: {msg}")
                    continue
                self.report(name, result, dry_run=dry_run)
        if failed:
            raise CommandError(
                f"{failed} of {len(files)} documents rejected; nothing changed for them."
            )

    def verb(self, result, *, dry_run: bool) -> str:
        return "would change" if dry_run else ("created" if result.created else "updated")
