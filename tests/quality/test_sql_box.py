"""Issue 14, item 5: custom SQL cannot leave its box, and warehouse access is least privilege.

Every attempt of the security probe is refused at definition time (form, API, contract import:
one validator) or fails at run time without effect; the portal's own tables are unreachable from
the demo's data source; a superuser source (or one that can read the portal's tables) is refused;
a check's timeout never exceeds its source's maximum."""

import psycopg
import pytest
from django.core import mail
from django.core.management import call_command
from django.urls import reverse
from rest_framework.test import APIClient

from governance.models import DataSource, QualityCheck, QualityRun
from governance.quality import engine, services
from governance.quality.engine import CheckSpec
from governance.quality.odcs import odcs_to_checks
from meshportal.models import Notification
from tests.quality.conftest import pg_dsn_kwargs

C = "/api/v1/quality-checks/"
DOLLAR = "SELECT $z$'$z$ AS c; COMMIT; BEGIN READ WRITE; DELETE FROM {t}; COMMIT; SELECT 1 --'"
# (attempt, what the refusal names)
# SQLite has no dollar quoting: its parser reads `$z$` as a name, refused as such.
ATTEMPTS = [
    (DOLLAR, ("Only one statement", "The name $z$ is not allowed")),
    ("COPY (SELECT 1) TO PROGRAM 'touch /tmp/mesh-pwned'", "must be a single SELECT"),
    ("SELECT pg_terminate_backend(pg_backend_pid())", "PG_TERMINATE_BACKEND is not allowed"),
    ("SELECT length(pg_read_file('/etc/hostname'))", "PG_READ_FILE is not allowed"),
    ("SELECT COUNT(*) FROM auth_user", "auth_user is not allowed"),
    ("SELECT COUNT(*) FROM public.django_session", "public.django_session is not allowed"),
    (
        "SELECT CAST((SELECT session_key FROM django_session LIMIT 1) AS integer)",
        "django_session is not allowed",
    ),
    ("SELECT COUNT(*) FROM pg_catalog.pg_authid", "pg_catalog.pg_authid is not allowed"),
    ("SELECT COUNT(*) FROM information_schema.tables", "information_schema.tables"),
    ("SELECT COUNT(*) FROM sqlite_master", "sqlite_master is not allowed"),
    ("SELECT lo_import('/etc/hostname')", "LO_IMPORT is not allowed"),
    ("SELECT COUNT(*) FROM dblink('dbname=x', 'SELECT 1') AS t(a int)", "Table functions"),
    ("SELECT set_config('default_transaction_read_only', 'off', false)", "SET_CONFIG"),
    ("SELECT CAST(current_setting('is_superuser') AS int)", "CURRENT_SETTING"),
    ("SELECT COUNT(*) FROM ${object} FOR UPDATE", "LOCK is not allowed"),
    ("WITH d AS (DELETE FROM ${object} RETURNING 1) SELECT COUNT(*) FROM d", "DELETE"),
    ("WITH a AS (SELECT * FROM auth_user) SELECT COUNT(*) FROM a", "auth_user"),
    ("SELECT pg_catalog.lower('x')", "Schema-qualified functions"),
    ("SELECT CAST('auth_user' AS regclass)", "Casting to REGCLASS"),
]


def _needles(needle) -> tuple:
    return needle if isinstance(needle, tuple) else (needle,)


def _sql(attempt: str, port) -> str:
    return attempt.replace("{t}", port.location)


# -- definition time: one validator, every door ------------------------------------------------


@pytest.mark.parametrize(("attempt", "needle"), ATTEMPTS, ids=[a[:40] for a, _ in ATTEMPTS])
def test_api_refuses_each_attempt_with_the_field_and_reason(checked_port, attempt, needle):
    api = APIClient()
    api.force_login(checked_port.mesh.member)
    r = api.post(
        C,
        {
            "port": checked_port.port.pk,
            "name": "escape",
            "kind": "custom_sql",
            "params": {"sql": _sql(attempt, checked_port.port)},
        },
        format="json",
    )
    assert r.status_code == 400, r.json()
    reasons = [e["reason"] for e in r.json()["errors"] if e["field"] == "params"]
    assert any(n in reason for reason in reasons for n in _needles(needle)), r.json()
    assert not QualityCheck.objects.exists()
    assert checked_port.warehouse.count() == 6


def test_the_form_refuses_dollar_quoting_next_to_the_field(client, checked_port):
    client.force_login(checked_port.mesh.member)
    url = reverse(
        "governance:quality_check_create",
        args=[checked_port.product.domain.slug, checked_port.product.slug],
    )
    resp = client.post(
        url,
        {
            "port": checked_port.port.pk,
            "name": "escape",
            "kind": "custom_sql",
            "sql": _sql(DOLLAR, checked_port.port),
            "max": "0",
            "unit": "count",
            "interval_minutes": "60",
        },
    )
    assert resp.status_code == 200
    page = resp.content.decode()
    assert "Only one statement is allowed" in page or "The name $z$ is not allowed" in page
    assert not QualityCheck.objects.exists()
    assert checked_port.warehouse.count() == 6


@pytest.mark.parametrize("attempt", [DOLLAR, "SELECT COUNT(*) FROM auth_user"])
def test_contract_import_refuses_the_same_sql(checked_port, attempt):
    from django.core.exceptions import ValidationError

    rule = {
        "name": "escape",
        "type": "sql",
        "query": _sql(attempt, checked_port.port),
        "mustBeLessOrEqualTo": 0,
    }
    with pytest.raises(ValidationError) as e:
        odcs_to_checks(checked_port.port, quality=[rule])
    assert "params" in e.value.message_dict
    assert not QualityCheck.objects.exists()


def test_the_port_s_own_table_by_name_or_object_is_accepted(checked_port):
    port = checked_port.port
    schema, table = port.location.split(".")
    for n, sql in enumerate(
        [
            "SELECT COUNT(*) FROM ${object} WHERE amount < 0",
            f"SELECT COUNT(*) FROM {table} t WHERE t.amount < 0",
            f"SELECT COUNT(*) FROM {schema}.{table} WHERE amount < 0",
            "WITH neg AS (SELECT id FROM ${object} WHERE amount < 0) SELECT COUNT(*) FROM neg",
        ]
    ):
        check = services.check_create(
            port=port, name=f"neg {n}", kind="custom_sql", params={"sql": sql}
        )
        [run] = services.run_now(checks=[check])
        services.execute_runs(run_ids=[run.pk])
        run.refresh_from_db()
        assert (run.status, run.observed) == ("failed", 1), run.message


# -- run time: defence in depth ----------------------------------------------------------------


def _stored(port, sql, name="stored", **kw) -> QualityCheck:
    """A check written straight to the database, as if the validator had been bypassed."""
    return QualityCheck.objects.create(
        port=port, name=name, kind="custom_sql", params={"sql": sql, "max": 0}, **kw
    )


def _run(check) -> QualityRun:
    [run] = services.run_now(checks=[check])
    services.execute_runs(run_ids=[run.pk])
    run.refresh_from_db()
    return run


@pytest.mark.parametrize(("attempt", "needle"), ATTEMPTS[:7], ids=[a[:40] for a, _ in ATTEMPTS[:7]])
def test_a_stored_attempt_is_refused_again_before_it_runs(checked_port, attempt, needle):
    run = _run(_stored(checked_port.port, _sql(attempt, checked_port.port)))
    assert run.status == "error" and any(n in run.message for n in _needles(needle))
    assert checked_port.warehouse.count() == 6


def test_the_driver_sends_one_statement_and_cannot_be_split(warehouse):
    """Below the validator: a multi-statement string is refused by the driver itself (a
    prepared statement on PostgreSQL, sqlite3's execute), so COMMIT cannot end the read-only
    transaction and the DELETE never runs."""
    with engine.connect(warehouse.source) as conn:
        t = conn.table(*engine.split_location(warehouse.location))
        attempts = [f"SELECT 1; DELETE FROM {t}", f"SELECT 1; COMMIT; DELETE FROM {t}"]
        if conn.vendor == "postgresql":
            attempts.append(DOLLAR.replace("{t}", t))
        for sql in attempts:
            with pytest.raises(engine.EngineError):
                conn.execute(sql, untrusted=True)
    assert warehouse.count() == 6


def test_text_from_the_data_never_reaches_messages_notifications_or_mail(
    checked_port, django_capture_on_commit_callbacks
):
    """The probe's session key came back in a run message (a cast error quoting the value). A
    text result, or an error about a value, now gives a fixed message."""
    port = checked_port.port
    with django_capture_on_commit_callbacks(execute=True):  # e-mails leave on commit
        text = _run(_stored(port, "SELECT MIN(status) || 'CANARY' FROM ${object}", name="text"))
        cast = _run(
            _stored(
                port, "SELECT CAST(MIN(status) || 'CANARY' AS integer) FROM ${object}", name="n"
            )
        )
    assert text.status == "error" and text.message == engine.NOT_A_NUMBER
    if checked_port.warehouse.vendor == "postgresql":
        assert cast.status == "error" and "InvalidTextRepresentation" in cast.message
    for run in (text, cast):
        assert "CANARY" not in run.message and "bad" not in run.message
    for n in Notification.objects.all():
        assert "CANARY" not in f"{n.title} {n.body}"
    for m in mail.outbox:
        assert "CANARY" not in m.subject + m.body


def test_numbers_only(checked_port):
    assert engine.custom_sql_number([(3,)]) == 3.0
    assert engine.custom_sql_number([(None,)]) == 0.0
    for rows in ([("7",)], [(True,)], [(1, 2)], [], [(float("nan"),)], [("x",), ("y",)]):
        with pytest.raises(engine.EngineError) as e:
            engine.custom_sql_number(rows)
        assert str(e.value) == engine.NOT_A_NUMBER


# -- timeouts ----------------------------------------------------------------------------------


def test_patch_above_the_source_cap_is_refused_with_400(checked_port):
    checked_port.source.max_timeout_seconds = 120
    checked_port.source.save()
    check = services.check_create(
        port=checked_port.port, name="rows", kind="row_count", params={"min": 1}
    )
    api = APIClient()
    api.force_login(checked_port.mesh.member)
    r = api.patch(f"{C}{check.pk}/", {"timeout_seconds": 600}, format="json")
    assert r.status_code == 400, r.json()
    [err] = [e for e in r.json()["errors"] if e["field"] == "timeout_seconds"]
    assert "120" in err["reason"]
    check.refresh_from_db()
    assert check.timeout_seconds == 60
    assert api.patch(f"{C}{check.pk}/", {"timeout_seconds": 90}, format="json").status_code == 200


def test_the_source_cap_wins_at_run_time_whatever_the_check_says(warehouse):
    slow = (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) "
        "SELECT COUNT(*) FROM c"
    )
    source = type(warehouse.source)(**{**vars(warehouse.source), "max_timeout_seconds": 1})
    r = engine.run_table(
        source,
        warehouse.location,
        [CheckSpec(1, "custom_sql", params={"sql": slow}, timeout_seconds=600)],
    )
    assert r[1].status == "error" and "timeout" in r[1].message
    assert r[1].duration_ms < 5000


# -- least privilege ---------------------------------------------------------------------------


def test_a_sqlite_source_holding_the_portal_s_tables_is_refused(tmp_path):
    import sqlite3

    path = tmp_path / "portal-copy.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE django_session (session_key TEXT)")
    conn.commit()
    conn.close()
    source = DataSource(kind="sqlite", database=str(path), slug="copy", name="copy")
    with pytest.raises(engine.UnsafeSource) as e:
        engine.test_connection(source)
    assert "django_session" in str(e.value)
    r = engine.run_table(source, "main.django_session", [CheckSpec(1, "row_count", [], {})])
    assert r[1].status == "error" and "portal's own table" in r[1].message


@pytest.mark.postgres
def test_a_superuser_source_is_refused_at_test_connection_and_before_each_run(pg_warehouse):
    su = type(pg_warehouse.source)(**{**vars(pg_warehouse.source), "user": pg_dsn_kwargs()["user"]})
    with pytest.raises(engine.UnsafeSource) as e:
        engine.test_connection(su)
    assert "superuser" in str(e.value)
    r = engine.run_table(su, pg_warehouse.location, [CheckSpec(1, "row_count", [], {"min": 1})])
    assert r[1].status == "error" and "superuser" in r[1].message


@pytest.mark.postgres
def test_a_source_whose_role_can_read_the_portal_s_tables_is_refused(pg_warehouse):
    role = pg_warehouse.source.user
    with psycopg.connect(**pg_dsn_kwargs(), autocommit=True) as conn:
        conn.execute(f'GRANT SELECT ON auth_user TO "{role}"')
        try:
            with pytest.raises(engine.UnsafeSource) as e:
                engine.test_connection(pg_warehouse.source)
            assert "auth_user" in str(e.value)
        finally:
            conn.execute(f'REVOKE SELECT ON auth_user FROM "{role}"')
    assert "Connected" in engine.test_connection(pg_warehouse.source)


@pytest.fixture
def demo_source(transactional_db, settings):
    from demo import warehouse as demo_warehouse

    call_command("seed_demo", verbosity=0)
    yield DataSource.objects.get(slug="demo-warehouse")
    if demo_warehouse.is_postgres():
        from django.db import connection

        with connection.cursor() as cur:
            cur.execute(f'DROP SCHEMA IF EXISTS "{settings.MESH_DEMO_WAREHOUSE_SCHEMA}" CASCADE')


BELOW_THE_VALIDATOR = [
    "SELECT COUNT(*) FROM public.auth_user",
    "SELECT session_key FROM public.django_session",
    "SELECT pg_read_file('/etc/hostname')",
    "SELECT pg_terminate_backend({portal_pid})",
    "COPY (SELECT 1) TO PROGRAM 'touch /tmp/mesh-pwned'",
    "SELECT set_config('default_transaction_read_only', 'off', false)",
]


def _denied(demo_source, settings, sql: str) -> str:
    """What the demo's role answers to one statement sent directly: "denied", or what went
    wrong."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")  # the portal's own session
        sql = sql.format(portal_pid=cur.fetchone()[0])
    with engine.connect(demo_source) as conn:
        try:
            rows = conn.execute(sql)
        except engine.EngineError as e:
            ok = "permission denied" in str(e) or "must be" in str(e) or "read-only" in str(e)
            return "denied" if ok else f"another error: {e}"
        if "set_config" not in sql:
            return f"answered {rows}"
        # set_config may change a setting of this session only; it cannot write.
        try:
            conn.execute(f'DELETE FROM "{settings.MESH_DEMO_WAREHOUSE_SCHEMA}".payments')
        except engine.EngineError:
            return "denied"
        return "wrote after set_config"


@pytest.mark.postgres
def test_the_demo_source_cannot_reach_the_portal_or_the_server(demo_source, settings):
    """Below the validator: the demo's role itself is denied (statements sent directly). One
    demo for all the attempts: each is its own connection, as a check run is."""
    from django.db import connection

    assert demo_source.user == settings.MESH_DEMO_WAREHOUSE_ROLE
    outcomes = {sql: _denied(demo_source, settings, sql) for sql in BELOW_THE_VALIDATOR}
    assert outcomes == dict.fromkeys(BELOW_THE_VALIDATOR, "denied")
    assert "Connected" in engine.test_connection(demo_source)
    with connection.cursor() as cur:
        cur.execute("SELECT 1")  # the portal's session was not terminated


# -- ways out the review did not list, by dialect (the validator alone) --------------------------

MORE_WAYS_OUT = [
    ("postgresql", "WITH x AS (SELECT * FROM information_schema.tables) SELECT COUNT(*) FROM x"),
    ("postgresql", "SELECT COUNT(*) FROM ${object} WHERE id IN (SELECT usesysid FROM pg_user)"),
    ("postgresql", "SELECT COUNT(*) FROM ${object} WHERE x IN (TABLE pg_catalog.pg_authid)"),
    ("postgresql", "SELECT COUNT(*) FROM ${object} WHERE x = (SELECT setting FROM pg_settings)"),
    ("postgresql", "SELECT COUNT(*) FROM ${object} CROSS JOIN pg_stat_activity"),
    ("postgresql", "SELECT COUNT(*) FROM generate_series(1, 10)"),
    ("postgresql", "SELECT COUNT(*) FROM ROWS FROM (generate_series(1, 3))"),
    ("postgresql", "SELECT COUNT(*) FROM ${object}, LATERAL pg_ls_dir('.') AS d"),
    ("postgresql", "SELECT query_to_xml('SELECT * FROM auth_user', true, true, '')"),
    ("postgresql", "SELECT COUNT(*) FROM ${object} WHERE regclass 'auth_user' IS NOT NULL"),
    ("postgresql", "SELECT COUNT(*) FROM ${object} WHERE pg_sleep(100) IS NULL"),
    ("postgresql", "SELECT COUNT(*) FROM ${object} WHERE txid_current() > 0"),
    ("postgresql", "SELECT COUNT(*) FROM orders.${object}"),  # another schema's same name
    ("postgresql", "SELECT COUNT(*) FROM other_db.public.orders"),
    ("duckdb", "SELECT COUNT(*) FROM '/etc/passwd'"),
    ("duckdb", "SELECT COUNT(*) FROM read_csv('/etc/passwd')"),
    ("duckdb", "SELECT COUNT(*) FROM ${object} WHERE getenv('HOME') IS NULL"),
    ("duckdb", "SELECT COUNT(*) FROM duckdb_settings()"),
    ("sqlite", "SELECT COUNT(*) FROM pragma_table_info('auth_user')"),
    ("sqlite", "SELECT load_extension('x')"),
    ("sqlite", "SELECT COUNT(*) FROM main.auth_user"),
    ("sqlite", "SELECT COUNT(*) FROM temp.sqlite_temp_master"),
    ("mysql", "SELECT LOAD_FILE('/etc/passwd')"),
    ("mysql", "SELECT COUNT(*) FROM mysql.user"),
    ("mysql", "SELECT COUNT(*) FROM ${object} INTO OUTFILE '/tmp/x'"),
    ("mysql", "SELECT COUNT(*) FROM ${object} WHERE x = @@version"),
    ("mysql", "SELECT COUNT(*) FROM ${object} WHERE SLEEP(10)"),
    ("mysql", "SELECT COUNT(*) FROM information_schema.processlist"),
]


@pytest.mark.parametrize(("kind", "attempt"), MORE_WAYS_OUT, ids=[a[:50] for _, a in MORE_WAYS_OUT])
def test_more_ways_out_are_refused_in_each_dialect(kind, attempt):
    from governance.quality.sql import SqlRefused, validate

    with pytest.raises(SqlRefused):
        validate(attempt, kind=kind, schema="sales", table="orders")
