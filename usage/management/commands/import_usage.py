"""`manage.py import_usage FILE --source SLUG [--format …]`: a query log file into the usage
store, through the same parser and service as the API."""

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from meshportal.audit import audit_context
from usage import formats, services

MAX_ERRORS_SHOWN = 20


class Command(BaseCommand):
    help = (
        "Import a query log into the usage store. Formats: "
        + "; ".join(f"{k}: {v}" for k, v in formats.FILE_FORMATS.items())
        + ". Bad lines are reported with the reason and skipped; the rest is stored in one "
        "transaction (--strict: any bad line stores nothing)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="The log file ('-' reads standard input).")
        parser.add_argument("--source", required=True, help="The data source's slug.")
        parser.add_argument(
            "--format", choices=sorted(formats.FILE_FORMATS), default="json", dest="fmt"
        )
        parser.add_argument(
            "--strict", action="store_true", help="Refuse the file if any line is bad."
        )

    def handle(self, *args, file, source, fmt, strict, **options):
        try:
            data_source = services.source_for(source)
        except ValidationError as e:
            raise CommandError(" ".join(e.messages)) from None
        try:
            text = Path(file).read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            raise CommandError(f"Cannot read {file}: {e.strerror}.") from None
        records, errors = formats.read_file(text, fmt)
        for error in errors[:MAX_ERRORS_SHOWN]:
            self.stderr.write(f"{error.field}: {error.reason}")
        if len(errors) > MAX_ERRORS_SHOWN:
            self.stderr.write(f"… and {len(errors) - MAX_ERRORS_SHOWN} more bad lines.")
        if errors and strict:
            raise CommandError(f"{len(errors)} bad lines; nothing was stored (--strict).")
        with audit_context(door="command"):
            run = services.usage_ingest(
                source=data_source,
                records=records,
                door="command",
                dialect=formats.FILE_DIALECTS.get(fmt, ""),
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {run.events} queries ({run.matched} on product ports, "
                f"{run.unparsed} unparsed SQL, {len(errors)} bad lines skipped)."
            )
        )
