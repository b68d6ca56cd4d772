"""In-app notifications and their e-mails. Services call notify(); nothing else sends mail.

The in-app rows are written in the caller's transaction; the e-mails leave when it commits
(never over SMTP while the transaction holds its locks, and never for a change rolled back).
"""

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.core.mail import send_mass_mail
from django.db import transaction

from meshportal.fields import one_line
from meshportal.models import Notification

log = logging.getLogger(__name__)

_no_email: ContextVar[bool] = ContextVar("mesh_no_email", default=False)


@contextmanager
def without_email() -> Iterator[None]:
    """Within it notify() writes the in-app notifications but sends no e-mail (seed_demo: the
    demo's own actions are not news for the made-up people of the demo, nor for the console)."""
    token = _no_email.set(True)
    try:
        yield
    finally:
        _no_email.reset(token)


def notify(
    users: Iterable,
    *,
    kind: str,
    title: str,
    url: str = "",
    body: str = "",
    about: Any = None,
) -> int:
    """Create one notification per user (once each) and e-mail those who have an address.

    `about`: the object the notification speaks of (a product, ...). It reaches only those who
    may see it (can VIEW), whoever the caller listed: a title naming another team's draft
    must not tell an outsider that it exists."""
    recipients = {u.pk: u for u in users if u is not None and u.is_active}
    if about is not None:
        from meshportal.permissions import VIEW, can

        recipients = {pk: u for pk, u in recipients.items() if can(u, VIEW, about)}
    if not recipients:
        return 0
    # One line, within the column: titles carry names, and an e-mail subject with a line
    # break is refused by the mailer (the whole batch would be lost).
    title = one_line(title)[: Notification._meta.get_field("title").max_length]
    Notification.objects.bulk_create(
        [
            Notification(user=u, kind=kind, title=title, url=url, body=body)
            for u in recipients.values()
        ]
    )
    link = absolute_url(url)
    wants_mail = (
        []
        if _no_email.get()
        else [u for u in recipients.values() if u.email and email_wanted(u, kind)]
    )
    messages = [
        (
            f"[Mesh Portal] {title}",
            f"{body}\n\n{link}".strip(),
            settings.DEFAULT_FROM_EMAIL,
            [u.email],
        )
        for u in wants_mail
    ]
    if messages:
        transaction.on_commit(lambda: _send(messages, kind))
    return len(recipients)


def absolute_url(path: str = "") -> str:
    """A portal path as a link people can follow from an e-mail: on PORTAL_BASE_URL (which by
    default follows MESH_PORT, the port `make run` serves)."""
    base = settings.PORTAL_BASE_URL.rstrip("/")
    if not path:
        return base + "/"
    if path.startswith(("http://", "https://")):
        return path
    return base + ("" if path.startswith("/") else "/") + path


def _send(messages: list[tuple[str, str, str, list[str]]], kind: str) -> None:
    try:
        send_mass_mail(messages, fail_silently=False)
    except OSError:
        # A mail server outage must not undo the change that caused the notification.
        log.exception("Could not send %d notification e-mails of kind %s", len(messages), kind)


# The kinds a user may switch e-mail off for (preferences page); in-app notifications always
# arrive. Other kinds (access requests...) always e-mail.
SUBSCRIPTION_KINDS = {
    "publication": "A product is published",
    "major_version": "A new major contract version",
    "breaking_change": "A breaking change is announced",
    "deprecation": "A product is deprecated",
    "retirement": "A product is retired",
    "quality_change": "A product's quality state changes",
}


def email_wanted(user, kind: str) -> bool:
    """Whether the user wants e-mail for this kind: on unless they switched it off."""
    from meshportal.models import NotificationPreference

    if kind.startswith(("quality.", "incident.")):  # quality.failed, incident.opened, ...
        kind = "quality_change"
    elif kind == "contract_breaking":
        kind = "breaking_change"
    return not NotificationPreference.objects.filter(user=user, kind=kind, email=False).exists()


def preferences_get(*, user) -> dict[str, bool]:
    """{kind: wants e-mail} for every subscription kind."""
    from meshportal.models import NotificationPreference

    off = set(
        NotificationPreference.objects.filter(user=user, email=False).values_list("kind", flat=True)
    )
    return {k: k not in off for k in SUBSCRIPTION_KINDS}


def preferences_set(*, user, email_kinds: set[str]) -> None:
    """Switch e-mail on for email_kinds and off for the other subscription kinds."""
    from meshportal.models import NotificationPreference

    for kind in SUBSCRIPTION_KINDS:
        NotificationPreference.objects.update_or_create(
            user=user, kind=kind, defaults={"email": kind in email_kinds}
        )
