from django.core.management.base import BaseCommand

from meshportal import queue


class Command(BaseCommand):
    help = "Send the tasks stored while the broker was unreachable (beat does this every minute)."

    def handle(self, *args, **options):
        result = queue.send_pending()
        self.stdout.write(f"{result['sent']} sent, {result['failed']} failed")
        if result["failed"]:
            raise SystemExit(1)
