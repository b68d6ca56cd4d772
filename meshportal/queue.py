"""Hand tasks to Celery without letting a broker outage break the action that asked.

The one way the portal queues work. Services write, then queue on commit:

    from meshportal import queue
    queue.enqueue_on_commit(tasks.run_checks, [run.pk], options={"queue": "quality"})

so a task never runs before the rows it reads are committed, and a rolled-back change queues
nothing. `enqueue()` sends at once (for a door that answers "queued" and wrote nothing).

When the broker is unreachable the task is stored as a PendingTask row (with its options:
queue, countdown) and sent again by send_pending_tasks (beat, every minute) once the broker is
back. Arguments and options must be JSON. With Celery's task_always_eager (tests) the task runs
in-line, as delay() would.
"""

import logging
from dataclasses import dataclass

from celery import Celery
from django.conf import settings
from django.contrib import messages
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from meshportal.models import PendingTask

log = logging.getLogger(__name__)

# What publishing raises when the broker is down (redis-py errors are wrapped by kombu, but
# a bare socket error can still surface on some transports).
BROKER_ERRORS = (KombuOperationalError, ConnectionError, OSError, TimeoutError)
# Fail fast: one quick retry, then record the task instead of keeping the user waiting.
PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
STATUS_CACHE_KEY = "meshportal:queue-status"
STATUS_CACHE_SECONDS = 30
SEND_BATCH = 500


@dataclass(frozen=True)
class EnqueueResult:
    queued: bool
    pending_id: int | None = None

    @property
    def message(self) -> str:
        if self.queued:
            return "The job was queued."
        return (
            "The task queue is unreachable right now. Your request was saved and will run "
            "automatically when the queue is back."
        )

    @property
    def level(self) -> int:
        return messages.SUCCESS if self.queued else messages.WARNING


def _publish(task_name: str, args, kwargs, options) -> None:
    app = _app()
    app.send_task(
        task_name,
        args=args,
        kwargs=kwargs,
        retry=True,
        retry_policy=PUBLISH_RETRY_POLICY,
        **options,
    )


def _app() -> Celery:
    from meshportal.celery import app

    return app


def enqueue(task, *args, **kwargs) -> EnqueueResult:
    """Send `task` (a Celery task or its name) with args; on a broker failure, keep it for later.

    Celery options (queue, countdown, ...) go in the `options` keyword argument:
    enqueue(task, 1, options={"queue": "quality"}).
    """
    options = kwargs.pop("options", {}) or {}
    name = task if isinstance(task, str) else task.name
    app = _app()
    if app.conf.task_always_eager:
        app.tasks[name].apply(args=list(args), kwargs=kwargs)
        return EnqueueResult(queued=True)
    try:
        _publish(name, list(args), kwargs, options)
    except BROKER_ERRORS as exc:
        log.warning("Broker unavailable, task %s kept for later: %s", name, type(exc).__name__)
        pending = PendingTask.objects.create(
            task_name=name,
            args=list(args),
            kwargs=kwargs,
            options=options,
            last_error=f"{type(exc).__name__}: {exc}"[:500],
        )
        cache.delete(STATUS_CACHE_KEY)
        return EnqueueResult(queued=False, pending_id=pending.pk)
    return EnqueueResult(queued=True)


def enqueue_on_commit(task, *args, **kwargs) -> EnqueueResult | None:
    """enqueue() once the current transaction commits (nothing if it rolls back). With no
    transaction open it sends at once and returns the result; otherwise None (use tell())."""
    sent: list[EnqueueResult] = []
    transaction.on_commit(lambda: sent.append(enqueue(task, *args, **kwargs)))
    return sent[0] if sent else None


def tell(request, queued_text: str, result: EnqueueResult | None = None) -> None:
    """The message after work was handed to enqueue_on_commit(): queued, or, with the broker
    down, saved for later. Without its result at hand (still waiting for the commit), the
    broker's status decides."""
    if result is None:
        result = EnqueueResult(queued=status()["broker_ok"])
    if result.queued:
        messages.success(request, queued_text)
    else:
        messages.add_message(request, result.level, result.message)


def send_pending() -> dict[str, int]:
    """Send stored tasks again, oldest first; stop at the first broker failure."""
    sent = failed = 0
    with transaction.atomic():
        rows = list(
            PendingTask.objects.select_for_update(skip_locked=True).filter(sent_at__isnull=True)[
                :SEND_BATCH
            ]
        )
        for row in rows:
            try:
                _publish(row.task_name, row.args, row.kwargs, row.options)
            except BROKER_ERRORS as exc:
                row.attempts += 1
                row.last_error = f"{type(exc).__name__}: {exc}"[:500]
                row.save(update_fields=["attempts", "last_error"])
                failed += 1
                break
            row.sent_at = timezone.now()
            row.save(update_fields=["sent_at"])
            sent += 1
    cache.delete(STATUS_CACHE_KEY)
    if sent or failed:
        log.info("Pending tasks: %d sent, %d failed", sent, failed)
    return {"sent": sent, "failed": failed}


def status() -> dict:
    """Broker reachable? How many tasks wait? Cached for 30 s: the staff banner asks per page."""
    cached = cache.get(STATUS_CACHE_KEY)
    if cached is not None:
        return cached
    from meshportal.health import broker_ping

    try:
        broker_ok = broker_ping(timeout=0.5)[0]
    except Exception:  # noqa: BLE001 - any failure means "down" for the banner
        broker_ok = False
    result = {
        "broker_ok": broker_ok,
        "pending": PendingTask.objects.filter(sent_at__isnull=True).count(),
        "broker_is_embedded": not settings.BROKER_IS_REDIS,
    }
    cache.set(STATUS_CACHE_KEY, result, STATUS_CACHE_SECONDS)
    return result
