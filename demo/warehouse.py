"""Builds the demo warehouse: real tables, plausible rows, deliberate flaws.

On PostgreSQL the tables live in a schema of the portal's own database, read by the data source
through a login role of its own that can only SELECT that schema (never the portal's role, never
a superuser: the portal's tables answer "permission denied"); on SQLite in a file of their own.
A table that exists already is left alone, so fixes made by hand survive.
"""

import os
import random
import sqlite3
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection

from demo.products import VALUES
from governance.quality.warehouse_roles import ensure_reader_role

PG_TYPES = {
    "integer": "bigint",
    "number": "numeric(12,2)",
    "string": "text",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamptz",
    "object": "jsonb",
    "array": "jsonb",
}
SQLITE_TYPES = {
    "integer": "INTEGER",
    "number": "REAL",
    "string": "TEXT",
    "boolean": "INTEGER",
    "date": "TEXT",
    "timestamp": "TEXT",
    "object": "TEXT",
    "array": "TEXT",
}


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def schema_name() -> str:
    return settings.MESH_DEMO_WAREHOUSE_SCHEMA if is_postgres() else "main"


def physical_type(logical: str) -> str:
    return (PG_TYPES if is_postgres() else SQLITE_TYPES)[logical]


@contextmanager
def warehouse_cursor():
    if is_postgres():
        with connection.cursor() as cur:
            cur.execute(f'CREATE SCHEMA IF NOT EXISTS "{settings.MESH_DEMO_WAREHOUSE_SCHEMA}"')
            yield cur
    else:
        conn = sqlite3.connect(settings.MESH_DEMO_WAREHOUSE_PATH)
        try:
            yield conn.cursor()
            conn.commit()
        finally:
            conn.close()


def _table_exists(cur, table: str) -> bool:
    if is_postgres():
        cur.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
            [settings.MESH_DEMO_WAREHOUSE_SCHEMA, table],
        )
    else:
        cur.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [table])
    return cur.fetchone() is not None


def _value(rng: random.Random, field: dict, i: int, now: datetime):
    gen, logical, name = field.get("gen"), field["logical_type"], field["name"]
    if gen == "email":
        return f"customer{i}@example.com"
    if gen == "full_name":
        return (
            rng.choice(["Ana", "Ben", "Chen", "Dara", "Eli", "Fay"])
            + " "
            + rng.choice(["Smith", "Garcia", "Müller", "Rossi", "Kim", "Novak"])
        )
    if gen in ("sku", "sku_unique"):
        return f"SKU-{i if gen == 'sku_unique' else rng.randint(1, 500):05d}"
    if gen == "url":
        return rng.choice(["/", "/shoes", "/shirts", "/cart", "/checkout", "/account"])
    if gen == "last4":
        return f"{rng.randint(0, 9999):04d}"
    if gen in VALUES:
        return rng.choice(VALUES[gen])
    if logical == "integer":
        if field["primary_key"]:
            return i
        return rng.randint(1, 1000) if name.endswith("_id") else rng.randint(0, 500)
    if logical == "number":
        return Decimal(rng.randint(100, 50000)) / 100
    if logical == "boolean":
        return rng.random() < 0.7
    if logical == "date":
        return (now - timedelta(days=i)).date()
    if logical == "timestamp":
        return now - timedelta(minutes=rng.randint(1, 600))
    return rng.choice(["alpha", "beta", "gamma", "delta"])


def _adapt(value):
    """SQLite stores dates and times as ISO text and decimals as floats."""
    if is_postgres():
        return value
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def build_rows(port: dict, now: datetime) -> list[list]:
    rng = random.Random(port["table"])  # deterministic demo data per table  # nosec B311
    fields, flaws = port["fields"], port.get("flaws", {})
    rows = [[_value(rng, f, i, now) for f in fields] for i in range(1, port.get("rows", 100) + 1)]
    index = {f["name"]: n for n, f in enumerate(fields)}
    for column, share in flaws.get("nulls", {}).items():
        for row in rows:
            if rng.random() < share:
                row[index[column]] = None
    for column in flaws.get("duplicates", []):
        for k in range(1, 6):  # five rows repeat an earlier row's value
            rows[-k][index[column]] = rows[k][index[column]]
    if "stale" in flaws:
        col = index[flaws["stale"]]
        for row in rows:
            row[col] = now - timedelta(days=3, minutes=rng.randint(0, 600))
    for column, bad in flaws.get("invalid", {}).items():
        for k in range(3):
            rows[10 + k][index[column]] = bad
    return rows


def create_table(cur, port: dict, now: datetime) -> bool:
    """Create and fill one table unless it exists. Returns whether it was created."""
    table = port["table"]
    if _table_exists(cur, table):
        return False
    cols = ", ".join(f'"{f["name"]}" {physical_type(f["logical_type"])}' for f in port["fields"])
    qualified = f'"{schema_name()}"."{table}"' if is_postgres() else f'"{table}"'
    cur.execute(f"CREATE TABLE {qualified} ({cols})")
    marks = ", ".join(["%s" if is_postgres() else "?"] * len(port["fields"]))
    rows = [[_adapt(v) for v in row] for row in build_rows(port, now)]
    cur.executemany(f"INSERT INTO {qualified} VALUES ({marks})", rows)  # noqa: S608 - names from our own spec  # nosec B608
    return True


def build(ports: list[dict]) -> int:
    now = datetime.now(UTC)
    created = 0
    with warehouse_cursor() as cur:
        for port in ports:
            created += create_table(cur, port, now)
        if is_postgres():
            grant_reader(cur)
    return created


def grant_reader(cur) -> None:
    """The demo data source's role: LOGIN, USAGE on the demo schema, SELECT on its tables."""
    ensure_reader_role(
        cur,
        settings.MESH_DEMO_WAREHOUSE_ROLE,
        [settings.MESH_DEMO_WAREHOUSE_SCHEMA],
        password=os.environ.get("DEMO_WAREHOUSE_PASSWORD") or None,
    )
