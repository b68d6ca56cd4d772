from celery import shared_task

from meshportal import queue


@shared_task(name="meshportal.tasks.send_pending_tasks")
def send_pending_tasks() -> dict[str, int]:
    """Beat, every minute: send tasks the web process stored while the broker was down."""
    return queue.send_pending()
