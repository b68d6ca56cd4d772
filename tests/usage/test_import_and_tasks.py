"""`import_usage` in every file format, the raw events' retention, and the pg_stat_statements
poll (real PostgreSQL: skipped cleanly when the extension is missing or not loaded)."""

import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from governance.models import DataSource
from usage import services
from usage.models import IngestRun, ObservedEdge, PgStatCursor, ProductUsage, QueryEvent

pytestmark = pytest.mark.django_db


def run(tmp_path, text: str, fmt: str, *extra) -> tuple[str, str]:
    path = tmp_path / f"log.{fmt}"
    path.write_text(text)
    from io import StringIO

    out, err = StringIO(), StringIO()
    call_command(
        "import_usage", str(path), "--source", "wh", "--format", fmt, *extra, stdout=out, stderr=err
    )
    return out.getvalue(), err.getvalue()


def reads(product) -> int:
    return sum(
        ProductUsage.objects.filter(product=product, kind="read").values_list("queries", flat=True)
    )


def test_json_lines_bad_lines_reported_and_skipped(usage_mesh, tmp_path):
    lines = [
        json.dumps(
            {
                "user": "svc_users",
                "query": "SELECT * FROM sales.orders",
                "timestamp": "2026-12-01T10:00:00Z",
            }
        ),
        "{not json",
        json.dumps({"user": "svc_users", "query": "SELECT 1", "timestamp": "never"}),
        json.dumps(
            {"user": "bi_reader", "query": "SELECT * FROM sales.orders", "timestamp": 1764583200}
        ),
    ]
    out, err = run(tmp_path, "\n".join(lines), "json")
    assert "line 2: Not JSON" in err and "line 3.timestamp: Not a timestamp" in err
    assert "Imported 2 queries (2 on product ports, 0 unparsed SQL, 2 bad lines skipped)" in out
    assert reads(usage_mesh.orders_product) == 2


def test_strict_stores_nothing_when_a_line_is_bad(usage_mesh, tmp_path):
    text = (
        json.dumps({"user": "a", "query": "SELECT * FROM sales.orders", "timestamp": "2026-12-01"})
        + "\n{"
    )
    with pytest.raises(CommandError, match="nothing was stored"):
        run(tmp_path, text, "json", "--strict")
    assert not QueryEvent.objects.exists()


def test_unknown_source_and_missing_file(usage_mesh, tmp_path):
    with pytest.raises(CommandError, match="No data source"):
        call_command("import_usage", str(tmp_path / "x"), "--source", "nope")
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_usage", str(tmp_path / "missing.json"), "--source", "wh")


def test_postgresql_csvlog(usage_mesh, tmp_path):
    row = '2026-12-01 10:00:00.123 UTC,"svc_users","wh",4242,"10.0.0.5:5111",656a1.1,3,"SELECT",2026-12-01 09:59:00 UTC,3/7,0,LOG,00000,"{msg}",,,,,,,,,"psql","client backend",,0'
    text = "\n".join(
        [
            row.format(msg="duration: 1.2 ms  statement: SELECT * FROM sales.orders WHERE id = 1"),
            row.format(msg="connection authorized: user=svc_users"),
            row.format(msg="execute S_1: INSERT INTO crm.users SELECT * FROM sales.orders"),
            "too,few,columns",
        ]
    )
    out, err = run(tmp_path, text, "pg-csvlog")
    assert "line 4: Expected" in err
    assert "Imported 2 queries" in out
    assert reads(usage_mesh.orders_product) == 2
    assert ObservedEdge.objects.get().target_product == usage_mesh.users_product
    assert (
        QueryEvent.objects.filter(
            occurred_at=datetime(2026, 12, 1, 10, 0, 0, 123000, tzinfo=UTC)
        ).count()
        == 2
    )


def test_snowflake_access_history(usage_mesh, tmp_path):
    header = "QUERY_ID,QUERY_START_TIME,USER_NAME,DIRECT_OBJECTS_ACCESSED,BASE_OBJECTS_ACCESSED,OBJECTS_MODIFIED\n"
    base = json.dumps([{"objectName": "WH.SALES.ORDERS", "objectDomain": "Table"}]).replace(
        '"', '""'
    )
    modified = json.dumps([{"objectName": "WH.CRM.USERS", "objectDomain": "Table"}]).replace(
        '"', '""'
    )
    text = header + f'01b2,2026-12-01 10:00:00.000 Z,SVC_USERS,"{base}","{base}","{modified}"\n'
    text += f'01b3,2026-12-01 11:00:00.000 Z,BI_READER,"{base}","{base}",\n'
    text += '01b4,not a time,X,"[]","[]",\n'
    out, err = run(tmp_path, text, "snowflake")
    assert "QUERY_START_TIME" in err
    assert "Imported 2 queries (2 on product ports" in out
    assert reads(usage_mesh.orders_product) == 2
    assert (
        ProductUsage.objects.get(product=usage_mesh.users_product, kind="write").principal
        == "SVC_USERS"
    )


def test_bigquery_jobs(usage_mesh, tmp_path):
    rows = [
        {"creation_time": "2026-12-01T10:00:00Z", "user_email": "ana@example.com", "job_type": "QUERY",
         "query": "SELECT * FROM `proj.sales.orders`"},
        {"creation_time": "2026-12-01T10:00:00Z", "user_email": "ana@example.com", "job_type": "LOAD", "query": ""},
    ]  # fmt: skip
    out, _ = run(tmp_path, json.dumps(rows), "bigquery")
    assert "Imported 1 queries (1 on product ports" in out


def test_otlp_file(usage_mesh, tmp_path):
    from tests.usage.conftest import otlp

    out, _ = run(tmp_path, json.dumps(otlp([("svc_users", "SELECT * FROM sales.orders")])), "otlp")
    assert "Imported 1 queries" in out


def test_retention_deletes_old_raw_events_and_keeps_daily_totals(usage_mesh, settings):
    from usage.formats import Record
    from usage.tasks import purge_raw_events

    settings.MESH_USAGE_RAW_RETENTION_DAYS = 7
    now = datetime.now(UTC)
    services.usage_ingest(
        source=usage_mesh.source,
        door="api",
        records=[
            Record("svc_users", now - timedelta(days=10), "SELECT * FROM sales.orders"),
            Record("svc_users", now - timedelta(days=1), "SELECT * FROM sales.orders"),
        ],
    )
    assert purge_raw_events() == 1
    assert QueryEvent.objects.count() == 1
    assert reads(usage_mesh.orders_product) == 2  # the totals stay


def test_pg_stat_snapshots_ingest_what_ran_since_the_last_one(usage_mesh):
    source, now = usage_mesh.source, datetime.now(UTC)
    q = "SELECT * FROM sales.orders WHERE id = $1"
    services.pg_stat_rows_ingest(source=source, rows=[("svc_users", 11, q, 5, 50)], now=now)
    services.pg_stat_rows_ingest(source=source, rows=[("svc_users", 11, q, 8, 80)], now=now)
    assert reads(usage_mesh.orders_product) == 8
    services.pg_stat_rows_ingest(
        source=source, rows=[("svc_users", 11, q, 2, 20)], now=now
    )  # reset
    assert reads(usage_mesh.orders_product) == 10
    assert PgStatCursor.objects.get().calls == 2
    assert IngestRun.objects.filter(door="pg_stat").count() == 3


def test_pg_stat_poll_skips_a_sqlite_source(usage_mesh):
    source = DataSource.objects.create(slug="lite", name="Lite", kind="sqlite", database="x.db")
    assert services.pg_stat_statements_poll(source=source).skipped == "not a PostgreSQL data source"


@pytest.mark.postgres
def test_pg_stat_poll_is_skipped_cleanly_on_real_postgresql_without_the_extension(transactional_db):
    """The test database has no pg_stat_statements, then has it but not loaded
    (shared_preload_libraries): both are a skip with the reason, no error, nothing stored."""
    from governance.quality.warehouse_roles import ensure_reader_role
    from usage.tasks import poll_pg_stat_statements

    s = connection.settings_dict
    kw = {"host": s.get("HOST") or "127.0.0.1", "port": s.get("PORT") or 5432, "dbname": s["NAME"],
          "user": s.get("USER") or "postgres"}  # fmt: skip
    with psycopg.connect(**kw, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("CREATE SCHEMA IF NOT EXISTS usage_wh")
        ensure_reader_role(cur, "mesh_usage_reader", ["usage_wh"])
        cur.execute("DROP EXTENSION IF EXISTS pg_stat_statements")
    DataSource.objects.create(
        slug="pg", name="PG", kind="postgresql", host=kw["host"], port=int(kw["port"]),
        database=kw["dbname"], user="mesh_usage_reader", password_env="UNUSED_PASSWORD_ENV",
    )  # fmt: skip
    assert poll_pg_stat_statements() == {"pg": "the pg_stat_statements extension is not installed"}
    with psycopg.connect(**kw, autocommit=True) as conn:
        loaded = conn.execute("SHOW shared_preload_libraries").fetchone()[0]
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    try:
        result = poll_pg_stat_statements()["pg"]
        if "pg_stat_statements" in loaded:
            assert result.endswith("queries")
        else:
            assert result.startswith("pg_stat_statements could not be read")
            assert "shared_preload_libraries" in result
            assert not IngestRun.objects.exists()
    finally:
        with psycopg.connect(**kw, autocommit=True) as conn:
            conn.execute("DROP EXTENSION IF EXISTS pg_stat_statements")
