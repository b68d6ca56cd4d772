"""The schema check verifies declared `required` (no missing values) and `unique` (no
duplicates; a primary key is both), with exact counts, inside the table's one aggregate
statement: on SQLite and PostgreSQL, against the known table (tests/quality/conftest.py):

    id    1, 2, 3, 4, 5, 5          -> 1 duplicate
    name  a, NULL, c, c, e, e       -> 1 missing, 2 duplicates
    status ok, ok, bad, NULL, ok, ok
    amount 10, 20, -5, 200, 50, 50  -> 1 duplicate
    created_at all different
"""

import psycopg
import pytest

from governance.quality import engine
from governance.quality.engine import CheckSpec
from tests.quality.conftest import NOW, pg_dsn_kwargs
from tests.quality.test_engine import SPECS


def _declare(warehouse, **flags):
    """The known table's fields, with e.g. id="ru" (required, unique) or name="k" (key)."""
    out = []
    for f in warehouse.fields:
        code = flags.get(f["name"], "")
        out.append(
            {
                **f,
                "required": "r" in code,
                "unique": "u" in code,
                "primary_key": "k" in code,
            }
        )
    return out


def _run(warehouse, specs, declared, statements=None, **kw):
    real = engine._run_on

    def spy(conn, *a, **k):
        try:
            return real(conn, *a, **k)
        finally:
            if statements is not None:
                statements.extend(conn.statements)

    engine._run_on = spy
    try:
        return engine.run_table(
            warehouse.source,
            warehouse.location,
            specs,
            declared_fields=declared,
            now=NOW,
            **kw,
        )
    finally:
        engine._run_on = real


def test_nulls_and_duplicates_are_counted_exactly_and_fail_the_check(warehouse):
    declared = _declare(warehouse, id="ru", name="ru", amount="u", created_at="ru")
    r = _run(warehouse, [CheckSpec(1, "schema")], declared)[1]
    assert (r.status, r.observed, r.threshold) == ("failed", 4, "0 differences")
    assert r.message == (
        "Declared constraints not met: id: declared unique, 1 duplicate value; "
        "name: declared required, 1 missing value; name: declared unique, 2 duplicate values; "
        "amount: declared unique, 1 duplicate value."
    )
    assert r.sample == []  # counts only, never values


def test_a_clean_table_passes(warehouse):
    declared = _declare(warehouse, id="r", created_at="ru", amount="r")
    r = _run(warehouse, [CheckSpec(1, "schema")], declared)[1]
    assert (r.status, r.observed) == ("passed", 0)
    assert r.message == (
        "Schema matches the declared fields and their required/unique declarations hold."
    )


def test_a_primary_key_is_required_and_unique_and_a_composite_one_unique_as_a_tuple(warehouse):
    single = _run(warehouse, [CheckSpec(1, "schema")], _declare(warehouse, id="k"))[1]
    assert single.status == "failed" and single.observed == 1
    assert "id: primary key, 1 duplicate value." in single.message
    assert "missing" not in single.message  # no id is NULL

    # (id, name): (5, e) twice; (2, NULL) has a missing member, never a duplicate.
    pair = _run(warehouse, [CheckSpec(1, "schema")], _declare(warehouse, id="k", name="k"))[1]
    assert pair.message == (
        "Declared constraints not met: name: primary key, 1 missing value; "
        "(id, name): primary key, 1 duplicate value."
    )
    assert pair.observed == 2


def test_drift_and_constraints_are_reported_together(warehouse):
    declared = [f for f in _declare(warehouse, name="r") if f["name"] != "status"]
    declared.append({"name": "gone", "physical_type": "text", "required": True, "unique": True})
    r = _run(warehouse, [CheckSpec(1, "schema")], declared)[1]
    assert r.status == "failed" and r.observed == 3
    assert r.message == (
        "Schema drift: missing column gone; undeclared column status. "
        "Declared constraints not met: name: declared required, 1 missing value."
    )


def test_one_statement_per_table_however_many_fields_are_declared(warehouse):
    """The catalogue, then ONE aggregate that holds the metric checks and every declared
    constraint; the constraints' expressions are shared with metric checks that count the
    same thing (2: missing name; 4: duplicate ids)."""
    few: list[str] = []
    _run(warehouse, [*SPECS, CheckSpec(99, "schema")], _declare(warehouse, id="u"), few)
    many: list[str] = []
    flags = dict(id="ru", name="ru", status="ru", amount="ru", created_at="ru")
    results = _run(warehouse, [*SPECS, CheckSpec(99, "schema")], _declare(warehouse, **flags), many)
    assert len(few) == len(many) == 2, many
    assert "information_schema" in many[0] or "pragma_table_info" in many[0]
    assert many[1].startswith("SELECT COUNT(*), ")
    shared: list[str] = []
    _run(
        warehouse, [*SPECS, CheckSpec(99, "schema")], _declare(warehouse, id="u", name="r"), shared
    )
    without: list[str] = []
    _run(warehouse, SPECS, [], without)
    assert shared[1] == without[0]  # nothing added: both counts were in the statement already
    # The table's own checks are unaffected by the declarations.
    assert (results[4].status, results[4].observed) == ("failed", 1)
    assert (results[2].status, results[2].observed) == ("failed", 1)
    # id, amount: duplicates; name, status: missing and duplicates; created_at: clean.
    assert results[99].observed == 6
    only_schema: list[str] = []
    _run(warehouse, [CheckSpec(1, "schema")], _declare(warehouse, **flags), only_schema)
    assert len(only_schema) == 2


def test_a_schema_check_without_declarations_reads_only_the_catalogue(warehouse):
    sent: list[str] = []
    r = _run(warehouse, [CheckSpec(1, "schema")], _declare(warehouse), sent)[1]
    assert r.status == "passed" and r.message == "Schema matches the declared fields."
    assert len(sent) == 1


@pytest.mark.postgres
def test_a_column_postgres_cannot_compare_is_reported_and_the_other_checks_still_run(
    pg_warehouse, monkeypatch
):
    """json has no equality operator, so no distinct count: the catalogue's type says so
    before the statement is sent. Should a type slip through and fail the statement, the
    declarations are dropped and the table's checks run again (one more statement, only then).
    """
    table = f'"{pg_warehouse.schema}".t_json'
    with psycopg.connect(**pg_dsn_kwargs(), autocommit=True) as c:
        c.execute(f"CREATE TABLE {table} (id bigint, doc json)")
        c.execute(f"INSERT INTO {table} VALUES (1, '{{}}'), (1, NULL)")  # nosec B608
        c.execute(f'GRANT SELECT ON {table} TO "mesh_test_reader"')
    declared = [
        {"name": "id", "physical_type": "bigint", "unique": True},
        {"name": "doc", "physical_type": "json", "required": True, "unique": True},
    ]
    specs = [CheckSpec(1, "schema"), CheckSpec(2, "row_count", [], {"min": 1})]
    location = f"{pg_warehouse.schema}.t_json"

    r = engine.run_table(pg_warehouse.source, location, specs, declared_fields=declared, now=NOW)
    assert (r[2].status, r[2].observed) == ("passed", 2)
    assert (r[1].status, r[1].observed) == ("failed", 2)
    assert r[1].message == (
        "Declared constraints not met: id: declared unique, 1 duplicate value; "
        "doc: declared required, 1 missing value. "
        "Could not verify: doc, declared unique (PostgreSQL cannot compare json values)."
    )

    monkeypatch.setattr(engine.PostgresConnection, "comparable", lambda self, t: True)
    r = engine.run_table(pg_warehouse.source, location, specs, declared_fields=declared, now=NOW)
    assert (r[2].status, r[2].observed) == ("passed", 2)
    assert r[1].status == "error" and r[1].observed is None
    assert r[1].message.startswith("Could not verify: id, declared unique (")
    assert "could not identify an equality operator for type json" in r[1].message
