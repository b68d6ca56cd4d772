"""Quality tasks: the every-minute dispatcher (beat), the runner on the `quality` queue, and
webhook delivery. Thin callers of governance.quality.services."""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from governance.quality import services
from meshportal.audit import audit_context


@shared_task(name="governance.tasks.quality.dispatch_due_checks")
def dispatch_due_checks() -> int:
    with audit_context(door="task"):
        return services.dispatch_due()


@shared_task(
    name="governance.tasks.quality.run_quality_checks",
    acks_late=True,
    reject_on_worker_lost=True,
    # The portal's own database hiccuping is transient; a broken data source is not (it gives
    # error results, not retries).
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=5,
    retry_backoff_max=120,
    max_retries=5,
)
def run_quality_checks(run_ids: list[int]) -> dict:
    with audit_context(door="task"):
        return services.execute_runs(run_ids=run_ids)


@shared_task(
    bind=True, name="governance.tasks.quality.deliver_webhook", acks_late=True, max_retries=6
)
def deliver_webhook(self, delivery_id: int) -> str:
    final = self.request.retries >= self.max_retries
    try:
        return services.webhook_deliver(delivery_id=delivery_id, final=final)
    except services.DeliveryFailed as e:
        raise self.retry(countdown=min(10 * 2**self.request.retries, 3600), exc=e) from None
