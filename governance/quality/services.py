"""Writes and business rules for data quality: checks, runs, scheduling, alerts, webhooks and
the trust score. Pages, API, admin and Celery tasks call these."""

from __future__ import annotations

import contextlib
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

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Case, Count, DateTimeField, F, OuterRef, Q, Subquery, Value, When
from django.utils import timezone

from governance.models import ProductQuality, QualityCheck, QualityRun, Webhook, WebhookDelivery
from governance.policies import services as policy_services
from governance.quality import engine, incidents, webhook_targets
from meshportal import audit, bulk, queue
from meshportal import cache as shared_cache
from meshportal.notifications import Notice, notify_many
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
def check_create(*, port: OutputPort, **fields: Any) -> QualityCheck:
    """A new check of port (check_build's arguments), due at once, with its audit entry."""
    check = check_build(port=port, **fields)
    if QualityCheck.objects.filter(port=port, name=check.name).exists():
        raise ValidationError({"name": "This port already has a check with that name."})
    check.save()
    audit.record(
        action="create",
        obj=check,
        changes=audit.diff({}, audit.snapshot(check)),
        scope=port.product,
    )
    return check


def check_build(
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
    """A new check validated as check_create validates it (but for its name being free on the
    port, which checks_create_many asks for all at once), not saved."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Give the check a name."})
    if port.data_source is None:
        raise ValidationError({"port": "This port has no data source, so it cannot be checked."})
    columns, params = validate_check(
        kind=kind, columns=list(columns), params=params or {}, port=port
    )
    validate_schedule(interval_minutes=interval_minutes, cron=cron)
    validate_timeout(port=port, timeout_seconds=timeout_seconds)
    if verify_columns:
        _check_columns_exist(port, columns)
    return QualityCheck(
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


@transaction.atomic
def checks_create_many(checks: list[QualityCheck]) -> None:
    """Write checks built by check_build (a restore): their names free on their ports, one
    audit entry each, a few statements for all."""
    names: set[tuple[int, str]] = set()
    for c in checks:
        if (c.port_id, c.name) in names:
            raise ValidationError({"name": "This port already has a check with that name."})
        names.add((c.port_id, c.name))
    ports = {c.port_id for c in checks}
    for chunk in bulk.chunks(list(ports)):
        taken = QualityCheck.objects.filter(port_id__in=chunk).values_list("port_id", "name")
        if names.intersection(taken):
            raise ValidationError({"name": "This port already has a check with that name."})
    bulk.insert(checks, ids=True)
    audit.record_many(
        ("create", c, audit.diff({}, audit.snapshot(c)), c.port.product) for c in checks
    )


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


# Runs per INSERT when dispatching, and how much work one `run_quality_checks` task carries:
# whole tables (one scan each), packed while the sum of their longest timeouts stays within
# TASK_SECONDS (well inside the task's soft time limit) and up to TASK_RUNS runs.
DISPATCH_BATCH = 5000
TASK_SECONDS = 240
TASK_RUNS = 100


def dispatch_due(*, now: datetime | None = None) -> int:
    """Queue every enabled check whose time has come. Set-based: one SELECT of the due checks,
    their runs in a few INSERTs, one UPDATE per distinct next time, tasks that each carry whole
    tables (one scan per table). A constant number of statements however many are due.
    Returns runs queued."""
    now = now or timezone.now()
    sweep_stuck(now=now)
    with transaction.atomic():
        checks = list(
            QualityCheck.objects.select_for_update(skip_locked=True)
            .filter(enabled=True, next_run_at__lte=now, port__data_source__isnull=False)
            .exclude(runs__status__in=QualityRun.ACTIVE)
            .order_by("port_id", "pk")
            .only("pk", "port_id", "cron", "interval_minutes", "timeout_seconds")
        )
        if not checks:
            return 0
        runs = _create_runs_bulk(checks, "schedule", now)
        _reschedule(checks, now)
        _enqueue_tables(
            [(c.port_id, c.timeout_seconds, runs[c.pk]) for c in checks if c.pk in runs]
        )
    return len(runs)


def _create_runs_bulk(checks: list[QualityCheck], trigger: str, now: datetime) -> dict[int, int]:
    """Queued runs for these checks, in batches: {check id: run id}. A check that got a run
    meanwhile ("Run now" between our SELECT and INSERT) is skipped, in one more query."""

    def insert(chosen):
        with transaction.atomic():
            created = QualityRun.objects.bulk_create(
                [
                    QualityRun(quality_check_id=c.pk, trigger=trigger, deadline=now + QUEUE_GRACE)
                    for c in chosen
                ],
                batch_size=DISPATCH_BATCH,
            )
        return {r.quality_check_id: r.pk for r in created}

    try:
        return insert(checks)
    except IntegrityError:
        busy = set(
            QualityRun.objects.filter(
                quality_check_id__in=[c.pk for c in checks], status__in=QualityRun.ACTIVE
            ).values_list("quality_check_id", flat=True)
        )
        return insert([c for c in checks if c.pk not in busy])


def _reschedule(checks: list[QualityCheck], now: datetime) -> None:
    """Move each check's next run on: one UPDATE per distinct next time (checks on the same
    schedule share it), each schedule computed once."""
    times: dict[tuple[str, int], datetime] = {}
    by_time: dict[datetime, list[int]] = defaultdict(list)
    for c in checks:
        key = (c.cron, c.interval_minutes)
        if key not in times:
            times[key] = next_run_after(c, now)
        by_time[times[key]].append(c.pk)
    for at, ids in by_time.items():
        QualityCheck.objects.filter(pk__in=ids).update(next_run_at=at)


def _enqueue_tables(runs: list[tuple[int, int, int]]) -> None:
    """(port id, timeout, run id), ordered by port: one task per pack of whole tables."""
    tables: dict[int, tuple[list[int], int]] = {}
    for port_id, timeout, run_id in runs:
        ids, longest = tables.get(port_id, ([], 0))
        ids.append(run_id)
        tables[port_id] = (ids, max(longest, timeout))
    pack: list[int] = []
    seconds = 0
    for ids, longest in tables.values():
        if pack and (seconds + longest > TASK_SECONDS or len(pack) + len(ids) > TASK_RUNS):
            _enqueue(pack)
            pack, seconds = [], 0
        pack += ids
        seconds += longest
    if pack:
        _enqueue(pack)


# Runs swept per transaction: each batch is all-or-nothing (runs, checks, alerts, incidents and
# trust together) and costs a constant ~25 statements, so ≤ 10 per 1,000 runs.
SWEEP_BATCH = 5000
LOST_MESSAGES = {
    "running": "The worker stopped before finishing (killed or timed out).",
    "queued": "No worker picked this run up in time.",
}


def sweep_stuck(*, now: datetime | None = None) -> int:
    """Runs still queued or running past their deadline (a killed worker, a lost message) end
    as errors, so the check is free to run again. Set-based, in batches of SWEEP_BATCH runs,
    each in one transaction (all or nothing): one UPDATE for the runs and one for their checks,
    one alert per check whose state changed (in bulk), incidents in one pass, the trust of each
    product refreshed once; a constant number of statements per batch."""
    now = now or timezone.now()
    swept = 0
    while True:
        with transaction.atomic():
            # Locked, so a worker's late result waits and then finds the run swept.
            batch = list(
                QualityRun.objects.select_for_update(skip_locked=True)
                .filter(status__in=QualityRun.ACTIVE, deadline__lt=now)
                .order_by("pk")
                .values_list("pk", "status", "quality_check_id")[:SWEEP_BATCH]
            )
            if batch:
                QualityRun.objects.filter(pk__in=[pk for pk, _, _ in batch]).update(
                    status="error",
                    finished_at=now,
                    message=Case(
                        *[When(status=was, then=Value(m)) for was, m in LOST_MESSAGES.items()],
                        default=Value(LOST_MESSAGES["queued"]),
                    ),
                )
                _after_sweep(batch, now)
        swept += len(batch)
        if len(batch) < SWEEP_BATCH:
            return swept


def _after_sweep(batch: list[tuple[int, str, int]], now: datetime) -> None:
    """The checks of swept runs (pk, status was, check id): one per run, as a check has at most
    one active run."""
    check_ids = [check_id for _, _, check_id in batch]
    checks = list(
        QualityCheck.objects.filter(pk__in=check_ids).select_related("port__product__domain")
    )
    QualityCheck.objects.filter(pk__in=check_ids).update(last_status="error", last_run_at=now)
    runs = {
        check_id: QualityRun(
            pk=pk,
            quality_check_id=check_id,
            status="error",
            message=LOST_MESSAGES.get(was, LOST_MESSAGES["queued"]),
            finished_at=now,
        )
        for pk, was, check_id in batch
    }
    changes = []
    for check in checks:
        previous = check.last_status
        check.last_status, check.last_run_at = "error", now
        run = runs[check.pk]
        run.quality_check = check
        if previous != "error":
            changes.append((check, run, previous or "new"))
    alert_state_changes(changes)
    incidents.record_check_results([(check, runs[check.pk]) for check in checks], now=now)
    products = {check.port.product_id: check.port.product for check in checks}
    product_quality_refresh_many(products=list(products.values()))


def execute_runs(*, run_ids: list[int]) -> dict[int, str]:
    """Run the queued runs (of one table or a few, as dispatch_due packs them). Per data source
    one connection, one role check and one catalogue read for all its tables; then table by
    table: claim, scan once, record the table's results together -- a constant number of
    portal queries per table however many checks it has (runs, checks, alerts, incidents and
    the product's trust, all or nothing)."""
    runs = list(
        QualityRun.objects.filter(pk__in=run_ids, status="queued").select_related(
            "quality_check__port__data_source", "quality_check__port__product__domain"
        )
    )
    by_port: dict[int, list[QualityRun]] = defaultdict(list)
    for run in runs:
        by_port[run.quality_check.port_id].append(run)
    by_source: dict[int | None, list[list[QualityRun]]] = defaultdict(list)
    for queued in by_port.values():
        by_source[queued[0].quality_check.port.data_source_id].append(queued)
    outcome: dict[int, str] = {}
    for tables in by_source.values():
        source = tables[0][0].quality_check.port.data_source
        if source is None:
            for queued in tables:
                outcome.update(_run_port(queued, _failing_with("The port has no data source.")))
            continue
        wanted = [q[0].quality_check.port.location for q in tables if _has_schema_check(q)]
        timeout = max(r.quality_check.timeout_seconds for q in tables for r in q)
        with contextlib.ExitStack() as stack:
            # Only opening the source is guarded here (each table's scan never raises): a
            # portal-database error while recording propagates, and the task retries it.
            try:
                session = stack.enter_context(engine.open_session(source, wanted, timeout))
                scan = session.run_table
            except engine.EngineError as e:  # unreachable, refused: every table says why
                scan = _failing_with(str(e))
            except Exception as e:  # noqa: BLE001 - a broken source must never crash the worker
                log.exception("Could not open data source %s", source.pk)
                scan = _failing_with(f"Unexpected error: {type(e).__name__}")
            for queued in tables:
                outcome.update(_run_port(queued, scan))
    return outcome


def _has_schema_check(runs: list[QualityRun]) -> bool:
    return any(r.quality_check.kind == "schema" for r in runs)


def _failing_with(message: str):
    """A stand-in for the engine when a table cannot be scanned at all."""

    def run(location, specs, **kwargs):
        return {s.id: engine.Result("error", message=message) for s in specs}

    return run


def _run_port(queued: list[QualityRun], scan) -> dict[int, str]:
    """Claim a table's queued runs, scan it (`scan`: a SourceSession's run_table), record."""
    now = timezone.now()
    port_runs = _claim(queued, now)
    if not port_runs:
        return {}
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
    declared = list(
        port.fields.values(
            "name", "physical_type", "logical_type", "required", "unique", "primary_key"
        )
    )
    results = scan(
        port.location, specs, declared_fields=declared, allow_samples=samples_allowed(port)
    )
    return _record_table(port, port_runs, results)


def _claim(queued: list[QualityRun], now: datetime) -> list[QualityRun]:
    """Claim a table's queued runs in one UPDATE, just before its scan: a table later in the
    task keeps its queued deadline while the ones before it run, and gets its running
    deadline (its check's timeout and a grace) from now."""
    deadlines = {
        r.pk: now + timedelta(seconds=r.quality_check.timeout_seconds) + RUN_GRACE for r in queued
    }
    QualityRun.objects.filter(pk__in=list(deadlines), status="queued").update(
        status="running",
        started_at=now,
        deadline=Case(
            *[When(pk=pk, then=Value(at)) for pk, at in deadlines.items()],
            output_field=DateTimeField(),
        ),
    )
    # Ours: running since this very instant (another worker's claim has its own).
    claimed = set(
        QualityRun.objects.filter(
            pk__in=list(deadlines), status="running", started_at=now
        ).values_list("pk", flat=True)
    )
    return [r for r in queued if r.pk in claimed]


def _record_table(
    port: OutputPort, port_runs: list[QualityRun], results: dict[int, engine.Result]
) -> dict[int, str]:
    """Store a table's results, all or nothing: its runs and checks in one UPDATE each, one
    alert per check whose state changed, incidents in one pass, the trust refreshed once. A
    run the sweeper ended meanwhile stays ended ("swept")."""
    now = timezone.now()
    with transaction.atomic():
        # Locked first, so the sweeper (which skips locked runs) cannot end them half-way.
        live = set(
            QualityRun.objects.select_for_update()
            .filter(pk__in=[r.pk for r in port_runs], status="running")
            .values_list("pk", flat=True)
        )
        outcome = {r.pk: "swept" for r in port_runs if r.pk not in live}
        finished = [r for r in port_runs if r.pk in live]
        if not finished:
            return outcome
        changes = []
        for run in finished:
            result = results[run.pk]
            run.status, run.observed, run.message = result.status, result.observed, result.message
            run.threshold, run.sample = result.threshold[:200], result.sample
            run.duration_ms, run.finished_at = result.duration_ms, now
            check = run.quality_check
            previous = check.last_status
            check.last_status, check.last_run_at = run.status, now
            if previous != run.status and not (previous == "" and run.status == "passed"):
                changes.append((check, run, previous or "new"))
        QualityRun.objects.bulk_update(
            finished,
            ["status", "observed", "threshold", "message", "sample", "duration_ms", "finished_at"],
        )
        QualityCheck.objects.bulk_update(
            [r.quality_check for r in finished], ["last_status", "last_run_at"]
        )
        alert_state_changes(changes)
        incidents.record_check_results([(r.quality_check, r) for r in finished], now=now)
        product_quality_refresh(product=port.product)
    outcome.update({r.pk: r.status for r in finished})
    return outcome


def samples_allowed(port: OutputPort) -> bool:
    """Failing values are shown only for public and internal products."""
    return port.product.classification in ("public", "internal")


def record_result(*, run: QualityRun, result: engine.Result) -> str:
    """Store one run's result and update its check (state, alert, incidents, trust); a
    table's runs go together through `_record_table`."""
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
    _after_result(check, run, now)
    return result.status


def _after_result(check: QualityCheck, run: QualityRun, now: datetime) -> None:
    previous = check.last_status
    QualityCheck.objects.filter(pk=check.pk).update(last_status=run.status, last_run_at=now)
    check.last_status, check.last_run_at = run.status, now
    incidents.record_check_results([(check, run)], now=now)
    if previous != run.status and not (previous == "" and run.status == "passed"):
        alert_state_change(check=check, run=run, previous=previous or "new")
    product_quality_refresh(product=check.port.product)


# -- alerts and webhooks -----------------------------------------------------------------------


def alert_recipients_many(products: list[DataProduct]) -> dict[int, list]:
    """{product id: the owning team's active members, then the watchers}: two queries for any
    number of products. notify() keeps only those who may see the product."""
    from domains.models import Membership

    team_ids = {p.owner_team_id for p in products}
    members: dict[int, list] = defaultdict(list)
    users: dict[int, Any] = {}  # one object per user, so per-user caches are shared
    for m in (
        Membership.objects.filter(team_id__in=team_ids, user__is_active=True)
        .select_related("user")
        .order_by("user__username")
    ):
        members[m.team_id].append(users.setdefault(m.user_id, m.user))
    watchers = lineage_services.watchers_of_many(products)
    return {
        p.pk: members[p.owner_team_id] + [users.setdefault(u.pk, u) for u in watchers[p.pk]]
        for p in products
    }


def _quality_url(product: DataProduct) -> str:
    return f"{product.get_absolute_url()}?tab=quality"


def alert_state_change(
    *, check: QualityCheck, run: QualityRun, previous: str, recipients: list | None = None
) -> None:
    """`recipients`: the product's (alert_recipients_many), when the caller knows them already."""
    alert_state_changes(
        [(check, run, previous)],
        recipients=None if recipients is None else {check.port.product_id: recipients},
    )


def alert_state_changes(
    changes: list[tuple[QualityCheck, QualityRun, str]],
    *,
    recipients: dict[int, list] | None = None,
) -> None:
    """One alert per check whose state changed, (check, run, previous state) each: to the
    product's team and watchers (in-app and e-mail) and to the team's webhooks. In bulk: a
    constant number of queries for any number of checks and products (plus one per
    recipient of a draft product, to ask whether they may see it)."""
    from meshportal.models import Notification
    from meshportal.notifications import Notice, notify_many

    if not changes:
        return
    products = {c.port.product_id: c.port.product for c, _, _ in changes}
    if recipients is None:
        recipients = alert_recipients_many(list(products.values()))
    healthy = [c for c, r, _ in changes if r.status == "passed"]
    if healthy:
        # The check is healthy again: its open failure alerts are cleared (marked read).
        cleared = Q()
        for c in healthy:
            cleared |= Q(url=_quality_url(c.port.product), title__contains=f"“{c.name}”")
        Notification.objects.filter(
            cleared, kind__in=["quality.failed", "quality.error"], read_at__isnull=True
        ).update(read_at=timezone.now())
        shared_cache.forget_users(shared_cache.NAV_COUNTS)  # the unread badges; no signals
    notices = []
    events: dict[int, list[tuple[str, dict]]] = defaultdict(list)
    for check, run, previous in changes:
        product = check.port.product
        verb = {"passed": "passes again", "failed": "fails", "error": "cannot run"}[run.status]
        # Alerts reach downstream owners too, who may not read this product's data: the
        # message never carries the table's location (sampled values are never in an alert).
        message = connection.redact_text(run.message, [check.port.location])
        notices.append(
            Notice(
                recipients[product.pk],
                kind=f"quality.{run.status}",
                title=f"{product.name}: check “{check.name}” {verb}",
                url=_quality_url(product),
                body=f"{message}\n(was {previous}, now {run.status})",
                about=product,
            )
        )
        events[product.owner_team_id].append(
            (
                f"quality.check.{run.status}",
                {
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
        )
    notify_many(notices)
    webhook_emit_teams(events)


def sign(secret: str, body: bytes) -> str:
    """The X-Mesh-Signature header: sha256=<hex HMAC-SHA256 of the raw body with the secret>."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_emit_teams(events: dict[int, list[tuple[str, dict]]]) -> list[WebhookDelivery]:
    """{team id: [(event, payload)]}: each event to each active webhook of its team, one query
    for the webhooks, one insert for the deliveries, each delivery queued after commit."""
    from governance.quality.tasks import deliver_webhook

    events = {team_id: evs for team_id, evs in events.items() if evs}
    if not events:
        return []
    hooks: dict[int, list[Webhook]] = defaultdict(list)
    for h in Webhook.objects.filter(team_id__in=list(events), active=True):
        hooks[h.team_id].append(h)
    if not hooks:
        return []
    deliveries = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                webhook=h,
                event=event,
                body=json.dumps({"event": event, **payload}, sort_keys=True, default=str),
            )
            for team_id, team_events in events.items()
            for event, payload in team_events
            for h in hooks[team_id]
        ],
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


def _documentation_component(product, fields: int, described: int) -> float:
    share = described / fields if fields else 0.0
    return (bool(product.summary.strip()) + bool(product.description.strip()) + share) / 3


def trust_of(values: dict[str, float | None]) -> tuple[int, dict]:
    """The trust score (0–100) and its breakdown from each component's value (0–1; None: not
    counted yet), weighted by TRUST_WEIGHTS: the one formula (TRUST_FORMULA) that every writer
    of ProductQuality uses, seed_scale's bulk stage included."""
    components = {k: (TRUST_WEIGHTS[k], v) for k, v in values.items() if v is not None}
    total_weight = sum(w for w, _ in components.values())
    score = sum(w * v for w, v in components.values()) / total_weight if total_weight else 0
    breakdown = {k: {"weight": w, "value": round(v, 3)} for k, (w, v) in components.items()}
    return round(100 * score), breakdown


def checks_state(statuses: Iterable[str], any_checks: bool) -> str:
    """A product's quality state from its enabled checks' latest statuses."""
    kinds = set(statuses)
    if kinds & {"failed", "error"}:
        state = ProductQuality.State.FAILING
    elif any_checks and kinds == {"passed"}:
        state = ProductQuality.State.PASSING
    else:
        state = ProductQuality.State.UNCHECKED
    return state.value  # a plain str: the bulk stage writes it with COPY


def product_quality_refresh(*, product: DataProduct) -> ProductQuality:
    """Recompute the trust score and freshness state of a product; alert on an SLO breach."""
    return product_quality_refresh_many(products=[product])[product.pk]


TRUST_FIELDS = ["trust_score", "components", "newest_data_at", "freshness_breached", "state"]


def product_quality_refresh_many(*, products: list[DataProduct]) -> dict[int, ProductQuality]:
    """product_quality_refresh for many products (a sweep, a batch of runs): a constant number
    of queries (checks, newest freshness results, fields, compliance, one upsert), plus the
    alert of each product whose freshness SLO changed state. {product id: its state}."""
    from products.models import SchemaField

    products = list({p.pk: p for p in products}.values())
    if not products:
        return {}
    ids = [p.pk for p in products]
    was = {
        s.product_id: s
        for s in ProductQuality.objects.filter(product_id__in=ids).only(
            "pk", "product_id", "freshness_breached", "trust_score", "state"
        )
    }
    checks: dict[int, list[Any]] = defaultdict(list)  # checks annotated with fresh_*
    newest_run = QualityRun.objects.filter(
        quality_check=OuterRef("pk"), status__in=["passed", "failed"], observed__isnull=False
    ).order_by("-finished_at")
    for check in (
        QualityCheck.objects.filter(port__product_id__in=ids, enabled=True)
        .annotate(
            product_id=F("port__product_id"),
            fresh_started=Case(
                When(kind="freshness", then=Subquery(newest_run.values("started_at")[:1]))
            ),
            fresh_observed=Case(
                When(kind="freshness", then=Subquery(newest_run.values("observed")[:1]))
            ),
        )
        .order_by()
    ):
        checks[check.product_id].append(check)
    documented = {
        row["port__product_id"]: (row["n"], row["described"])
        for row in SchemaField.objects.filter(port__product_id__in=ids)
        .values("port__product_id")
        .annotate(n=Count("pk"), described=Count("pk", filter=Q(description__regex=r"\S")))
        .order_by()
    }
    compliance = policy_services.compliance_shares(products)
    now = timezone.now()
    states: dict[int, ProductQuality] = {}
    breach_changed = []
    for product in products:
        state = ProductQuality(product=product)
        product_checks = checks[product.pk]
        newest = None
        for c in product_checks:
            if c.kind == "freshness" and c.fresh_started and c.fresh_observed is not None:
                at = c.fresh_started - timedelta(hours=c.fresh_observed)
                newest = at if newest is None else min(newest, at)
        state.newest_data_at = newest
        slo = product.freshness_slo_hours
        state.freshness_breached = bool(
            slo is not None and newest is not None and now - newest > timedelta(hours=slo)
        )
        state.state = checks_state((c.last_status for c in product_checks), bool(product_checks))
        values = {
            "checks": _checks_component(product, product_checks),
            "freshness": _freshness_component(product, state),
            "documentation": _documentation_component(product, *documented.get(product.pk, (0, 0))),
            "compliance": compliance[product.pk],
        }
        state.trust_score, state.components = trust_of(values)
        states[product.pk] = state
        before = was.get(product.pk)
        if state.freshness_breached != (before.freshness_breached if before else False):
            breach_changed.append((product, state))
    # One upsert (INSERT … ON CONFLICT (product) DO UPDATE) for new and existing rows alike.
    ProductQuality.objects.bulk_create(
        list(states.values()),
        update_conflicts=True,
        unique_fields=["product"],
        update_fields=[*TRUST_FIELDS, "updated_at"],
    )
    for product_id, state in states.items():
        if state.pk is None and product_id in was:
            state.pk = was[product_id].pk
    _freshness_alerts(breach_changed)
    # The home page's "most trusted" and domain tiles, the product list's quality facet: cached
    # for everyone (public products).
    if any(
        (states[p.pk].trust_score, states[p.pk].state)
        != ((was[p.pk].trust_score, was[p.pk].state) if p.pk in was else (None, None))
        for p in products
        if p.status != DataProduct.Status.DRAFT
    ):
        shared_cache.forget_public(
            shared_cache.HOME, shared_cache.DOMAIN_SHARES, shared_cache.LIST_FACETS
        )
    return states


def _freshness_alerts(changes: list[tuple[DataProduct, ProductQuality]]) -> None:
    """Products whose freshness SLO changed state: their incidents, alerts and webhook events,
    in a constant number of queries however many products (a sweep refreshes thousands; one
    at a time it cost ~13 queries for each product whose freshness flipped)."""
    if not changes:
        return
    incidents.record_freshness_many(
        [
            (product, state.freshness_breached, product.freshness_slo_hours)
            for product, state in changes
        ]
    )
    recipients = alert_recipients_many([product for product, _ in changes])
    notices = []
    events: dict[int, list[tuple[str, dict]]] = defaultdict(list)
    for product, state in changes:
        slo, newest = product.freshness_slo_hours, state.newest_data_at
        notices.append(
            Notice(
                recipients[product.pk],
                kind="quality.freshness",
                title=(
                    f"{product.name} breaks its freshness SLO ({slo} h)"
                    if state.freshness_breached
                    else f"{product.name} is fresh again"
                ),
                url=_quality_url(product),
                body=f"Newest data: {newest:%Y-%m-%d %H:%M} UTC." if newest else "",
                about=product,
            )
        )
        events[product.owner_team_id].append(
            (
                "quality.freshness",
                {
                    "product": product.urn,
                    "breached": state.freshness_breached,
                    "slo_hours": slo,
                    "newest_data_at": newest.isoformat() if newest else None,
                },
            )
        )
    notify_many(notices)
    webhook_emit_teams(events)


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
