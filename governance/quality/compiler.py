"""Check specifications -> SQL in the target engine's dialect, built as sqlglot expressions.

One table's metric checks become ONE `SELECT` of aggregates (one scan), identical expressions
computed once, as `engine.compile_metrics` does for PostgreSQL and SQLite (which keep their
hand-tuned statements: bound parameters, PostgreSQL's InitPlan distinct counts). Every other
engine (DuckDB and files, MySQL/MariaDB, Snowflake, BigQuery, Databricks, Redshift, Trino) is
compiled here: the statement is a sqlglot tree generated in the engine's dialect, so the
differences live in one place:

- values are literals written by sqlglot for the dialect (quotes and backslashes escaped the
  engine's way: MySQL, BigQuery, Snowflake and Databricks read `\\` in a string, Trino does not);
- patterns use each engine's regex function with search semantics (`REGEXP_MATCHES` on DuckDB,
  `REGEXP_CONTAINS` on BigQuery, `REGEXP_LIKE` on Trino and Databricks, `~` on Redshift,
  `REGEXP_INSTR(…) > 0` on Snowflake, whose `REGEXP_LIKE` matches the whole value, and on
  MySQL/MariaDB, with `(?-i)` so a case-insensitive collation does not make the pattern so);
- freshness is the engine's own timestamp arithmetic (`DATE_DIFF`, `TIMESTAMPDIFF`,
  `TIMESTAMP_DIFF`, `DATEDIFF`) between the newest value and the run's time, given as a literal
  so every engine measures against the same clock;
- the schema check reads each engine's catalogue (`information_schema.columns`, BigQuery's
  dataset `INFORMATION_SCHEMA.COLUMNS`);
- custom SQL goes through `quality_sql.render` (parsed in the dialect, one read-only SELECT of
  the port's own table, re-written from the parse tree).

Nothing here knows Django or opens a connection: the golden tests compile every check type for
every dialect and parse the result back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlglot import exp

from governance.quality import sql as quality_sql

SAMPLE_SIZE = 5
# Each engine's regex test, search semantics (re.search, PostgreSQL's ~).
_REGEXP_INSTR = {"mysql", "snowflake"}
# Freshness: the timestamp difference that counts seconds on this dialect.
_TIMESTAMPDIFF = {"mysql", "bigquery"}


def dialect_for(kind: str) -> str:
    return quality_sql.dialect_for(kind)


@dataclass
class Compiled:
    sql: str
    slots: dict[int, dict[str, int]]  # check id -> {name: column index of the result row}


def table_expr(schema: str, table: str, catalog: str = "") -> exp.Table:
    return exp.table_(
        exp.to_identifier(table, quoted=True),
        db=exp.to_identifier(schema, quoted=True) if schema else None,
        catalog=exp.to_identifier(catalog, quoted=True) if catalog else None,
    )


def _col(name: str) -> exp.Column:
    return exp.column(exp.to_identifier(name, quoted=True))


def _text(e: exp.Expr) -> exp.Expr:
    return exp.cast(e, exp.DataType.build("text"))


def _value(v) -> exp.Expr:
    if isinstance(v, bool):
        return exp.Literal.string(str(v).lower())
    if isinstance(v, (int, float)):
        return exp.Literal.number(v)
    return exp.Literal.string(str(v))


def _count_when(cond: exp.Expr) -> exp.Expr:
    return exp.Sum(this=exp.case().when(cond, exp.Literal.number(1)).else_(exp.Literal.number(0)))


def _and(parts: list[exp.Expr]) -> exp.Expr:
    out = parts[0]
    for p in parts[1:]:
        out = exp.and_(out, p)
    return out


def pattern_match(dialect: str, col: exp.Expr, pattern: str) -> exp.Expr:
    """True where the value matches the pattern anywhere (search, not full match)."""
    value = _text(col)
    if dialect in _REGEXP_INSTR:
        if dialect == "mysql":
            pattern = "(?-i)" + pattern  # ICU and PCRE both read it; collations are often _ci
        return exp.GT(
            this=exp.Anonymous(this="REGEXP_INSTR", expressions=[value, _value(pattern)]),
            expression=exp.Literal.number(0),
        )
    return exp.RegexpLike(this=value, expression=_value(pattern))


def failing_condition(dialect: str, kind: str, columns: list[str], params: dict) -> exp.Expr:
    """The rows a missing/validity check counts as failing."""
    col = _col(columns[0])
    if kind == "missing":
        extra = [str(v) for v in params.get("missing_values") or []]
        cond: exp.Expr = exp.Is(this=col.copy(), expression=exp.Null())
        if extra:
            cond = exp.paren(
                exp.or_(cond, exp.In(this=_text(col), expressions=[_value(v) for v in extra]))
            )
        return cond
    present = exp.not_(exp.Is(this=col.copy(), expression=exp.Null()))
    if kind == "accepted_values":
        values = [_value(str(v)) for v in params.get("values") or []]
        if not values:
            return present
        return exp.and_(present, exp.not_(exp.In(this=_text(col), expressions=values)))
    if kind == "range":
        parts: list[exp.Expr] = []
        if params.get("min") is not None:
            parts.append(exp.LT(this=col.copy(), expression=_value(params["min"])))
        if params.get("max") is not None:
            parts.append(exp.GT(this=col.copy(), expression=_value(params["max"])))
        if not parts:
            return exp.EQ(this=exp.Literal.number(1), expression=exp.Literal.number(0))
        out = parts[0]
        for p in parts[1:]:
            out = exp.or_(out, p)
        return exp.paren(out)
    if kind == "pattern":
        return exp.and_(present, exp.not_(pattern_match(dialect, col, params["pattern"])))
    raise ValueError(f"No failing-row condition for {kind}.")


def _tuple_key(columns: list[str]) -> exp.Expr:
    """An injective text key of several values: each as `<length>:<text>`, concatenated."""
    parts: list[exp.Expr] = []
    for c in columns:
        value = _text(_col(c))
        parts += [_text(exp.Length(this=value.copy())), exp.Literal.string(":"), value]
    return exp.Concat(expressions=parts, safe=True)


def _now_literal(dialect: str, now: datetime) -> exp.Expr:
    text = now.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="seconds")
    # BigQuery's TIMESTAMP is an instant (UTC); elsewhere a plain timestamp read in the
    # session's time zone, which the connections set to UTC.
    type_ = "timestamptz" if dialect == "bigquery" else "timestamp"
    return exp.cast(exp.Literal.string(text), exp.DataType.build(type_))


def age_seconds(dialect: str, newest: exp.Expr, now: datetime) -> exp.Expr:
    """Seconds from `newest` to the run's time, in the engine's timestamp arithmetic."""
    unit = exp.var("SECOND")
    then = _now_literal(dialect, now)
    if dialect in _TIMESTAMPDIFF:
        return exp.TimestampDiff(this=then, expression=newest, unit=unit)
    return exp.DateDiff(this=then, expression=newest, unit=unit)


class _Aggregates:
    def __init__(self, dialect: str):
        self.dialect = dialect
        self.exprs: list[exp.Expr] = []
        self._index: dict[str, int] = {}

    def add(self, e: exp.Expr) -> int:
        key = e.sql(dialect=self.dialect)
        if key not in self._index:
            self._index[key] = len(self.exprs)
            self.exprs.append(e)
        return self._index[key]


def compile_metrics(kind: str, table: exp.Table, specs, *, now: datetime | None = None) -> Compiled:
    """All metric checks of one table -> one SELECT (one scan). `specs` are engine.CheckSpecs."""
    dialect = dialect_for(kind)
    now = now or datetime.now(UTC)
    agg = _Aggregates(dialect)
    slots: dict[int, dict[str, int]] = {}
    for spec in specs:
        s: dict[str, int] = {}
        p = spec.params
        if spec.kind in ("row_count", "missing", "duplicates") or p.get("unit") == "percent":
            s["total"] = agg.add(exp.Count(this=exp.Star()))
        if spec.kind in ("missing", "accepted_values", "range", "pattern"):
            s["bad"] = agg.add(_count_when(failing_condition(dialect, spec.kind, spec.columns, p)))
        elif spec.kind == "duplicates":
            cols = spec.columns
            if len(cols) == 1:
                s["present"] = agg.add(exp.Count(this=_col(cols[0])))
                s["distinct"] = agg.add(exp.Count(this=exp.Distinct(expressions=[_col(cols[0])])))
            else:
                all_present = _and(
                    [exp.not_(exp.Is(this=_col(c), expression=exp.Null())) for c in cols]
                )
                s["present"] = agg.add(_count_when(all_present))
                key = exp.case().when(all_present.copy(), _tuple_key(cols))
                s["distinct"] = agg.add(exp.Count(this=exp.Distinct(expressions=[key])))
        elif spec.kind == "freshness":
            newest = exp.Max(this=_col(spec.columns[0]))
            s["newest"] = agg.add(newest)
            s["age"] = agg.add(age_seconds(dialect, newest.copy(), now))
        slots[spec.id] = s
    select = exp.select(*agg.exprs).from_(table.copy())
    return Compiled(select.sql(dialect=dialect), slots)


def compile_sample(kind: str, table: exp.Table, spec) -> str:
    """Up to five distinct failing values of a validity check, as text."""
    dialect = dialect_for(kind)
    cond = failing_condition(dialect, spec.kind, spec.columns, spec.params)
    select = (
        exp.select(_text(_col(spec.columns[0])))
        .distinct()
        .from_(table.copy())
        .where(cond)
        .limit(SAMPLE_SIZE)
    )
    return select.sql(dialect=dialect)


def compile_catalogue(kind: str, schema: str, table: str, catalog: str = "") -> str:
    """The table's columns and their types, in order, from the engine's catalogue."""
    dialect = dialect_for(kind)
    if dialect == "bigquery":
        # A dataset's own INFORMATION_SCHEMA; `schema` is the dataset.
        source = exp.table_(
            exp.to_identifier("COLUMNS"),
            db=exp.to_identifier(schema, quoted=True) if schema else None,
            catalog=exp.to_identifier(catalog, quoted=True) if catalog else None,
        )
        source.set(
            "this", exp.Dot(this=exp.to_identifier("INFORMATION_SCHEMA"), expression=source.this)
        )
    else:
        source = exp.table_(
            "columns",
            db="information_schema",
            catalog=exp.to_identifier(catalog, quoted=True) if catalog else None,
        )
    where: exp.Expr = exp.EQ(this=exp.column("table_name"), expression=_value(table))
    if dialect == "mysql" and not schema:
        schema_cond: exp.Expr | None = exp.EQ(
            this=exp.column("table_schema"), expression=exp.Anonymous(this="DATABASE")
        )
    elif schema and dialect != "bigquery":
        schema_cond = exp.EQ(this=exp.column("table_schema"), expression=_value(schema))
    else:
        schema_cond = None
    if schema_cond is not None:
        where = exp.and_(schema_cond, where)
    select = (
        exp.select("column_name", "data_type")
        .from_(source)
        .where(where)
        .order_by("ordinal_position")
    )
    return select.sql(dialect=dialect)


def compile_custom(kind: str, text: str, schema: str, table: str) -> str:
    """Custom SQL, checked (one read-only SELECT of the port's table) and re-written from its
    parse tree in the dialect. Raises quality_sql.SqlRefused."""
    return quality_sql.render(text, kind=kind, schema=schema, table=table)
