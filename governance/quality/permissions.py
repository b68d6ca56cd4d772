"""Permission rules for quality objects: they follow their product (see meshportal.permissions).
To see a check is to see the product; to define, change, delete or run one is to edit it.
A team's webhooks and their delivery log: the team's owners (MANAGE_TEAM) and platform staff.
Incidents follow their product too: whoever sees the product sees them; acknowledging and
resolving one is the product's team's (what editing the product needs), or platform staff's."""

from meshportal import permissions as p

ACKNOWLEDGE = "acknowledge"
RESOLVE = "resolve"


def _check_rule(user, action, check) -> bool:
    return p.can(user, p.VIEW if action == p.VIEW else p.EDIT, check.port.product)


def _run_rule(user, action, run) -> bool:
    return _check_rule(user, action, run.quality_check)


def _incident_rule(user, action, incident) -> bool:
    return p.can(user, p.VIEW if action == p.VIEW else p.EDIT, incident.product)


def _webhook_rule(user, action, hook) -> bool:
    # A team's webhooks (seeing them, their log, changing, testing) are its owners' business.
    return p.can(user, p.MANAGE_TEAM, hook.team)


def _delivery_rule(user, action, delivery) -> bool:
    return _webhook_rule(user, action, delivery.webhook)


def _visible_webhooks(path: str):
    def visibility(user, qs):
        if p.is_platform(user):
            return qs
        owned = [t for t, role in p.team_roles(user).items() if role == "owner"]
        return qs.filter(**{f"{path}__in": owned})

    return visibility


def register() -> None:
    from governance.models import Incident, QualityCheck, QualityRun, Webhook, WebhookDelivery

    p.register(Incident, rule=_incident_rule, visibility=p._visible_through_product("product"))

    p.register(Webhook, rule=_webhook_rule, visibility=_visible_webhooks("team_id"))
    p.register(
        WebhookDelivery, rule=_delivery_rule, visibility=_visible_webhooks("webhook__team_id")
    )

    p.register(
        QualityCheck, rule=_check_rule, visibility=p._visible_through_product("port__product")
    )
    p.register(
        QualityRun,
        rule=_run_rule,
        visibility=p._visible_through_product("quality_check__port__product"),
    )
