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
    one insert for all their rows, one query for the e-mail preferences, the e-mails in one
    batch on commit. Who may see a draft `about` is asked once per recipient of drafts (one
    query each), not per notice. Returns the notifications written."""
    notices = list(notices)
    kept: list[tuple[Notice, dict]] = []
    drafts_for: dict[int, set[int]] = defaultdict(set)  # user id -> draft products to ask about
    product_model = None
    users_by_pk: dict[int, Any] = {}
    for n in notices:
        recipients = {u.pk: u for u in n.users if u is not None and u.is_active}
        if recipients:
            kept.append((n, recipients))
        users_by_pk.update(recipients)
        if _is_draft(n.about):
            product_model = type(n.about)
            for pk in recipients:
                drafts_for[pk].add(n.about.pk)
    seen_drafts = _drafts_seen(product_model, users_by_pk, drafts_for)
    rows, mailed = [], []
    max_title = Notification._meta.get_field("title").max_length
    for n, recipients in kept:
        if n.about is not None:
            from meshportal.permissions import VIEW, can

            if _is_draft(n.about):
                recipients = {
                    pk: u for pk, u in recipients.items() if (pk, n.about.pk) in seen_drafts
                }
            else:
                recipients = {pk: u for pk, u in recipients.items() if can(u, VIEW, n.about)}
        if not recipients:
            continue
        # One line, within the column: titles carry names, and an e-mail subject with a line
        # break is refused by the mailer (the whole batch would be lost).
        title = one_line(n.title)[:max_title]
        rows += [
            Notification(user=u, kind=n.kind, title=title, url=n.url, body=n.body)
            for u in recipients.values()
        ]
        if not _no_email.get():
            mailed.append((n, title, [u for u in recipients.values() if u.email]))
    if not rows:
        return 0
    Notification.objects.bulk_create(rows, batch_size=2000)
    off = _emails_off({u.pk for _, _, users in mailed for u in users})
    by_kind: dict[str, list[tuple[str, str, str, list[str]]]] = defaultdict(list)
    for n, title, users in mailed:
        link = absolute_url(n.url)
        for u in users:
            if (u.pk, preference_kind(n.kind)) not in off:
                by_kind[n.kind].append(
                    (
                        f"[Mesh Portal] {title}",
                        f"{n.body}\n\n{link}".strip(),
                        settings.DEFAULT_FROM_EMAIL,
                        [u.email],
                    )
                )
    for kind, messages in by_kind.items():
        transaction.on_commit(lambda messages=messages, kind=kind: _send(messages, kind))
    return len(rows)


def _is_draft(obj) -> bool:
    """A product draft (asked in bulk through visible()); meshportal does not import products."""
    meta = getattr(obj, "_meta", None)
    return meta is not None and meta.label == "products.DataProduct" and obj.status == "draft"


def _drafts_seen(
    model, users: dict[int, Any], drafts_for: dict[int, set[int]]
) -> set[tuple[int, int]]:
    """(user id, product id) for the drafts each user may see: one query per user."""
    from meshportal.permissions import visible

    seen: set[tuple[int, int]] = set()
    for pk, ids in drafts_for.items():
        qs = visible(users[pk], model._default_manager.filter(pk__in=ids)).order_by()
        seen.update((pk, product_id) for product_id in qs.values_list("pk", flat=True))
    return seen


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
