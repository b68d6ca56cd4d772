from django.core.management.base import BaseCommand

from governance.models import Compliance, EvaluationRun
from governance.policies import services as policy_services
from meshportal.audit import audit_context


class Command(BaseCommand):
    help = "Evaluate every active policy over every live data product, now."

    def handle(self, *args, **options):
        with audit_context(door="command"):
            run = policy_services.evaluate_policies(trigger=EvaluationRun.Trigger.COMMAND)
        failing = Compliance.objects.filter(outcome=Compliance.Outcome.FAIL).count()
        secs = (run.finished_at - run.started_at).total_seconds()
        self.stdout.write(
            self.style.SUCCESS(
                f"Evaluated {run.policies} policies over {run.products} products in {secs:.1f} s: "
                f"{run.changed} outcomes changed, {failing} failing."
            )
        )
