"""Every check type on every engine this machine runs (SQLite, PostgreSQL, DuckDB over a
database file, Parquet files by glob and a CSV file, MariaDB), against the same known table:
the same exact observed values everywhere, one scan per table, read-only, a timeout."""

import pytest

from governance.quality import connections, engine
from governance.quality.engine import CheckSpec
from tests.quality.conftest import NOW
from tests.quality.test_engine import SPECS

ALL = [
    *SPECS,
    CheckSpec(20, "schema", [], {}),
    CheckSpec(21, "custom_sql", [], {"sql": "SELECT COUNT(*) FROM ${object} WHERE amount < 0"}),
    CheckSpec(22, "accepted_values", ["status"], {"values": ["ok", "bad"], "max": 0}),
    CheckSpec(23, "missing", ["name"], {"missing_values": ["e"], "max": 0}),
]


def _run(w, specs, **kw):
    return engine.run_table(w.source, w.location, specs, declared_fields=w.fields, now=NOW, **kw)


def test_every_check_type_gives_the_exact_observed_value(engine_warehouse):
    r = _run(engine_warehouse, ALL, allow_samples=True)
    observed = {k: (v.status, v.observed) for k, v in r.items()}
    assert observed[1] == ("failed", 6)
    assert observed[2] == ("failed", 1)
    assert observed[3] == ("passed", pytest.approx(16.6667, abs=1e-3))
    assert observed[4] == ("failed", 1)  # id 5 twice
    assert observed[5] == ("passed", 1)  # (5, e) twice; (2, NULL) is not counted
    assert observed[6] == ("failed", 2)  # c, c, e, e
    assert observed[7] == ("failed", 1)  # 'bad'; NULL is missing, not invalid
    assert observed[8] == ("failed", 2)  # -5 and 200
    assert observed[9] == ("failed", 2)  # e, e
    assert observed[10] == ("passed", 1.0)  # newest is exactly 1 h old
    assert observed[11] == ("failed", 1.0)
    assert observed[12] == ("passed", 1)
    assert observed[20] == ("passed", 0), r[20].message
    assert observed[21] == ("failed", 1)  # amount -5
    assert observed[22] == ("passed", 0)
    assert observed[23] == ("failed", 3)  # NULL, e, e
    assert r[7].sample == ["bad"]
    assert sorted(r[8].sample) in (["-5.00", "200.00"], ["-5.0", "200.0"], ["-5", "200"])


def test_metric_checks_are_one_statement_per_table(engine_warehouse):
    w = engine_warehouse
    with engine.connect(w.source) as conn:
        schema, table = conn.resolve(w.location, w.source.default_schema)
        results = engine._run_on(conn, schema, table, SPECS, w.fields, False, NOW)
        assert len(results) == len(SPECS)
        assert len(conn.statements) == 1


def test_schema_drift_is_seen(engine_warehouse):
    fields = [*engine_warehouse.fields[:-1], {"name": "nope"}]
    r = engine.run_table(
        engine_warehouse.source,
        engine_warehouse.location,
        [CheckSpec(1, "schema", [], {})],
        declared_fields=fields,
        now=NOW,
    )[1]
    assert r.status == "failed"
    assert "missing column nope" in r.message and "undeclared column created_at" in r.message


@pytest.mark.parametrize("sql", ["DELETE FROM ${object}", "SELECT 1; DROP TABLE t_known"])
def test_custom_sql_that_writes_is_refused_and_data_untouched(engine_warehouse, sql):
    r = _run(engine_warehouse, [CheckSpec(1, "custom_sql", [], {"sql": sql})])[1]
    assert r.status == "error"
    assert engine_warehouse.count() == 6


def test_test_connection_works(engine_warehouse):
    assert "Connected" in engine.test_connection(engine_warehouse.source)


# -- DuckDB ------------------------------------------------------------------------------------


@pytest.fixture
def duckdb_db(tmp_path):
    from tests.quality.conftest import _duckdb_warehouse

    return _duckdb_warehouse(tmp_path, "database")


@pytest.fixture
def duckdb_files(tmp_path):
    from tests.quality.conftest import _duckdb_warehouse

    return _duckdb_warehouse(tmp_path, "parquet")


def test_duckdb_database_is_opened_read_only(duckdb_db):
    with engine.connect(duckdb_db.source) as conn:
        with pytest.raises(engine.EngineError):
            conn.execute("INSERT INTO t_known VALUES (9, 'x', 'ok', 1, NULL)")
        with pytest.raises(engine.EngineError):
            conn.execute("SET TimeZone = 'Europe/Berlin'")  # configuration locked
    assert duckdb_db.count() == 6


def test_duckdb_reads_no_file_outside_its_root(duckdb_files, tmp_path):
    outside = tmp_path / "secret.csv"
    outside.write_text("a\n1\n")
    with engine.connect(duckdb_files.source) as conn:
        with pytest.raises(engine.EngineError, match="outside the data source's file root"):
            conn.resolve("../secret.csv")
        with pytest.raises(engine.EngineError):
            conn.execute(f"SELECT * FROM read_csv('{outside}')")
    r = _run(duckdb_files, [CheckSpec(1, "row_count", [], {"min": 1})])[1]
    assert (r.status, r.observed) == ("passed", 6)


def test_duckdb_without_a_file_root_refuses_file_ports(duckdb_db):
    r = engine.run_table(duckdb_db.source, "x/*.parquet", [CheckSpec(1, "row_count", [], {})])[1]
    assert r.status == "error" and "no file root" in r.message


def test_duckdb_timeout_interrupts_the_query(duckdb_db):
    # The short limit is set after `connect`: its guard's first catalogue read can itself take
    # a few hundred milliseconds on a loaded machine.
    with engine.connect(duckdb_db.source) as conn:
        conn.set_timeout(0.2)
        with pytest.raises(engine.QueryTimeout):
            conn.execute("SELECT COUNT(*) FROM range(100000000000) a")


# -- MariaDB -----------------------------------------------------------------------------------


@pytest.mark.mariadb
def test_mariadb_session_is_read_only_and_times_out(mariadb_warehouse):
    with engine.connect(mariadb_warehouse.source, timeout=1) as conn:
        with pytest.raises(engine.EngineError):
            conn.execute("INSERT INTO t_known VALUES (9, 'x', 'ok', 1, NULL)")
        with pytest.raises(engine.QueryTimeout):
            conn.execute("SELECT SLEEP(5)")
    assert mariadb_warehouse.count() == 6


@pytest.mark.mariadb
def test_mariadb_account_that_can_write_is_refused(mariadb_warehouse):
    w = mariadb_warehouse
    with w.root.cursor() as cur:
        cur.execute(f"GRANT INSERT ON `{w.database}`.* TO '{w.reader}'@'%'")
    with pytest.raises(engine.UnsafeSource, match="INSERT"):
        engine.test_connection(w.source)


@pytest.mark.mariadb
def test_mariadb_pattern_is_case_sensitive_under_a_ci_collation(mariadb_warehouse):
    spec = CheckSpec(1, "pattern", ["name"], {"pattern": "^[A-C]$", "max": 0})
    r = _run(mariadb_warehouse, [spec])[1]
    assert r.observed == 5  # a, c, c, e, e: none upper case


@pytest.mark.mariadb
def test_mariadb_password_never_appears(mariadb_warehouse, monkeypatch):
    monkeypatch.setenv(mariadb_warehouse.source.password_env, "wrong-Secret-123")
    r = _run(mariadb_warehouse, [CheckSpec(1, "row_count", [], {})])[1]
    assert r.status == "error" and "wrong-Secret-123" not in r.message


# -- drivers and secrets -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "extra"),
    [("snowflake", "snowflake"), ("bigquery", "bigquery"), ("databricks", "databricks"),
     ("trino", "trino"), ("redshift", "redshift")],
)  # fmt: skip
def test_a_missing_driver_names_the_extra(kind, extra):
    from tests.quality.conftest import _source

    r = engine.run_table(_source(kind=kind, host="h"), "s.t", [CheckSpec(1, "row_count", [], {})])
    assert r[1].status == "error"
    assert f"pip install mesh-portal[{extra}]" in r[1].message


def test_secrets_come_from_the_environment_or_the_secrets_dir(tmp_path, monkeypatch):
    from tests.quality.conftest import _source

    monkeypatch.setenv("MESH_SECRETS_DIR", str(tmp_path))
    (tmp_path / "wh-token").write_text("tok-123\n")
    assert connections.secret(_source(secret_file="wh-token")) == "tok-123"
    monkeypatch.setenv("WH_PW", "pw-456")
    assert connections.secret(_source(password_env="WH_PW", secret_file="wh-token")) == "pw-456"
    with pytest.raises(engine.EngineError, match="MESH_SECRETS_DIR"):
        connections.secret(_source(secret_file="../../etc/passwd"))
    with pytest.raises(engine.EngineError, match="NOT_SET_HERE is not set"):
        connections.secret(_source(password_env="NOT_SET_HERE"))
