"""Permission rules for quality objects: they follow their product (see meshportal.permissions).
To see a check is to see the product; to define, change, delete or run one is to edit it."""

from meshportal import permissions as p


def _check_rule(user, action, check) -> bool:
    return p.can(user, p.VIEW if action == p.VIEW else p.EDIT, check.port.product)


def _run_rule(user, action, run) -> bool:
    return _check_rule(user, action, run.check_obj)


def register() -> None:
    from .models import QualityCheck, QualityRun

    p.register(
        QualityCheck, rule=_check_rule, visibility=p._visible_through_product("port__product")
    )
    p.register(
        QualityRun,
        rule=_run_rule,
        visibility=p._visible_through_product("check_obj__port__product"),
    )
