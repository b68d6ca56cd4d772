"""Warehouse tables with known contents, on SQLite and (when present) PostgreSQL, and data
sources and ports pointing at them."""

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from governance.quality.warehouse_roles import ensure_reader_role

NOW = datetime.now(UTC).replace(microsecond=0)

# id, name, status, amount, created_at
ROWS = [
    (1, "a", "ok", 10, NOW - timedelta(hours=1)),
    (2, None, "ok", 20, NOW - timedelta(hours=2)),
    (3, "c", "bad", -5, NOW - timedelta(hours=3)),
    (4, "c", None, 200, NOW - timedelta(hours=4)),
    (5, "e", "ok", 50, NOW - timedelta(hours=5)),
    (5, "e", "ok", 50, NOW - timedelta(hours=30)),
]
FIELDS = [
    {"name": "id", "physical_type": "bigint", "logical_type": "integer"},
    {"name": "name", "physical_type": "text", "logical_type": "string"},
    {"name": "status", "physical_type": "text", "logical_type": "string"},
    {"name": "amount", "physical_type": "numeric(12,2)", "logical_type": "number"},
    {"name": "created_at", "physical_type": "timestamptz", "logical_type": "timestamp"},
]
SQLITE_FIELDS = [
    {"name": "id", "physical_type": "INTEGER"},
    {"name": "name", "physical_type": "TEXT"},
    {"name": "status", "physical_type": "TEXT"},
    {"name": "amount", "physical_type": "REAL"},
    {"name": "created_at", "physical_type": "TEXT"},
]


def _sqlite_warehouse(path) -> SimpleNamespace:
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE t_known (id INTEGER, name TEXT, status TEXT, amount REAL, created_at TEXT)"
    )
    conn.executemany(
        "INSERT INTO t_known VALUES (?, ?, ?, ?, ?)",
        [(*r[:4], r[4].isoformat(sep=" ")) for r in ROWS],
    )
    conn.commit()
    conn.close()
    source = SimpleNamespace(
        kind="sqlite",
        host="",
        port=None,
        database=str(path),
        user="",
        password_env="",
        sslmode="",
        default_schema="main",
        max_timeout_seconds=300,
    )
    return SimpleNamespace(
        source=source,
        location="main.t_known",
        fields=SQLITE_FIELDS,
        vendor="sqlite",
        count=lambda: _sqlite_count(path),
    )


def _sqlite_count(path) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT COUNT(*) FROM t_known").fetchone()[0]
    finally:
        conn.close()


# The login role tests' data sources read PostgreSQL tables as (SELECT on their schema only).
READER_ROLE = "mesh_test_reader"


def pg_dsn_kwargs() -> dict:
    s = connection.settings_dict
    return {
        "host": s.get("HOST") or "127.0.0.1",
        "port": s.get("PORT") or 5432,
        "dbname": s["NAME"],
        "user": s.get("USER") or "postgres",
    }


@pytest.fixture
def pg_warehouse(db):
    """A committed table in a schema of its own in the test database (the engine connects on
    its own, outside the test's transaction)."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: set DATABASE_URL=postgres://…")
    schema = f"qtest_{uuid.uuid4().hex[:8]}"
    kw = pg_dsn_kwargs()
    with psycopg.connect(**kw, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(
            f'CREATE TABLE "{schema}".t_known (id bigint, name text, status text, '
            f"amount numeric(12,2), created_at timestamptz)"
        )
        with conn.cursor() as cur:
            # the schema name is generated above
            sql = f'INSERT INTO "{schema}".t_known VALUES (%s, %s, %s, %s, %s)'  # nosec B608
            cur.executemany(sql, ROWS)
            # The engine refuses a superuser: read the table as a least-privilege role.
            ensure_reader_role(cur, READER_ROLE, [schema])
    source = SimpleNamespace(
        kind="postgresql",
        host=kw["host"],
        port=int(kw["port"]),
        database=kw["dbname"],
        user=READER_ROLE,
        password_env="PGPASSWORD_UNUSED",
        sslmode="",
        default_schema=schema,
        max_timeout_seconds=300,
    )

    def count():
        with psycopg.connect(**kw) as c:
            sql = f'SELECT COUNT(*) FROM "{schema}".t_known'  # generated name  # nosec B608
            return c.execute(sql).fetchone()[0]

    yield SimpleNamespace(
        source=source,
        location=f"{schema}.t_known",
        fields=FIELDS,
        vendor="postgresql",
        count=count,
        schema=schema,
    )
    with psycopg.connect(**kw, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def sqlite_warehouse(tmp_path):
    return _sqlite_warehouse(tmp_path / "known.sqlite3")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def warehouse(request, tmp_path):
    if request.param == "sqlite":
        return _sqlite_warehouse(tmp_path / "known.sqlite3")
    return request.getfixturevalue("pg_warehouse")


@pytest.fixture
def checked_port(mesh, warehouse):
    """The orders domain's published product's port, pointing at the known table."""
    from governance.models import DataSource
    from products.models import SchemaField

    src = warehouse.source
    ds = DataSource.objects.create(
        slug=f"known-{warehouse.vendor}",
        name=f"Known ({warehouse.vendor})",
        kind=src.kind,
        host=src.host,
        port=src.port,
        database=src.database,
        user=src.user,
        password_env=src.password_env,
        default_schema=src.default_schema,
    )
    product = mesh.products[("orders", "published")]
    port = product.ports.get()
    port.data_source = ds
    port.location = warehouse.location
    port.save()
    SchemaField.objects.filter(port=port).delete()
    for n, f in enumerate(warehouse.fields):
        SchemaField.objects.create(
            port=port,
            name=f["name"],
            physical_type=f["physical_type"],
            logical_type=f.get("logical_type", "string"),
            ordinal=n,
        )
    return SimpleNamespace(port=port, product=product, source=ds, warehouse=warehouse, mesh=mesh)


@pytest.fixture
def demo_committed(transactional_db):
    """seed_demo with committed tables (the engine reads them over its own connection)."""
    call_command("seed_demo", verbosity=0)
    yield
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute(f'DROP SCHEMA IF EXISTS "{settings.MESH_DEMO_WAREHOUSE_SCHEMA}" CASCADE')


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """The mesh creates several users; a cheap hasher keeps these tests quick."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# -- the same table on DuckDB (a database file, Parquet and CSV files) and MariaDB -------------

DUCKDB_FIELDS = [{"name": f["name"]} for f in FIELDS]
MYSQL_PASSWORD_ENV = "MESH_TEST_MYSQL_READER_PASSWORD"


def _source(**kw) -> SimpleNamespace:
    base = {
        "host": "",
        "port": None,
        "database": "",
        "user": "",
        "password_env": "",
        "secret_file": "",
        "sslmode": "",
        "default_schema": "",
        "max_timeout_seconds": 300,
        "options": {},
    }
    return SimpleNamespace(**{**base, **kw})


def _duckdb_warehouse(tmp_path, form: str) -> SimpleNamespace:
    duckdb = pytest.importorskip("duckdb")
    db = tmp_path / "warehouse.duckdb"
    files = tmp_path / "files"
    files.mkdir()
    conn = duckdb.connect(str(db))
    conn.execute("SET TimeZone = 'UTC'")
    conn.execute(
        "CREATE TABLE t_known (id BIGINT, name TEXT, status TEXT, amount DECIMAL(12,2), "
        "created_at TIMESTAMP)"
    )
    conn.executemany(
        "INSERT INTO t_known VALUES (?, ?, ?, ?, ?)",
        [(*r[:4], r[4].replace(tzinfo=None)) for r in ROWS],
    )
    # Two Parquet files (a glob reads both) and one CSV file of the same rows.
    conn.execute(f"COPY (SELECT * FROM t_known WHERE id <= 3) TO '{files}/part-1.parquet'")
    conn.execute(f"COPY (SELECT * FROM t_known WHERE id > 3) TO '{files}/part-2.parquet'")
    conn.execute(f"COPY t_known TO '{files}/known.csv' (HEADER)")
    conn.close()
    if form == "database":
        source = _source(kind="duckdb", database=str(db), default_schema="main")
        location = "main.t_known"
    else:
        source = _source(kind="duckdb", options={"file_root": str(files)})
        location = "part-*.parquet" if form == "parquet" else "known.csv"

    def count():
        c = duckdb.connect(str(db), read_only=True)
        try:
            return c.execute("SELECT COUNT(*) FROM t_known").fetchone()[0]
        finally:
            c.close()

    return SimpleNamespace(
        source=source,
        location=location,
        fields=DUCKDB_FIELDS,
        vendor="duckdb",
        count=count,
        files=files,
    )


@pytest.fixture
def mariadb_warehouse(monkeypatch):
    """A database of its own on MariaDB, read by an account with SELECT on it only."""
    import pymysql

    from tests.conftest import MARIADB

    name = f"mesh_q_{uuid.uuid4().hex[:8]}"
    reader = f"r_{name}"[:32]
    password = uuid.uuid4().hex
    monkeypatch.setenv(MYSQL_PASSWORD_ENV, password)
    root = pymysql.connect(**MARIADB, autocommit=True)
    with root.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
        cur.execute(
            f"CREATE TABLE `{name}`.t_known (id BIGINT, name TEXT, status TEXT, "
            "amount DECIMAL(12,2), created_at DATETIME)"
        )
        cur.executemany(
            f"INSERT INTO `{name}`.t_known VALUES (%s, %s, %s, %s, %s)",  # nosec B608
            [(*r[:4], r[4].replace(tzinfo=None)) for r in ROWS],
        )
        cur.execute(f"CREATE USER '{reader}'@'%%' IDENTIFIED BY %s", [password])
        cur.execute(f"GRANT SELECT ON `{name}`.* TO '{reader}'@'%'")
    source = _source(
        kind="mysql",
        host="127.0.0.1",
        port=3306,
        database=name,
        user=reader,
        password_env=MYSQL_PASSWORD_ENV,
    )

    def count():
        with root.cursor() as cur:
            cur.execute(f"SELECT COUNT(*) FROM `{name}`.t_known")  # nosec B608
            return cur.fetchone()[0]

    yield SimpleNamespace(
        source=source,
        location="t_known",
        fields=DUCKDB_FIELDS,
        vendor="mysql",
        count=count,
        root=root,
        database=name,
        reader=reader,
    )
    with root.cursor() as cur:
        cur.execute(f"DROP USER IF EXISTS '{reader}'@'%'")
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    root.close()


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
        "duckdb",
        "duckdb-parquet",
        "duckdb-csv",
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ]
)
def engine_warehouse(request, tmp_path):
    """The known table on every engine this machine runs."""
    kind = request.param
    if kind == "sqlite":
        return _sqlite_warehouse(tmp_path / "known.sqlite3")
    if kind == "postgresql":
        return request.getfixturevalue("pg_warehouse")
    if kind == "mariadb":
        return request.getfixturevalue("mariadb_warehouse")
    return _duckdb_warehouse(tmp_path, {"duckdb": "database"}.get(kind, kind.split("-")[-1]))
