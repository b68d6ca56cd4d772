"""Golden tests of the SQL each check type compiles to on the engines CI cannot run
(Snowflake, BigQuery, Databricks, Redshift, Trino), and the parse-back of every statement in
its own dialect: a change that breaks a dialect fails here.

`MESH_UPDATE_GOLDEN=1 pytest tests/quality/test_dialects_golden.py` rewrites the file after an
intended change; review its diff like code.
"""

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from governance.quality import compiler
from governance.quality.engine import CheckSpec

GOLDEN = Path(__file__).parent / "golden" / "dialects.json"
KINDS = ["snowflake", "bigquery", "databricks", "redshift", "trino"]
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)

CHECKS = {
    "row_count": CheckSpec(1, "row_count", [], {"min": 1, "max": 1000}),
    "missing": CheckSpec(2, "missing", ["email"], {"missing_values": ["", "n/a"]}),
    "missing_percent": CheckSpec(3, "missing", ["email"], {"unit": "percent", "max": 5}),
    "duplicates": CheckSpec(4, "duplicates", ["order_id"]),
    "duplicates_composite": CheckSpec(5, "duplicates", ["order_id", "line_no"]),
    "accepted_values": CheckSpec(6, "accepted_values", ["status"], {"values": ["new", "o'k"]}),
    "range": CheckSpec(7, "range", ["amount"], {"min": 0, "max": 10000}),
    "pattern": CheckSpec(8, "pattern", ["email"], {"pattern": r"^[^@\s]+@[a-z]+\.com$"}),
    "freshness": CheckSpec(9, "freshness", ["updated_at"], {"hours": 24}),
}
CUSTOM = "SELECT COUNT(*) FROM ${object} WHERE amount < 0 AND status <> 'refunded'"


def compile_all(kind: str) -> dict[str, str]:
    table = compiler.table_expr("sales", "orders", "analytics")
    out = {
        name: compiler.compile_metrics(kind, table, [spec], now=NOW).sql
        for name, spec in CHECKS.items()
    }
    out["all_in_one_scan"] = compiler.compile_metrics(
        kind, table, list(CHECKS.values()), now=NOW
    ).sql
    out["sample_pattern"] = compiler.compile_sample(kind, table, CHECKS["pattern"])
    out["schema"] = compiler.compile_catalogue(kind, "sales", "orders", "analytics")
    out["custom_sql"] = compiler.compile_custom(kind, CUSTOM, "sales", "orders")
    return out


def test_golden_file_is_current():
    compiled = {kind: compile_all(kind) for kind in KINDS}
    if os.environ.get("MESH_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(compiled, indent=2, sort_keys=True) + "\n")
    assert json.loads(GOLDEN.read_text()) == compiled


@pytest.mark.parametrize("kind", KINDS)
def test_every_statement_parses_back_in_its_dialect(kind):
    dialect = compiler.dialect_for(kind)
    golden = json.loads(GOLDEN.read_text())[kind]
    assert set(golden) == {*CHECKS, "all_in_one_scan", "sample_pattern", "schema", "custom_sql"}
    for name, text in golden.items():
        statements = sqlglot.parse(text, read=dialect)
        assert len(statements) == 1, name
        tree = statements[0]
        assert isinstance(tree, exp.Select), name
        if kind == "bigquery" and name == "schema":
            # sqlglot re-quotes `dataset`.INFORMATION_SCHEMA.COLUMNS as one name when it
            # writes it back; what matters is that it reads the dataset's catalogue.
            assert (
                tree.find(exp.Table)
                .sql(dialect=dialect)
                .startswith("`analytics`.`sales`.`INFORMATION_SCHEMA.COLUMNS`")
            )
            continue
        # Regenerating the parsed statement gives it back: the dialect reads what we write.
        assert tree.sql(dialect=dialect) == text, name


@pytest.mark.parametrize("kind", KINDS)
def test_one_scan_per_table(kind):
    tree = sqlglot.parse_one(compile_all(kind)["all_in_one_scan"], read=compiler.dialect_for(kind))
    tables = list(tree.find_all(exp.Table))
    assert [t.name for t in tables] == ["orders"]
    assert not list(tree.find_all(exp.Subquery))


def test_each_engine_has_its_regex_and_timestamp_arithmetic():
    golden = json.loads(GOLDEN.read_text())
    pattern = {k: golden[k]["pattern"] for k in KINDS}
    assert "REGEXP_INSTR(" in pattern["snowflake"]  # its REGEXP_LIKE matches the whole value
    assert "REGEXP_CONTAINS(" in pattern["bigquery"]
    assert "REGEXP_LIKE(" in pattern["databricks"]
    assert "REGEXP_LIKE(" in pattern["trino"]
    assert " ~ " in pattern["redshift"]
    fresh = {k: golden[k]["freshness"] for k in KINDS}
    assert "DATEDIFF(SECOND, MAX(" in fresh["snowflake"]
    assert "TIMESTAMP_DIFF(CAST('2026-12-04 12:00:00' AS TIMESTAMP), MAX(" in fresh["bigquery"]
    assert "DATEDIFF(SECOND, MAX(" in fresh["databricks"]
    assert "DATEDIFF(SECOND, MAX(" in fresh["redshift"]
    assert "DATE_DIFF('SECOND', MAX(" in fresh["trino"]
    assert "INFORMATION_SCHEMA.COLUMNS" in golden["bigquery"]["schema"]


@pytest.mark.parametrize("kind", KINDS + ["duckdb", "mysql"])
def test_values_are_literals_escaped_for_the_dialect(kind):
    """A quote in a value stays inside its string literal on every dialect."""
    spec = CheckSpec(1, "accepted_values", ["status"], {"values": ["a' OR 1=1 --", "b\\"]})
    text = compiler.compile_metrics(kind, compiler.table_expr("", "t"), [spec], now=NOW).sql
    tree = sqlglot.parse_one(text, read=compiler.dialect_for(kind))
    values = sorted(lit.this for lit in tree.find_all(exp.Literal) if lit.is_string)
    assert values == ["a' OR 1=1 --", "b\\"]


@pytest.mark.parametrize("kind", KINDS)
def test_custom_sql_outside_the_box_is_refused_in_every_dialect(kind):
    from governance.quality.sql import SqlRefused

    with pytest.raises(SqlRefused):
        compiler.compile_custom(kind, "DELETE FROM ${object}", "sales", "orders")
    with pytest.raises(SqlRefused):
        compiler.compile_custom(kind, "SELECT 1; SELECT 2", "sales", "orders")
    with pytest.raises(SqlRefused):
        compiler.compile_custom(kind, "SELECT COUNT(*) FROM other_table", "sales", "orders")
