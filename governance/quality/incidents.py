"""Incidents: writes. A failing check (failed or error) or a breached freshness SLO opens one
incident for its product; further failing runs add to its timeline; the check passing again (the
data fresh again) resolves it automatically. The product's team acknowledges an incident and
resolves it with a note (permission: `governance.quality.permissions`, ACKNOWLEDGE / RESOLVE).

Called where runs finish (`services._after_result`, `services._after_sweep`) and where the
freshness state is computed (`services.product_quality_refresh`). Bulk-friendly: a batch of
results costs a constant number of queries, plus the notification and webhook of each incident
that opens or resolves (a state change, like the quality alerts)."""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from governance.models import Incident, IncidentEvent, QualityCheck, QualityRun
from governance.quality.permissions import ACKNOWLEDGE, RESOLVE
from meshportal import audit
from meshportal.notifications import Notice, notify_many
from meshportal.permissions import require

FAILING = ("failed", "error")
NOTE_MAX = 2000


def incident_url(incident: Incident) -> str:
    return reverse("governance:incident", args=[incident.pk])


def _recipients_many(products) -> dict[int, list]:
    """{team id: its active members (owners and members: they fix it)} for the products'
    owning teams, in one query."""
    from domains.models import Membership

    teams: dict[int, dict[int, Any]] = {p.owner_team_id: {} for p in products}
    for m in (
        Membership.objects.filter(team_id__in=list(teams), user__is_active=True)
        .select_related("user")
        .order_by()
    ):
        teams[m.team_id][m.user_id] = m.user
    return {team_id: list(users.values()) for team_id, users in teams.items()}


def _payload(incident: Incident) -> dict:
    return {
        "incident_id": incident.pk,
        "product": incident.product.urn,
        "kind": incident.kind,
        "check_id": incident.quality_check_id,
        "title": incident.title,
        "status": incident.status,
        "failures": incident.failures,
        "opened_at": incident.opened_at.isoformat(),
        "resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None,
        "resolved_by": incident.resolved_by.get_username() if incident.resolved_by else None,
        "resolution_note": incident.resolution_note,
        "url": incident_url(incident),
    }


def _announce(incidents: list[Incident], event: str) -> None:
    """In-app notification and e-mail (on commit, kind `incident.<event>`) to each product's
    team, one per product however many of its incidents changed; the team's webhooks get one
    `incident.<event>` per incident, queued through the one queue after commit. A constant
    number of queries for any number of incidents and products."""
    from governance.quality.services import webhook_emit_teams

    by_product: dict[int, list[Incident]] = {}
    for incident in incidents:
        by_product.setdefault(incident.product_id, []).append(incident)
    recipients = _recipients_many([group[0].product for group in by_product.values()])
    notices = []
    events: dict[int, list[tuple[str, dict]]] = {}
    for group in by_product.values():
        product, first = group[0].product, group[0]
        if event == "opened":
            body = "The owning team is asked to look."
            title = (
                f"Incident opened: {first.title}"
                if len(group) == 1
                else f"{len(group)} incidents opened on {product.name}"
            )
        else:
            by = f"by {first.resolved_by.get_username()}" if first.resolved_by else "automatically"
            title = (
                f"Incident resolved {by}: {first.title}"
                if len(group) == 1
                else f"{len(group)} incidents resolved {by} on {product.name}"
            )
            body = first.resolution_note
        notices.append(
            Notice(
                recipients[product.owner_team_id],
                kind=f"incident.{event}",
                title=title,
                url=incident_url(first)
                if len(group) == 1
                else f"{product.get_absolute_url()}?tab=quality",
                body=body,
                about=product,
            )
        )
        events.setdefault(product.owner_team_id, []).extend(
            (f"incident.{event}", _payload(i)) for i in group
        )
    notify_many(notices)
    webhook_emit_teams(events)


def _open(incidents: list[Incident], runs: dict[int, QualityRun], now: datetime) -> None:
    created = Incident.objects.bulk_create(incidents)
    IncidentEvent.objects.bulk_create(
        [
            IncidentEvent(incident=i, kind="opened", at=now, run=runs.get(i.quality_check_id or 0))
            for i in created
        ]
    )
    audit.record_many(
        [("create", i, audit.diff({}, audit.snapshot(i)), i.product) for i in created]
    )
    _announce(created, "opened")


def _resolve_automatically(incidents: list[Incident], now: datetime, note: str) -> None:
    if not incidents:
        return
    Incident.objects.filter(pk__in=[i.pk for i in incidents]).update(
        status="resolved", resolved_at=now, resolved_by=None, resolution_note=note
    )
    IncidentEvent.objects.bulk_create(
        [IncidentEvent(incident=i, kind="resolved", at=now, note=note) for i in incidents]
    )
    entries = []
    for incident in incidents:
        before = audit.snapshot(incident)
        incident.status, incident.resolved_at, incident.resolution_note = "resolved", now, note
        incident.resolved_by = None
        entries.append(
            ("update", incident, audit.diff(before, audit.snapshot(incident)), incident.product)
        )
    audit.record_many(entries)
    _announce(incidents, "resolved")


def record_check_results(
    results: Iterable[tuple[QualityCheck, QualityRun]], *, now: datetime | None = None
) -> None:
    """The finished runs of checks (each check once): open, add to or resolve their incidents.
    `check.port.product` should be loaded (select_related) by the caller."""
    now = now or timezone.now()
    results = [(c, r) for c, r in results if r.status in (*FAILING, "passed")]
    if not results:
        return
    active = {
        i.quality_check_id: i
        for i in Incident.objects.filter(
            kind="check",
            status__in=Incident.ACTIVE,
            quality_check_id__in=[c.pk for c, _ in results],
        ).select_related("product__domain")
    }
    again, opening, resolving = [], [], []
    for check, run in results:
        incident = active.get(check.pk)
        if run.status in FAILING:
            if incident is None:
                product = check.port.product
                opening.append(
                    Incident(
                        product=product,
                        kind="check",
                        quality_check=check,
                        title=f"{product.name}: check “{check.name}” "
                        + ("fails" if run.status == "failed" else "cannot run"),
                        opened_at=now,
                    )
                )
            else:
                again.append((incident, run))
        elif incident is not None:
            resolving.append(incident)
    if again:
        Incident.objects.filter(pk__in=[i.pk for i, _ in again]).update(failures=F("failures") + 1)
        IncidentEvent.objects.bulk_create(
            [IncidentEvent(incident=i, kind="failed", at=now, run=r) for i, r in again]
        )
    if opening:
        _open(opening, {c.pk: r for c, r in results}, now)
    _resolve_automatically(resolving, now, "The check passes again.")


def record_freshness_many(changes: list[tuple], *, now: datetime | None = None) -> None:
    """Products whose freshness SLO changed state, (product, breached, SLO hours) each: open
    their incidents or resolve them. A constant number of queries for any number of products
    (a sweep of stuck runs refreshes the state of thousands at once)."""
    if not changes:
        return
    now = now or timezone.now()
    active: dict[int, Incident] = {}
    for found in Incident.objects.filter(
        product_id__in=[product.pk for product, _, _ in changes],
        kind="freshness",
        status__in=Incident.ACTIVE,
    ).order_by("pk"):
        active.setdefault(found.product_id, found)
    opening: list[Incident] = []
    resolving: list[Incident] = []
    for product, breached, slo_hours in changes:
        incident = active.get(product.pk)
        if breached and incident is None:
            opening.append(
                Incident(
                    product=product,
                    kind="freshness",
                    title=f"{product.name}: freshness SLO ({slo_hours} h) breached",
                    opened_at=now,
                )
            )
        elif not breached and incident is not None:
            incident.product = product
            resolving.append(incident)
    if opening:
        _open(opening, {}, now)
    _resolve_automatically(resolving, now, "The data is fresh again.")


def _note(note: str, *, required: bool) -> str:
    note = (note or "").strip()
    if required and not note:
        raise ValidationError({"note": "Say what was done (a note is required to resolve)."})
    if len(note) > NOTE_MAX:
        raise ValidationError({"note": f"At most {NOTE_MAX} characters."})
    return note


@transaction.atomic
def incident_acknowledge(*, incident: Incident, by, note: str = "") -> Incident:
    """The team has seen it and is on it. Only an open incident is acknowledged (else 400)."""
    require(by, ACKNOWLEDGE, incident)
    note = _note(note, required=False)
    incident = Incident.objects.select_for_update().select_related("product").get(pk=incident.pk)
    if incident.status != "open":
        raise ValidationError(
            f"This incident is {incident.status}; only an open one is acknowledged."
        )
    before = audit.snapshot(incident)
    now = timezone.now()
    incident.status, incident.acknowledged_at, incident.acknowledged_by = "acknowledged", now, by
    incident.save(update_fields=["status", "acknowledged_at", "acknowledged_by"])
    IncidentEvent.objects.create(incident=incident, kind="acknowledged", at=now, by=by, note=note)
    audit.record(
        action="update",
        obj=incident,
        changes=audit.diff(before, audit.snapshot(incident)),
        scope=incident.product,
        actor=by,
    )
    return incident


@transaction.atomic
def incident_resolve(*, incident: Incident, by, note: str) -> Incident:
    """Resolved by hand, with a note saying what was done. If the check still fails, its next
    failing run opens a new incident."""
    require(by, RESOLVE, incident)
    note = _note(note, required=True)
    incident = (
        Incident.objects.select_for_update().select_related("product__domain").get(pk=incident.pk)
    )
    if incident.status not in Incident.ACTIVE:
        raise ValidationError("This incident is resolved already.")
    before = audit.snapshot(incident)
    now = timezone.now()
    incident.status, incident.resolved_at, incident.resolved_by = "resolved", now, by
    incident.resolution_note = note
    incident.save(update_fields=["status", "resolved_at", "resolved_by", "resolution_note"])
    IncidentEvent.objects.create(incident=incident, kind="resolved", at=now, by=by, note=note)
    audit.record(
        action="update",
        obj=incident,
        changes=audit.diff(before, audit.snapshot(incident)),
        scope=incident.product,
        actor=by,
    )
    _announce([incident], "resolved")
    return incident
