"""In-app notifications and their e-mails. Services call notify(); nothing else sends mail.

The in-app rows are written in the caller's transaction; the e-mails leave when it commits
(never over SMTP while the transaction holds its locks, and never for a change rolled back).
"""

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.conf import settings
from django.core.mail import send_mass_mail
from django.db import transaction

from meshportal import cache as portal_cache
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


@dataclass(frozen=True)
class Notice:
    """One notification (one row per recipient) for notify_many()."""

    users: Iterable
    kind: str
    title: str
    url: str = ""
    body: str = ""
    about: Any = None


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
    return notify_many([Notice(users, kind, title, url, body, about)])


def notify_many(notices: Iterable[Notice]) -> int:
    """notify() for many notices at once (bulk paths: a sweep alerting on thousands of checks):
    one insert for all their rows, who may see the products they speak of asked in bulk
    (permissions.product_viewers), one query for the e-mail preferences, and one e-mail per
    recipient on commit: the notice itself, or a digest listing the notices when one person
    gets several. Returns the notifications written."""
    from meshportal.permissions import VIEW, can, product_viewers

    kept = []
    for n in notices:
        recipients = {u.pk: u for u in n.users if u is not None and u.is_active}
        if recipients:
            kept.append((n, recipients))
    products = [
        (u, n.about) for n, recipients in kept if _is_product(n.about) for u in recipients.values()
    ]
    viewers = product_viewers(products) if products else set()
    rows = []
    mail: dict[int, list[tuple[Notice, str]]] = defaultdict(list)  # user id -> (notice, title)
    users: dict[int, Any] = {}
    max_title = Notification._meta.get_field("title").max_length
    for n, recipients in kept:
        if _is_product(n.about):
            recipients = {pk: u for pk, u in recipients.items() if (pk, n.about.pk) in viewers}
        elif n.about is not None:
            recipients = {pk: u for pk, u in recipients.items() if can(u, VIEW, n.about)}
        # One line, within the column: titles carry names, and an e-mail subject with a line
        # break is refused by the mailer (the whole batch would be lost).
        title = one_line(n.title)[:max_title]
        for pk, u in recipients.items():
            rows.append(Notification(user=u, kind=n.kind, title=title, url=n.url, body=n.body))
            if u.email and not _no_email.get():
                mail[pk].append((n, title))
                users[pk] = u
    if not rows:
        return 0
    Notification.objects.bulk_create(rows)  # one INSERT (the backend splits it if it must)
    portal_cache.forget_users(portal_cache.NAV_COUNTS)  # bulk_create sends no signals
    off = _emails_off(set(mail))
    by_kind: dict[str, list[tuple[str, str, str, list[str]]]] = defaultdict(list)
    for pk, items in mail.items():
        items = [(n, title) for n, title in items if (pk, preference_kind(n.kind)) not in off]
        if not items:
            continue
        n, title = items[0]
        if len(items) == 1:
            subject, text = title, f"{n.body}\n\n{absolute_url(n.url)}".strip()
        else:
            subject = f"{len(items)} notifications: {title} …"[:max_title]
            text = "\n\n".join(f"{t}\n{absolute_url(x.url)}" for x, t in items)
        by_kind[n.kind].append(
            (f"[Mesh Portal] {subject}", text, settings.DEFAULT_FROM_EMAIL, [users[pk].email])
        )
    for kind, messages in by_kind.items():
        transaction.on_commit(partial(_send, messages, kind))
    return len(rows)


def _is_product(obj) -> bool:
    """A data product (asked in bulk); meshportal does not import the products app."""
    meta = getattr(obj, "_meta", None)
    return meta is not None and meta.label == "products.DataProduct"


def _emails_off(user_ids: set[int]) -> set[tuple[int, str]]:
    """(user id, preference kind) each user switched e-mail off for: one query."""
    from meshportal.models import NotificationPreference

    if not user_ids:
        return set()
    return set(
        NotificationPreference.objects.filter(user_id__in=user_ids, email=False).values_list(
            "user_id", "kind"
        )
    )


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
    return (user.pk, preference_kind(kind)) not in _emails_off({user.pk})


def preference_kind(kind: str) -> str:
    """The preference a notification kind falls under (quality.failed: quality_change)."""
    if kind.startswith(("quality.", "incident.")):  # quality.failed, incident.opened, ...
        return "quality_change"
    if kind == "contract_breaking":
        return "breaking_change"
    return kind


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
