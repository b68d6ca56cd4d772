"""The SQL parser: tables read and written, in the data source's dialect; bad SQL counted."""

import pytest

from usage.parser import parse


@pytest.mark.parametrize(
    "sql, kind, reads, writes",
    [
        ("SELECT * FROM sales.orders o JOIN crm.users u ON u.id = o.user_id", "postgresql",
         {"sales.orders", "crm.users"}, set()),
        ("INSERT INTO sales.daily SELECT date(at), count(*) FROM sales.orders GROUP BY 1", "postgresql",
         {"sales.orders"}, {"sales.daily"}),
        ("WITH recent AS (SELECT * FROM sales.orders) SELECT * FROM recent", "postgresql",
         {"sales.orders"}, set()),
        ('SELECT * FROM "Sales"."Orders"', "postgresql", {"sales.orders"}, set()),
        ("CREATE TABLE mart.x AS SELECT * FROM sales.orders", "postgresql", {"sales.orders"}, {"mart.x"}),
        ("MERGE INTO mart.t USING sales.orders s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a",
         "postgresql", {"sales.orders"}, {"mart.t"}),
        ("UPDATE mart.t SET a = 1 FROM sales.orders s WHERE s.id = t.id", "postgresql",
         {"sales.orders"}, {"mart.t"}),
        ("SELECT `id` FROM `sales`.`orders`", "mysql", {"sales.orders"}, set()),
        ("SELECT * FROM `proj.sales.orders`", "bigquery", {"sales.orders"}, set()),
        ("SELECT 1; SELECT * FROM a.b", "postgresql", {"a.b"}, set()),
    ],
)  # fmt: skip
def test_tables_read_and_written(sql, kind, reads, writes):
    parsed = parse(sql, kind)
    assert parsed.ok
    assert set(parsed.reads) == reads
    assert set(parsed.writes) == writes


@pytest.mark.parametrize("sql", ["SELEC * FRM", "", "SELECT (((", "VACUUM", "\x00"])
def test_unparseable_sql_is_marked_not_raised(sql):
    assert parse(sql, "postgresql").ok is False


def test_literals_do_not_change_the_tables_and_parse_once():
    from usage.parser import _parse, normalise

    assert normalise("SELECT * FROM s1.t2 WHERE id = 42 AND name = 'it''s 7' AND x > 1.5") == (
        "SELECT * FROM s1.t2 WHERE id = 0 AND name = '' AND x > 0"
    )
    assert normalise("SELECT $1, a1 FROM t WHERE b = $2") == "SELECT $1, a1 FROM t WHERE b = $2"
    _parse.cache_clear()
    for n in range(50):
        assert set(parse(f"SELECT * FROM sales.orders WHERE id = {n}").reads) == {"sales.orders"}
    assert _parse.cache_info().misses == 1
