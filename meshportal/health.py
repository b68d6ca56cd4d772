"""Readiness checks for /readyz: each returns {"ok": bool, "detail": str}; none raises."""

import logging
import time
from pathlib import Path

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor

log = logging.getLogger(__name__)

# Once every migration is applied, this process's code cannot gain new ones: skip re-reading
# the migration files on every probe.
_migrations_applied = False


def _timed(fn) -> dict:
    started = time.monotonic()
    try:
        ok, detail = fn()
    except Exception as exc:  # noqa: BLE001 - a probe reports any failure, it never raises
        # The endpoint is public: say which check failed, keep hosts and messages in the log.
        log.warning("Readiness check %s failed: %s", fn.__name__, exc)
        ok, detail = False, type(exc).__name__
    return {"ok": ok, "detail": detail, "ms": round((time.monotonic() - started) * 1000, 1)}


def check_database() -> tuple[bool, str]:
    connection = connections[DEFAULT_DB_ALIAS]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        # Drop the broken connection so the next probe (or request) opens a fresh one.
        connection.close_if_unusable_or_obsolete()
        raise
    return True, connection.vendor


def broker_ping(timeout: float = 2.0) -> tuple[bool, str]:
    """PING Redis when the broker is Redis; the embedded filesystem broker needs its folder."""
    url = settings.CELERY_BROKER_URL
    if settings.BROKER_IS_REDIS:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            client.ping()
        finally:
            client.close()
        return True, "redis"
    if url.startswith("filesystem://"):
        folder = str(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
        return Path(folder).is_dir(), "filesystem"
    from meshportal.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=timeout)
    return True, "broker"


def check_migrations() -> tuple[bool, str]:
    global _migrations_applied
    if _migrations_applied:
        return True, "all applied"
    executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
    # Every node, not a plan to the leaves: a merge migration that is applied would hide an
    # unapplied parent from migration_plan().
    applied = executor.loader.applied_migrations
    unapplied = sorted(k for k in executor.loader.graph.nodes if k not in applied)
    if unapplied:
        return False, f"{len(unapplied)} unapplied, e.g. {unapplied[0][0]}.{unapplied[0][1]}"
    _migrations_applied = True
    return True, "all applied"


def readiness() -> dict[str, dict]:
    checks = {"database": _timed(check_database), "broker": _timed(broker_ping)}
    if checks["database"]["ok"]:
        checks["migrations"] = _timed(check_migrations)
    else:
        checks["migrations"] = {"ok": False, "detail": "database unreachable", "ms": 0.0}
    return checks
