"""python manage.py import_contract FILE... --user NAME [--dry-run]"""

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from meshportal.audit import audit_context
from products.contracts import services as contracts


class Command(BaseCommand):
    help = (
        "Create or update data products from ODCS v3 YAML documents, as --user would "
        "through the API (same rules). Exits non-zero if any document is rejected."
    )

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", help="ODCS YAML files")
        parser.add_argument("--user", required=True, help="the user to act as (their rights apply)")
        parser.add_argument("--dry-run", action="store_true", help="only show what would change")
        parser.add_argument("--domain", help="the domain (slug) for documents that name none")

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
                    result = contracts.contract_import(
                        text=text, user=actor, dry_run=dry_run, domain_slug=options["domain"]
                    )
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
                urn = result.product.urn if result.product else "(new product)"
                for r in result.not_run:
                    where = r["port"] + (f".{r['column']}" if r["column"] else "")
                    self.stdout.write(f"{name}: rule {r['rule']} ({where}) not run: {r['reason']}")
                if not result.changed:
                    self.stdout.write(f"{name}: {urn} unchanged")
                    continue
                verb = "would change" if dry_run else ("created" if result.created else "updated")
                self.stdout.write(
                    f"{name}: {urn} {verb}"
                    + (
                        f" (contract version {result.version.number})"
                        if result.version and not dry_run
                        else ""
                    )
                )
                for c in result.changes:
                    self.stdout.write(f"  {'BREAKING ' if c.breaking else ''}{c.message}")
        if failed:
            raise CommandError(
                f"{failed} of {len(files)} documents rejected; nothing changed for them."
            )
