"""Writes and business rules for data quality: checks, runs, scheduling, alerts, webhooks and
the trust score. Pages, API, admin and Celery tasks call these."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import re
import secrets
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone

from governance.models import ProductQuality, QualityCheck, QualityRun, Webhook, WebhookDelivery
from governance.policies import services as policy_services
from governance.quality import engine, incidents, webhook_targets
from meshportal import audit, queue
from meshportal.notifications import notify
from meshportal.permissions import is_platform
from products import connection
from products.lineage import services as lineage_services
from products.locations import is_file_location
from products.models import DataProduct, OutputPort

log = logging.getLogger(__name__)

Kind = QualityCheck.Kind
COLUMN_KINDS = {"missing": 1, "accepted_values": 1, "range": 1, "pattern": 1, "freshness": 1}
# A queued run that no worker picked up in this long is given up (the next schedule proceeds).
QUEUE_GRACE = timedelta(minutes=15)
RUN_GRACE = timedelta(seconds=30)  # beyond the check's own timeout, for the worker's overhead

# The trust score's terms and their weights; the score is normalised by the weights of the terms
# present (compliance is left out until a policy has judged the product). docs/quality.md.
TRUST_WEIGHTS = {"checks": 50, "freshness": 20, "documentation": 30, "compliance": 20}


# -- parameters --------------------------------------------------------------------------------


def _number(params: dict, key: str, errors: dict, *, required=False, minimum=None):
    v = params.get(key)
    if v in (None, ""):
        if required:
            errors.setdefault("params", []).append(f"{key} is required.")
        return None
    try:
        n = float(v)
    except (TypeError, ValueError, OverflowError):
        n = math.nan
    if not math.isfinite(n):
        errors.setdefault("params", []).append(f"{key} must be a number.")
        return None
    if minimum is not None and n < minimum:
        errors.setdefault("params", []).append(f"{key} must be at least {minimum}.")
    return int(n) if n.is_integer() else n


def validate_check(
    *, kind: str, columns: list[str], params: dict, port: OutputPort | None = None
) -> tuple[list[str], dict]:
    """Clean and validate a check's columns and parameters for its kind. Custom SQL is checked
    against the port: its source's dialect, its own table (quality_sql)."""
    errors: dict[str, list[str]] = {}
    if kind not in Kind.values:
        raise ValidationError({"kind": "Unknown check type."})
    raw = list(columns or [])
    for c in raw:
        if not isinstance(c, str):
            errors.setdefault("columns", []).append(f"{c!r} is not a column name.")
    columns = [c.strip() for c in raw if isinstance(c, str) and c.strip()]
    for c in columns:
        if len(c) > 200 or any(ord(ch) < 32 for ch in c):
            errors.setdefault("columns", []).append(f"{c!r} is not a valid column name.")
    params = dict(params or {})
    clean: dict[str, Any] = {}
    if kind in COLUMN_KINDS and len(columns) != 1:
        errors.setdefault("columns", []).append("Name exactly one column.")
    if kind == "duplicates" and not columns:
        errors.setdefault("columns", []).append("Name one or more columns.")
    if kind in ("row_count", "schema", "custom_sql") and columns:
        errors.setdefault("columns", []).append("This check type takes no column.")
    if kind == "row_count":
        clean["min"] = _number(params, "min", errors, minimum=0)
        clean["max"] = _number(params, "max", errors, minimum=0)
        if clean["min"] is None and clean["max"] is None:
            errors.setdefault("params", []).append("Give a minimum, a maximum or both.")
        elif None not in (clean["min"], clean["max"]) and clean["min"] > clean["max"]:
            errors.setdefault("params", []).append("The minimum is above the maximum.")
        # Strict bounds (ODCS mustBeGreaterThan / mustBeLessThan): stored only when set.
        for key in ("min_exclusive", "max_exclusive"):
            if params.get(key):
                clean[key] = True
    elif kind in ("missing", "duplicates", "accepted_values", "pattern", "custom_sql"):
        clean["max"] = _number(params, "max", errors, minimum=0) or 0
        unit = params.get("unit") or "count"
        if unit not in ("count", "percent") or (unit == "percent" and kind == "custom_sql"):
            errors.setdefault("params", []).append("unit is count or percent.")
        clean["unit"] = unit
        if unit == "percent" and clean["max"] > 100:
            errors.setdefault("params", []).append("A percentage is at most 100.")
    if kind in ("missing", "duplicates", "accepted_values", "pattern", "custom_sql", "range"):
        # A strict limit (ODCS mustBeLessThan): fewer failing rows than max, not at most max.
        if params.get("max_exclusive"):
            clean["max_exclusive"] = True
    # The API passes JSON as it came: a wrong type is the caller's error, not a crash.
    for key, types, what in (
        ("missing_values", list, "a list"),
        ("values", (list, str), "a list or a comma-separated string"),
        ("pattern", str, "a string"),
        ("sql", str, "a string"),
    ):
        if params.get(key) is not None and not isinstance(params[key], types):
            errors.setdefault("params", []).append(f"{key} must be {what}.")
            params.pop(key)
    if kind == "missing" and params.get("missing_values"):
        if isinstance(params["missing_values"], list):
            clean["missing_values"] = [str(v) for v in params["missing_values"]]
        else:
            errors.setdefault("params", []).append("missing_values is a list of values.")
    if kind == "accepted_values":
        values = params.get("values") or []
        if isinstance(values, str):
            values = [v.strip() for v in values.split(",")]
        if not isinstance(values, list):
            values = []  # refused just below
        values = [str(v) for v in values if str(v) != ""]
        if not values:
            errors.setdefault("params", []).append("List the accepted values.")
        clean["values"] = values
    if kind == "range":
        clean["min"] = _number(params, "min", errors)
        clean["max"] = _number(params, "max", errors)
        if clean["min"] is None and clean["max"] is None:
            errors.setdefault("params", []).append("Give a minimum, a maximum or both.")
        clean["unit"] = "count"
        clean["max_failing"] = _number(params, "max_failing", errors, minimum=0) or 0
    if kind == "pattern":
        pattern = params.get("pattern") or ""
        if not isinstance(pattern, str):
            errors.setdefault("params", []).append("The pattern is text.")
            pattern = ""
        try:
            re.compile(pattern)
        except re.error as e:
            errors.setdefault("params", []).append(
                f"The pattern is not a valid regular expression: {e}."
            )
        if not pattern:
            errors.setdefault("params", []).append("Give a pattern.")
        clean["pattern"] = pattern
    if kind == "freshness":
        clean["hours"] = _number(params, "hours", errors, required=True, minimum=0)
    if kind == "schema":
        clean["allow_extra"] = bool(params.get("allow_extra", False))
    if kind == "custom_sql":
        try:
            sql = params.get("sql", "")
            if not isinstance(sql, str):
                raise engine.EngineError("The SQL is text.")
            source = getattr(port, "data_source", None)
            clean["sql"] = engine.validate_custom_sql(
                sql,
                kind=getattr(source, "kind", "") or "postgresql",
                location=_port_location(port),
            )
        except engine.EngineError as e:
            errors.setdefault("params", []).append(str(e))
    if errors:
        raise ValidationError(errors)
    return columns, clean


def _port_location(port: OutputPort | None) -> str:
    """'schema.table' of the port, the source's default schema filling a bare table name."""
    if port is None or not port.location or is_file_location(port.location):
        return ""  # a file port's table is ${object} only
    source = port.data_source
    try:
        schema, table = engine.split_location(port.location, getattr(source, "default_schema", ""))
    except engine.EngineError:
        return ""
    return f"{schema}.{table}" if schema else table


def validate_timeout(*, port: OutputPort, timeout_seconds) -> None:
    """A check's timeout stays within its data source's maximum (the engine caps it at run
    time too, whatever is stored)."""
    cap = port.data_source.max_timeout_seconds if port.data_source else None
    if (
        not isinstance(timeout_seconds, int)
        or isinstance(timeout_seconds, bool)
        or timeout_seconds < 1
        or (cap and timeout_seconds > cap)
    ):
        raise ValidationError(
            {
                "timeout_seconds": f"Between 1 and {cap} seconds (the data source's maximum)."
                if cap
                else "At least 1 second."
            }
        )


def validate_schedule(*, interval_minutes: int, cron: str) -> None:
    if cron:
        try:
            cron_schedule(cron)
        except ValueError as e:
            raise ValidationError({"cron": f"Not a valid cron expression: {e}"}) from None
    if not interval_minutes or interval_minutes < 1:
        raise ValidationError({"interval_minutes": "At least one minute."})


def cron_schedule(expr: str):
    from celery.schedules import crontab

    parts = expr.split()
    if len(parts) != 5:
        raise ValueError("five fields: minute hour day month weekday")
    m, h, dom, mon, dow = parts
    return crontab(minute=m, hour=h, day_of_month=dom, month_of_year=mon, day_of_week=dow)


def next_run_after(check: QualityCheck, after: datetime) -> datetime:
    if check.cron:
        sched = cron_schedule(check.cron)
        sched.tz = UTC
        at = timezone.now() + sched.remaining_estimate(after)
        return (at + timedelta(seconds=30)).replace(second=0, microsecond=0)  # cron is per minute
    return after + timedelta(minutes=check.interval_minutes)


def _port_columns(port: OutputPort) -> dict[str, str] | None:
    """The table's real columns, or None when the source cannot be reached."""
    if port.data_source is None:
        return None
    try:
        engine.split_location(port.location)  # no location: nothing to look up
        with engine.connect(port.data_source, timeout=10) as conn:
            schema, table = conn.resolve(port.location, port.data_source.default_schema)
            return conn.columns(schema, table)
    except engine.EngineError:
        return None


def _check_columns_exist(port: OutputPort, columns: list[str]) -> None:
    if not columns:
        return
    real = _port_columns(port)
    if real is None:
        return  # unreachable: the first run will say so
    if not real:
        raise ValidationError(
            {"columns": f"The table {port.location} does not exist in {port.data_source}."}
        )
    missing = [c for c in columns if c not in real]
    if missing:
        raise ValidationError(
            {
                "columns": f"No column {', '.join(missing)} in {port.location}. "
                f"Columns: {', '.join(real)}."
            }
        )


# -- checks ------------------------------------------------------------------------------------


@transaction.atomic
def check_create(
    *,
    port: OutputPort,
    name: str,
    kind: str,
    columns=(),
    params=None,
    interval_minutes: int = 60,
    cron: str = "",
    timeout_seconds: int = 60,
    enabled: bool = True,
    by=None,
    verify_columns: bool = True,
) -> QualityCheck:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Give the check a name."})
    if port.data_source is None:
        raise ValidationError({"port": "This port has no data source, so it cannot be checked."})
    if QualityCheck.objects.filter(port=port, name=name).exists():
        raise ValidationError({"name": "This port already has a check with that name."})
    columns, params = validate_check(
        kind=kind, columns=list(columns), params=params or {}, port=port
    )
    validate_schedule(interval_minutes=interval_minutes, cron=cron)
    validate_timeout(port=port, timeout_seconds=timeout_seconds)
    if verify_columns:
        _check_columns_exist(port, columns)
    check = QualityCheck.objects.create(
        port=port,
        name=name,
        kind=kind,
        columns=columns,
        params=params,
        interval_minutes=interval_minutes,
        cron=cron,
        timeout_seconds=timeout_seconds,
        enabled=enabled,
        created_by=by if getattr(by, "pk", None) else None,
        next_run_at=timezone.now(),  # a new check is due at once
    )
    audit.record(
        action="create",
        obj=check,
        changes=audit.diff({}, audit.snapshot(check)),
        scope=port.product,
    )
    return check


@transaction.atomic
def check_update(*, check: QualityCheck, by=None, **changes) -> QualityCheck:
    before = audit.snapshot(check)
    allowed = {
        "name",
        "columns",
        "params",
        "interval_minutes",
        "cron",
        "timeout_seconds",
        "enabled",
    }
    for key, value in changes.items():
        if key not in allowed:
            raise ValidationError({key: "Cannot be changed."})
        setattr(check, key, value)
    check.columns, check.params = validate_check(
        kind=check.kind, columns=check.columns, params=check.params, port=check.port
    )
    validate_schedule(interval_minutes=check.interval_minutes, cron=check.cron)
    if "timeout_seconds" in changes:
        validate_timeout(port=check.port, timeout_seconds=check.timeout_seconds)
    if "columns" in changes:
        _check_columns_exist(check.port, check.columns)
    fields = set(changes) | {"columns", "params"}
    if {"interval_minutes", "cron"} & set(changes):
        check.next_run_at = next_run_after(check, check.last_run_at or timezone.now())
        fields.add("next_run_at")
    # Only what changed: the run state (last_status, …) belongs to the runner.
    check.save(update_fields=sorted(fields))
    audit.record(
        action="update",
        obj=check,
        changes=audit.diff(before, audit.snapshot(check)),
        scope=check.port.product,
    )
    return check


@transaction.atomic
def check_delete(*, check: QualityCheck, by=None) -> None:
    product = check.port.product
    audit.record(
        action="delete", obj=check, changes=audit.diff(audit.snapshot(check), {}), scope=product
    )
    check.delete()
    product_quality_refresh(product=product)


# -- runs --------------------------------------------------------------------------------------


def _create_run(check: QualityCheck, trigger: str, now: datetime) -> QualityRun | None:
    """A queued run, unless the check already has one queued or running (unique index)."""
    try:
        with transaction.atomic():
            return QualityRun.objects.create(
                quality_check=check, trigger=trigger, deadline=now + QUEUE_GRACE
            )
    except IntegrityError:
        return None


def _enqueue(run_ids: list[int]) -> None:
    # Through meshportal.queue: with the broker down the task is kept and sent when it is back.
    from governance.quality.tasks import run_quality_checks

    queue.enqueue_on_commit(run_quality_checks, run_ids, options={"queue": "quality"})


def run_now(*, checks: Iterable[QualityCheck], by=None) -> list[QualityRun]:
    """Queue runs for these checks (the "Run now" button and the API). Checks that are already
    queued or running are skipped. Runs of one table go in one task, so one scan."""
    now = timezone.now()
    runs = []
    with transaction.atomic():
        for check in checks:
            run = _create_run(check, "manual", now)
            if run is not None:
                runs.append(run)
        by_port: dict[int, list[int]] = defaultdict(list)
        for run in runs:
            by_port[run.quality_check.port_id].append(run.pk)
        for ids in by_port.values():
            _enqueue(ids)
        # A check that is due anyway (a new one is due at once) has its due run in this one:
        # move its schedule on, or the scheduler runs it again right after (twice on creation).
        due = [
            r.quality_check
            for r in runs
            if r.quality_check.next_run_at and r.quality_check.next_run_at <= now
        ]
        for check in due:
            check.next_run_at = next_run_after(check, now)
        QualityCheck.objects.bulk_update(due, ["next_run_at"])
    return runs


def dispatch_due(*, now: datetime | None = None) -> int:
    """Queue every enabled check whose time has come; one task per table. Returns runs queued."""
    now = now or timezone.now()
    sweep_stuck(now=now)
    queued = 0
    with transaction.atomic():
        due = (
            QualityCheck.objects.select_for_update(skip_locked=True)
            .filter(enabled=True, next_run_at__lte=now, port__data_source__isnull=False)
            .exclude(runs__status__in=QualityRun.ACTIVE)
            .order_by("port_id", "pk")
        )
        checks = list(due)
        # Batched: thousands of checks fall due together on a large mesh (4-5 queries each
        # took 36 s for 10,000).
        runs: list[QualityRun | None]
        try:
            with transaction.atomic():
                runs = list(
                    QualityRun.objects.bulk_create(
                        [
                            QualityRun(
                                quality_check=c, trigger="schedule", deadline=now + QUEUE_GRACE
                            )
                            for c in checks
                        ],
                        batch_size=1000,
                    )
                )
        except IntegrityError:  # a "Run now" got in first: one at a time, skipping its check
            runs = [_create_run(c, "schedule", now) for c in checks]
        for check in checks:
            check.next_run_at = next_run_after(check, now)
        QualityCheck.objects.bulk_update(checks, ["next_run_at"], batch_size=1000)
        by_port: dict[int, list[int]] = defaultdict(list)
        for check, run in zip(checks, runs, strict=True):
            if run is not None:
                by_port[check.port_id].append(run.pk)
                queued += 1
        for ids in by_port.values():
            _enqueue(ids)
    return queued


SWEEP_BATCH = 1000
LOST_MESSAGES = {
    "running": "The worker stopped before finishing (killed or timed out).",
    "queued": "No worker picked this run up in time.",
}


def sweep_stuck(*, now: datetime | None = None) -> int:
    """Runs still queued or running past their deadline (a killed worker, a lost message) end
    as errors, so the check is free to run again. In bulk: a few statements per 1,000 runs,
    then one state change (and at most one alert) per check and one trust refresh per product,
    however many of its runs were stuck."""
    now = now or timezone.now()
    swept = 0
    touched: set[int] = set()
    while True:
        with transaction.atomic():
            # Locked, so a worker's late result waits and then finds the run swept.
            batch = list(
                QualityRun.objects.select_for_update(skip_locked=True)
                .filter(status__in=QualityRun.ACTIVE, deadline__lt=now)
                .order_by("pk")
                .values_list("pk", "status", "quality_check_id")[:SWEEP_BATCH]
            )
            if not batch:
                break
            for status, message in LOST_MESSAGES.items():
                ids = [pk for pk, was, _ in batch if was == status]
                if ids:
                    QualityRun.objects.filter(pk__in=ids).update(
                        status="error", finished_at=now, message=message
                    )
        swept += len(batch)
        touched.update(check_id for _, _, check_id in batch)
    if touched:
        _after_sweep(touched, now)
    return swept


def _after_sweep(check_ids: set[int], now: datetime) -> None:
    checks = list(
        QualityCheck.objects.filter(pk__in=check_ids).select_related("port__product__domain")
    )
    QualityCheck.objects.filter(pk__in=check_ids).update(last_status="error", last_run_at=now)
    last_ids = (
        QualityRun.objects.filter(quality_check_id__in=check_ids, status="error", finished_at=now)
        .values("quality_check_id")
        .annotate(last=Max("pk"))
        .values_list("last", flat=True)
    )
    latest = {r.quality_check_id: r for r in QualityRun.objects.filter(pk__in=list(last_ids))}
    products: dict[int, DataProduct] = {}
    recipients: dict[int, list] = {}
    for check in checks:
        product = products.setdefault(check.port.product_id, check.port.product)
        previous = check.last_status
        check.last_status, check.last_run_at = "error", now
        if previous != "error" and check.pk in latest:
            if product.pk not in recipients:
                recipients[product.pk] = alert_recipients(product)
            alert_state_change(
                check=check,
                run=latest[check.pk],
                previous=previous or "new",
                recipients=recipients[product.pk],
            )
    incidents.record_check_results(
        [(check, latest[check.pk]) for check in checks if check.pk in latest], now=now
    )
    for product in products.values():
        product_quality_refresh(product=product)


def execute_runs(*, run_ids: list[int]) -> dict[int, str]:
    """Run the queued runs (all of one table, ideally): claim, scan once, record results."""
    now = timezone.now()
    runs = list(
        QualityRun.objects.filter(pk__in=run_ids, status="queued").select_related(
            "quality_check__port__data_source", "quality_check__port__product__domain"
        )
    )
    claimed = []
    for run in runs:
        deadline = now + timedelta(seconds=run.quality_check.timeout_seconds) + RUN_GRACE
        if QualityRun.objects.filter(pk=run.pk, status="queued").update(
            status="running", started_at=now, deadline=deadline
        ):
            claimed.append(run)
    by_port: dict[int, list[QualityRun]] = defaultdict(list)
    for run in claimed:
        by_port[run.quality_check.port_id].append(run)
    outcome = {}
    for port_runs in by_port.values():
        port = port_runs[0].quality_check.port
        specs = [
            engine.CheckSpec(
                id=r.pk,
                kind=r.quality_check.kind,
                columns=list(r.quality_check.columns),
                params=dict(r.quality_check.params),
                timeout_seconds=r.quality_check.timeout_seconds,
            )
            for r in port_runs
        ]
        if port.data_source is None:
            results = {
                s.id: engine.Result("error", message="The port has no data source.") for s in specs
            }
        else:
            declared = list(
                port.fields.values(
                    "name", "physical_type", "logical_type", "required", "unique", "primary_key"
                )
            )
            results = engine.run_table(
                port.data_source,
                port.location,
                specs,
                declared_fields=declared,
                allow_samples=samples_allowed(port),
            )
        finished = []
        for run in port_runs:
            outcome[run.pk] = record_result(run=run, result=results[run.pk], batch=True)
            if outcome[run.pk] != "swept":
                finished.append((run.quality_check, run))
        # Once per table run, not once per check: incidents in one pass, trust refreshed once.
        incidents.record_check_results(finished, now=timezone.now())
        if finished:
            product_quality_refresh(product=port.product)
    return outcome


def samples_allowed(port: OutputPort) -> bool:
    """Failing values are shown only for public and internal products."""
    return port.product.classification in ("public", "internal")


def record_result(*, run: QualityRun, result: engine.Result, batch: bool = False) -> str:
    """Store a run's result and update its check (state, alert). With batch, the caller
    records the incidents and refreshes the product's trust once for all its runs."""
    now = timezone.now()
    check = run.quality_check
    n = QualityRun.objects.filter(pk=run.pk, status="running").update(
        status=result.status,
        observed=result.observed,
        threshold=result.threshold[:200],
        message=result.message,
        sample=result.sample,
        duration_ms=result.duration_ms,
        finished_at=now,
    )
    if not n:
        return "swept"  # the sweeper gave up on it already
    run.status = result.status
    run.observed = result.observed
    run.message = result.message
    run.finished_at = now
    _after_result(check, run, now, batch=batch)
    return result.status


def _after_result(check: QualityCheck, run: QualityRun, now: datetime, *, batch=False) -> None:
    previous = check.last_status
    QualityCheck.objects.filter(pk=check.pk).update(last_status=run.status, last_run_at=now)
    check.last_status, check.last_run_at = run.status, now
    if not batch:
        incidents.record_check_results([(check, run)], now=now)
    if previous != run.status and not (previous == "" and run.status == "passed"):
        alert_state_change(check=check, run=run, previous=previous or "new")
    if not batch:
        product_quality_refresh(product=check.port.product)


# -- alerts and webhooks -----------------------------------------------------------------------


def alert_recipients(product: DataProduct) -> list:
    User = get_user_model()
    users = list(User.objects.filter(memberships__team_id=product.owner_team_id, is_active=True))
    return users + list(lineage_services.watchers_of(product))  # the team, then the watchers


def _quality_url(product: DataProduct) -> str:
    return f"{product.get_absolute_url()}?tab=quality"


def alert_state_change(
    *, check: QualityCheck, run: QualityRun, previous: str, recipients: list | None = None
) -> None:
    """`recipients`: alert_recipients(product), when the caller alerts for many checks of it."""
    product = check.port.product
    verb = {"passed": "passes again", "failed": "fails", "error": "cannot run"}[run.status]
    title = f"{product.name}: check “{check.name}” {verb}"
    # Alerts reach downstream owners too, who may not read this product's data: the message
    # never carries the table's location (sampled values are never in an alert).
    message = connection.redact_text(run.message, [check.port.location])
    body = f"{message}\n(was {previous}, now {run.status})"
    if run.status == "passed":
        # The check is healthy again: its open failure alerts are cleared (marked read).
        from meshportal.models import Notification

        Notification.objects.filter(
            kind__in=["quality.failed", "quality.error"],
            url=_quality_url(product),
            title__contains=f"“{check.name}”",
            read_at__isnull=True,
        ).update(read_at=timezone.now())
    notify(
        alert_recipients(product) if recipients is None else recipients,
        kind=f"quality.{run.status}",
        title=title,
        url=_quality_url(product),
        body=body,
        about=product,
    )
    webhook_emit(
        team_id=product.owner_team_id,
        event=f"quality.check.{run.status}",
        payload={
            "product": product.urn,
            "port": check.port.slug,
            "check": check.name,
            "check_id": check.pk,
            "kind": check.kind,
            "previous": previous,
            "status": run.status,
            "observed": run.observed,
            "message": run.message,
            "run_id": run.pk,
            "at": (run.finished_at or timezone.now()).isoformat(),
        },
    )


def sign(secret: str, body: bytes) -> str:
    """The X-Mesh-Signature header: sha256=<hex HMAC-SHA256 of the raw body with the secret>."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_emit(*, team_id: int, event: str, payload: dict) -> list[WebhookDelivery]:
    return webhook_emit_many(team_id=team_id, events=[(event, payload)])


def webhook_emit_many(*, team_id: int, events: list[tuple[str, dict]]) -> list[WebhookDelivery]:
    """Each event to each active webhook of the team: one query for the webhooks, one insert
    for the deliveries, each delivery queued after commit."""
    from governance.quality.tasks import deliver_webhook

    hooks = list(Webhook.objects.filter(team_id=team_id, active=True)) if events else []
    if not hooks:
        return []
    deliveries = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                webhook=h,
                event=event,
                body=json.dumps({"event": event, **payload}, sort_keys=True, default=str),
            )
            for event, payload in events
            for h in hooks
        ]
    )
    for d in deliveries:
        queue.enqueue_on_commit(deliver_webhook, d.pk, options={"queue": "notifications"})
    return deliveries


# -- team webhooks, managed by the team's owners ---------------------------------------------

WEBHOOK_TEST_EVENT = "webhook.test"


def _webhook_snapshot(hook: Webhook) -> dict:
    # The secret never goes into the audit log.
    return {k: v for k, v in audit.snapshot(hook).items() if k != "secret"}


def _validate_webhook_url(url: str) -> str:
    # One rule for where webhooks may go, asked again at every delivery (webhook_targets).
    return webhook_targets.validate(url)


def webhook_create(*, team, url: str, active: bool = True, by=None) -> tuple[Webhook, str]:
    """-> (webhook, secret). The secret is returned this once and never shown again."""
    secret = secrets.token_urlsafe(32)
    hook = Webhook.objects.create(
        team=team, url=_validate_webhook_url(url), active=bool(active), secret=secret
    )
    audit.record(
        action="create", obj=hook, changes=audit.diff({}, _webhook_snapshot(hook)), scope=team
    )
    return hook, secret


def webhook_update(*, hook: Webhook, url: str, active: bool, by=None) -> Webhook:
    before = _webhook_snapshot(hook)
    hook.url, hook.active = _validate_webhook_url(url), bool(active)
    hook.save(update_fields=["url", "active"])
    audit.record(
        action="update",
        obj=hook,
        changes=audit.diff(before, _webhook_snapshot(hook)),
        scope=hook.team,
    )
    return hook


def webhook_delete(*, hook: Webhook, by=None) -> None:
    audit.record(
        action="delete",
        obj=hook,
        changes=audit.diff(_webhook_snapshot(hook), {}),
        scope=hook.team,
    )
    hook.delete()


def webhook_send_test(*, hook: Webhook, by=None):
    """Queue a signed test delivery to one webhook (active or not); it shows in the log."""
    from governance.quality.tasks import deliver_webhook

    body = json.dumps(
        {"event": WEBHOOK_TEST_EVENT, "team": hook.team.slug, "test": True}, sort_keys=True
    )
    delivery = WebhookDelivery.objects.create(webhook=hook, event=WEBHOOK_TEST_EVENT, body=body)
    return delivery, queue.enqueue_on_commit(
        deliver_webhook, delivery.pk, options={"queue": "notifications"}
    )


def team_webhooks(*, team) -> list[Webhook]:
    return list(Webhook.objects.filter(team=team).order_by("created_at"))


def team_deliveries(*, team, limit: int = 30) -> list[WebhookDelivery]:
    return list(
        WebhookDelivery.objects.filter(webhook__team=team)
        .select_related("webhook")
        .order_by("-created_at", "-pk")[:limit]
    )


class DeliveryFailed(Exception):
    pass


def webhook_deliver(*, delivery_id: int, final: bool = False) -> str:
    """POST one delivery. Raises DeliveryFailed so the task retries with backoff.

    A webhook deleted meanwhile takes its deliveries with it: the delivery is dropped with an
    INFO line (its owners removed it on purpose), not an error."""
    d = WebhookDelivery.objects.select_related("webhook").filter(pk=delivery_id).first()
    if d is None:
        log.info("Webhook delivery %s dropped: its webhook was deleted.", delivery_id)
        return "dropped"
    if d.status == "delivered":
        return d.status
    body = d.body.encode()
    headers = {
        "Content-Type": "application/json",
        "X-Mesh-Event": d.event,
        "X-Mesh-Delivery": str(d.pk),
        "X-Mesh-Signature": sign(d.webhook.secret, body),
        "User-Agent": "mesh-portal-webhooks",
    }
    d.attempts += 1
    d.response_code = None
    try:
        # Resolved, checked and connected to the checked address; redirects are not followed
        # and the answer's body is never read, so the log cannot echo an internal service.
        code = webhook_targets.post(d.webhook.url, body, headers, timeout=10)
    except webhook_targets.TargetRefused as e:
        # Refused before connecting: no retry, the same rule would refuse it again.
        d.status, d.error, final = "failed", f"Refused: {e}", True
    except OSError as e:
        d.error = f"Could not deliver: {e or type(e).__name__}"[:500]
    else:
        d.response_code = code
        if 200 <= code < 300:
            d.status, d.error = "delivered", ""
        else:
            d.error = f"HTTP {code}"
    if d.status != "delivered" and final:
        d.status = "failed"
    d.updated_at = timezone.now()
    fields = ["attempts", "response_code", "status", "error", "updated_at"]
    if not WebhookDelivery.objects.filter(pk=d.pk).update(**{f: getattr(d, f) for f in fields}):
        # Deleted with its webhook while we were sending.
        log.info("Webhook delivery %s dropped: its webhook was deleted.", delivery_id)
        return "dropped"
    if d.status == "pending":
        raise DeliveryFailed(d.error)
    return d.status


# -- trust score and freshness SLO -------------------------------------------------------------

TRUST_FORMULA = (
    "Trust = weighted mean of: checks passing (latest result of each enabled check) × 50, "
    "freshness SLO met × 20 (no SLO or no freshness check: half), "
    "documentation (summary, description, share of fields described) × 30, "
    "policy compliance (share of applicable active policies passed or waived) × 20 "
    "once policies have judged the product"
)


def _checks_component(product, checks) -> float:
    if not checks:
        return 0.0
    return sum(1 for c in checks if c.last_status == "passed") / len(checks)


def _freshness_component(product, state) -> float:
    if product.freshness_slo_hours is None or state.newest_data_at is None:
        return 0.5
    return 0.0 if state.freshness_breached else 1.0


def _documentation_component(product) -> float:
    from products.models import SchemaField

    fields = list(
        SchemaField.objects.filter(port__product=product).values_list("description", flat=True)
    )
    described = sum(1 for d in fields if d.strip()) / len(fields) if fields else 0.0
    return (bool(product.summary.strip()) + bool(product.description.strip()) + described) / 3


def product_quality_refresh(*, product: DataProduct) -> ProductQuality:
    """Recompute the trust score and freshness state of a product; alert on an SLO breach."""
    state, _ = ProductQuality.objects.get_or_create(product=product)
    checks = list(QualityCheck.objects.filter(port__product=product, enabled=True))
    newest = None
    for c in checks:
        if c.kind != "freshness":
            continue
        run = (
            QualityRun.objects.filter(
                quality_check=c, status__in=["passed", "failed"], observed__isnull=False
            )
            .order_by("-finished_at")
            .first()
        )
        if run and run.started_at and run.observed is not None:
            at = run.started_at - timedelta(hours=run.observed)
            newest = at if newest is None else min(newest, at)
    state.newest_data_at = newest
    was_breached = state.freshness_breached
    slo = product.freshness_slo_hours
    state.freshness_breached = bool(
        slo is not None and newest is not None and timezone.now() - newest > timedelta(hours=slo)
    )
    statuses = {c.last_status for c in checks}
    if statuses & {"failed", "error"}:
        state.state = ProductQuality.State.FAILING
    elif checks and statuses == {"passed"}:
        state.state = ProductQuality.State.PASSING
    else:
        state.state = ProductQuality.State.UNCHECKED
    values = {
        "checks": _checks_component(product, checks),
        "freshness": _freshness_component(product, state),
        "documentation": _documentation_component(product),
        "compliance": policy_services.compliance_share(product),
    }
    components = {k: (TRUST_WEIGHTS[k], v) for k, v in values.items() if v is not None}
    total_weight = sum(w for w, _ in components.values())
    score = sum(w * v for w, v in components.values()) / total_weight if total_weight else 0
    state.trust_score = round(100 * score)
    state.components = {k: {"weight": w, "value": round(v, 3)} for k, (w, v) in components.items()}
    state.save()
    if state.freshness_breached != was_breached:
        incidents.record_freshness(
            product=product, breached=state.freshness_breached, slo_hours=slo
        )
        title = (
            f"{product.name} breaks its freshness SLO ({slo} h)"
            if state.freshness_breached
            else f"{product.name} is fresh again"
        )
        notify(
            alert_recipients(product),
            kind="quality.freshness",
            title=title,
            url=_quality_url(product),
            body=f"Newest data: {newest:%Y-%m-%d %H:%M} UTC." if newest else "",
            about=product,
        )
        webhook_emit(
            team_id=product.owner_team_id,
            event="quality.freshness",
            payload={
                "product": product.urn,
                "breached": state.freshness_breached,
                "slo_hours": slo,
                "newest_data_at": newest.isoformat() if newest else None,
            },
        )
    return state


def freshness_recheck(*, product_id: int) -> None:
    """After a product edit: if its freshness SLO now judges the stored newest data
    differently, refresh the state (which updates the badge and alerts). One query otherwise."""
    state = (
        ProductQuality.objects.filter(product_id=product_id, newest_data_at__isnull=False)
        .select_related("product")
        .first()
    )
    if state is None or state.newest_data_at is None:  # the filter excludes None; mypy can't tell
        return
    slo = state.product.freshness_slo_hours
    breached = slo is not None and timezone.now() - state.newest_data_at > timedelta(hours=slo)
    if breached != state.freshness_breached:
        product_quality_refresh(product=state.product)


def with_trust(queryset):
    """Annotate products with `trust` (0–100, 0 when never checked) so lists and search can
    sort by it: `with_trust(qs).order_by("-trust")`."""
    from django.db.models import F, Value
    from django.db.models.functions import Coalesce

    return queryset.annotate(trust=Coalesce(F("quality_state__trust_score"), Value(0)))


def failing_checks():
    """Checks whose latest result is failed or error, for the mesh-wide page."""
    return QualityCheck.objects.filter(enabled=True).filter(
        Q(last_status="failed") | Q(last_status="error")
    )


# -- data sources (platform staff, in the portal; the console saves through its own audit) ------


@transaction.atomic
def data_source_save(*, source, by, teams=None) -> None:
    """Create or change a data source: what its kind needs (DataSource.clean), audited
    without its secret references. Platform staff only. `teams` (when given) are the teams
    whose ports may read it; none: every team."""
    from governance.models import DataSource

    if not is_platform(by):
        raise PermissionDenied("Only the platform team registers data sources.")
    source.full_clean()
    before = {} if source.pk is None else audit.snapshot(DataSource.objects.get(pk=source.pk))
    creating = source.pk is None
    source.save()
    if teams is not None:
        source.teams.set(teams)
    audit.record(
        action="create" if creating else "update",
        obj=source,
        changes=audit.diff(before, audit.snapshot(source)),
        actor=by,
    )
