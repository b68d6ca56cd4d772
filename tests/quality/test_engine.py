"""Every check type against real tables with known contents: exact observed values, one
scan per table, read-only connections, timeouts, injection attempts."""

import psycopg
import pytest

from governance.quality import engine
from governance.quality.engine import CheckSpec
from tests.quality.conftest import NOW, pg_dsn_kwargs

SPECS = [
    CheckSpec(1, "row_count", [], {"min": 1, "max": 5}),
    CheckSpec(2, "missing", ["name"], {"max": 0}),
    CheckSpec(3, "missing", ["name"], {"max": 20, "unit": "percent"}),
    CheckSpec(4, "duplicates", ["id"], {"max": 0}),
    CheckSpec(5, "duplicates", ["id", "name"], {"max": 1}),
    CheckSpec(6, "duplicates", ["name"], {"max": 0}),
    CheckSpec(7, "accepted_values", ["status"], {"values": ["ok"], "max": 0}),
    CheckSpec(8, "range", ["amount"], {"min": 0, "max": 100, "max_failing": 0}),
    CheckSpec(9, "pattern", ["name"], {"pattern": "^[a-c]$", "max": 0}),
    CheckSpec(10, "freshness", ["created_at"], {"hours": 2}),
    CheckSpec(11, "freshness", ["created_at"], {"hours": 0.5}),
    CheckSpec(12, "missing", ["status"], {"max": 1}),  # 1 null status: passes
]


def _run(w, specs, **kw):
    return engine.run_table(w.source, w.location, specs, declared_fields=w.fields, now=NOW, **kw)


def test_each_metric_check_reports_the_exact_observed_value(warehouse):
    r = _run(warehouse, SPECS)
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
    assert observed[10][0] == "passed" and observed[10][1] == 1.0
    assert observed[11][0] == "failed"
    assert observed[12] == ("passed", 1)
    assert r[7].threshold == "≤ 0" and "outside the accepted set" in r[7].message


@pytest.mark.parametrize("samples", [False, True], ids=["counts", "with samples"])
def test_all_metric_checks_on_one_table_are_one_query(warehouse, monkeypatch, samples):
    sent = []
    real = engine._run_on

    def spy(conn, *a, **kw):
        try:
            return real(conn, *a, **kw)
        finally:
            sent.extend(conn.statements)

    monkeypatch.setattr(engine, "_run_on", spy)
    r = _run(warehouse, SPECS, allow_samples=samples)
    assert len(sent) == 1, sent  # failing values included: no statement per failed check
    assert sent[0].startswith("SELECT COUNT(*), ")
    # Identical expressions are computed once: COUNT(*) is not repeated among the aggregates.
    assert ", COUNT(*)," not in sent[0]
    # Samples are read only where they are allowed.
    assert ("mesh_failing" in sent[0]) is samples
    assert bool(r[7].sample) is samples


@pytest.mark.postgres
@pytest.mark.parametrize("analysed", [False, True])
def test_postgres_reads_the_table_once_for_every_check(pg_warehouse, analysed):
    """Distinct counts, failing values and every other metric in one statement whose plan
    scans the table once (the plan is read, not assumed), with or without statistics."""
    if analysed:
        with psycopg.connect(**pg_dsn_kwargs(), autocommit=True) as c:
            c.execute(f'ANALYZE "{pg_warehouse.schema}".t_known')
    with engine.connect(pg_warehouse.source) as conn:
        schema, table = pg_warehouse.location.split(".")
        sql_text, params, slots = engine.compile_metrics(
            conn, conn.table(schema, table), SPECS, (schema, table), samples=True
        )
        row = conn.execute(sql_text, params)[0]
        distinct = {s.id: row[slots[s.id]["distinct"]] for s in SPECS if s.kind == "duplicates"}
        assert distinct == {4: 5, 5: 4, 6: 3}  # ids 1-5; (id, name) pairs; names a c e
        plan = conn.execute("EXPLAIN (FORMAT JSON) " + sql_text, params)[0][0]

    def scans(node):
        here = 1 if node.get("Relation Name") == "t_known" else 0
        return here + sum(scans(child) for child in node.get("Plans", []))

    assert scans(plan[0]["Plan"]) == 1


def test_samples_are_the_smallest_and_largest_failing_values(warehouse):
    r = _run(warehouse, SPECS, allow_samples=True)
    assert r[7].sample == ["bad"]  # one failing value; NULL is missing, not invalid
    assert [float(v) for v in r[8].sample] == [-5, 200]  # a range orders numbers as numbers
    assert r[9].sample == ["e"]  # e, e: distinct values only
    # Passing checks and checks that are not about values carry none.
    assert r[3].sample == [] and r[4].sample == [] and r[12].sample == []


def test_schema_check_reads_the_catalogue_once_and_reports_drift(warehouse):
    declared = [f for f in warehouse.fields if f["name"] != "status"] + [
        {"name": "gone", "physical_type": "text"}
    ]
    r = engine.run_table(
        warehouse.source,
        warehouse.location,
        [CheckSpec(1, "schema"), CheckSpec(2, "schema", params={"allow_extra": True})],
        declared_fields=declared,
    )
    assert (r[1].status, r[1].observed) == ("failed", 2)
    assert "missing column gone" in r[1].message and "undeclared column status" in r[1].message
    assert (r[2].status, r[2].observed) == ("failed", 1)
    ok = engine.run_table(
        warehouse.source,
        warehouse.location,
        [CheckSpec(3, "schema")],
        declared_fields=warehouse.fields,
    )
    assert (ok[3].status, ok[3].observed) == ("passed", 0)


def test_schema_check_sees_type_drift(warehouse):
    declared = [dict(f) for f in warehouse.fields]
    declared[0]["physical_type"] = "text"
    r = engine.run_table(
        warehouse.source, warehouse.location, [CheckSpec(1, "schema")], declared_fields=declared
    )
    assert r[1].status == "failed" and "id is" in r[1].message


def test_custom_sql_counts_failing_rows(warehouse):
    r = _run(
        warehouse,
        [
            CheckSpec(
                1,
                "custom_sql",
                params={"sql": "SELECT COUNT(*) FROM ${object} WHERE amount < 0", "max": 0},
            ),
            CheckSpec(
                2,
                "custom_sql",
                params={"sql": "SELECT COUNT(*) FROM ${object} WHERE name LIKE 'z%'"},
            ),
            CheckSpec(3, "custom_sql", params={"sql": "SELECT id, name FROM ${object}"}),
        ],
    )
    assert (r[1].status, r[1].observed) == ("failed", 1)
    assert (r[2].status, r[2].observed) == ("passed", 0)
    assert r[3].status == "error" and "must return one number" in r[3].message


def test_samples_of_failing_values_only_when_permitted(warehouse):
    spec = [CheckSpec(7, "accepted_values", ["status"], {"values": ["ok"]})]
    assert _run(warehouse, spec, allow_samples=True)[7].sample == ["bad"]
    assert _run(warehouse, spec, allow_samples=False)[7].sample == []


def test_a_missing_column_is_an_error_for_its_check_only(warehouse):
    r = _run(
        warehouse,
        [CheckSpec(1, "row_count", [], {"min": 1}), CheckSpec(2, "missing", ["nope"], {"max": 0})],
    )
    assert r[1].status == "passed" and r[1].observed == 6
    assert r[2].status == "error" and "nope" in r[2].message


def test_a_broken_source_gives_error_results(warehouse):
    src = warehouse.source
    broken = type(src)(
        **{
            **vars(src),
            "database": "/nonexistent/x.db" if src.kind == "sqlite" else "no_such_database",
            "port": src.port,
        }
    )
    r = engine.run_table(broken, warehouse.location, SPECS[:2])
    assert {v.status for v in r.values()} == {"error"}
    assert "Could not connect" in r[1].message
    missing_table = engine.run_table(
        warehouse.source,
        "main.nope" if src.kind == "sqlite" else f"{warehouse.schema}.nope",
        SPECS[:2],
    )
    assert {v.status for v in missing_table.values()} == {"error"}


def test_a_slow_query_times_out_as_an_error(warehouse):
    # Pure SQL (pg_sleep is not an allowed function): a long recursive count.
    slow = (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000000) "
        "SELECT COUNT(*) FROM c"
    )
    r = _run(
        warehouse,
        [
            CheckSpec(1, "custom_sql", params={"sql": slow}, timeout_seconds=1),
            CheckSpec(2, "row_count", [], {"min": 1}),
        ],
    )
    assert r[1].status == "error" and "timeout" in r[1].message
    assert r[1].duration_ms < 4000
    assert r[2].status == "passed"  # the table's other checks are unaffected


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1; DROP TABLE t_known",
        "UPDATE t_known SET amount = 0",
        "WITH d AS (DELETE FROM t_known RETURNING *) SELECT COUNT(*) FROM d",
        "DROP TABLE t_known",
    ],
)
def test_custom_sql_that_writes_is_refused_and_data_untouched(warehouse, sql):
    r = _run(warehouse, [CheckSpec(1, "custom_sql", params={"sql": sql})])
    assert r[1].status == "error"
    assert warehouse.count() == 6


def test_a_comment_is_only_a_comment(warehouse):
    """What follows `--` is dropped with the comment: the statement sent is generated from the
    parse tree, so the SELECT runs and nothing else."""
    sql = "SELECT COUNT(*) FROM t_known -- ; DROP TABLE t_known"
    r = _run(warehouse, [CheckSpec(1, "custom_sql", params={"sql": sql, "max": 10})])
    assert (r[1].status, r[1].observed) == ("passed", 6)
    assert warehouse.count() == 6


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM {t}",
        "WITH d AS (DELETE FROM {t} RETURNING *) SELECT COUNT(*) FROM d",
        "UPDATE {t} SET amount = 0",
        "DROP TABLE {t}",
    ],
)
def test_the_connection_itself_is_read_only(warehouse, sql):
    """Even a statement that slipped past validation cannot write."""
    with engine.connect(warehouse.source) as conn:
        t = conn.table(*engine.split_location(warehouse.location))
        with pytest.raises(engine.EngineError) as e:
            conn.execute(sql.format(t=t))
    msg = str(e.value)
    assert any(w in msg for w in ("read-only", "readonly", "read only", "syntax error")), msg
    assert warehouse.count() == 6


@pytest.mark.parametrize(
    "column",
    [
        'id"; DROP TABLE t_known; --',
        "id) FROM t_known; DELETE FROM t_known; --",
        'name" IS NULL OR 1=1 --',
    ],
)
def test_injection_in_column_names_is_just_a_missing_column(warehouse, column):
    r = _run(
        warehouse,
        [CheckSpec(1, "missing", [column], {"max": 0}), CheckSpec(2, "row_count", [], {"min": 1})],
    )
    assert r[1].status == "error" and "does not exist" in r[1].message
    assert r[2].observed == 6
    assert warehouse.count() == 6


def test_sqlite_quoting_is_strict():
    assert engine.sqlite_quote('a"b') == '"a""b"'
    with pytest.raises(engine.EngineError):
        engine.sqlite_quote("a\x00b")


def test_credentials_never_appear_in_messages(warehouse, monkeypatch):
    if warehouse.vendor != "postgresql":
        pytest.skip("SQLite sources have no password")
    monkeypatch.setenv("QTEST_PW", "s3cret-pass-word")
    src = type(warehouse.source)(
        **{**vars(warehouse.source), "password_env": "QTEST_PW", "user": "no_such_user_xyz"}
    )
    r = engine.run_table(src, warehouse.location, SPECS[:1])
    assert r[1].status == "error" and "s3cret" not in r[1].message


def test_test_connection_says_read_only(warehouse):
    assert "read-only" in engine.test_connection(warehouse.source)
