from celery import shared_task

from governance.models import EvaluationRun
from governance.policies import services as policy_services
from meshportal.audit import audit_context


@shared_task(name="governance.tasks.evaluate_policies")
def evaluate_policies(trigger: str = EvaluationRun.Trigger.SCHEDULE) -> int:
    with audit_context(door="task"):
        return policy_services.evaluate_policies(trigger=trigger).pk


@shared_task(name="governance.tasks.evaluate_changed_products")
def evaluate_changed_products() -> int | None:
    with audit_context(door="task"):
        run = policy_services.evaluate_changed_products()
        return run.pk if run else None
