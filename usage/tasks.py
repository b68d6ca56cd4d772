"""Usage tasks (beat): the raw events' and portal analytics' retention, and the pg_stat_statements poll. Thin callers
of usage.services."""

from celery import shared_task

from meshportal.audit import audit_context
from usage import services


@shared_task(name="usage.tasks.purge_raw_events")
def purge_raw_events() -> int:
    return services.raw_events_purge()


@shared_task(name="usage.tasks.purge_analytics")
def purge_analytics() -> int:
    return services.analytics_purge()


@shared_task(name="usage.tasks.poll_pg_stat_statements", acks_late=True)
def poll_pg_stat_statements() -> dict[str, str]:
    with audit_context(door="task"):
        return services.pg_stat_statements_poll_all()
