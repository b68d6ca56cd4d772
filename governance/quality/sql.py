"""The box custom SQL checks live in: parsed by a real SQL parser (sqlglot) in the data source's
dialect, refused unless it is one read-only query of the port's own table, and re-written from
the parse tree for execution, so the database runs exactly what was checked.

Rules (docs/security.md "Custom SQL checks"):
- exactly one statement, a SELECT (WITH … SELECT and UNION of SELECTs allowed); no INTO, no
  FOR UPDATE, no parameters, no data-changing CTE;
- tables: only the port's own table (`${object}`, or its name with or without the schema) and
  the query's own CTEs; no other table, no system catalogue, no table function;
- functions: an allowlist of pure SQL functions (aggregates, arithmetic, text, date, CASE,
  COALESCE, CAST to plain types); no schema-qualified function, no custom operator.

Nothing here knows Django. Used at definition time (quality_services.validate_check: form, API,
contract import, admin) and again before every run (quality_engine), with the same function.
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError

# The data source kind -> sqlglot's dialect.
DIALECTS = {
    "postgresql": "postgres",
    "sqlite": "sqlite",
    "duckdb": "duckdb",
    "mysql": "mysql",
    "mariadb": "mysql",
    "snowflake": "snowflake",
    "bigquery": "bigquery",
    "databricks": "databricks",
    "redshift": "redshift",
    "trino": "trino",
}
MAX_LENGTH = 10_000
OBJECT = "__mesh_object__"  # what ${object} (or {table}) stands for while parsing
_CTE_PREFIX = "__mesh_cte_"
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# Functions sqlglot knows by a class of their own: pure, deterministic enough, no I/O.
ALLOWED_CLASSES = {
    # logic and conditionals
    "And", "Or", "Xor", "Case", "If", "Coalesce", "Nullif", "Greatest", "Least", "Nvl2",
    "Cast", "TryCast", "Exists",
    # aggregates
    "Count", "CountIf", "Sum", "Avg", "Min", "Max", "Median", "Stddev", "StddevPop",
    "StddevSamp", "Variance", "VariancePop", "ApproxDistinct", "PercentileCont",
    "PercentileDisc", "LogicalAnd", "LogicalOr", "AnyValue", "GroupConcat", "ArrayAgg",
    "Corr", "CovarPop", "CovarSamp", "Mode", "Quantile",
    # window functions
    "RowNumber", "Rank", "DenseRank", "PercentRank", "CumeDist", "Ntile", "Lag", "Lead",
    "FirstValue", "LastValue", "NthValue",
    # numbers
    "Abs", "Round", "Floor", "Ceil", "Trunc", "Sqrt", "Cbrt", "Pow", "Exp", "Ln", "Log",
    "Sign", "Mod", "Pi", "Degrees", "Radians", "WidthBucket", "IsNan", "IsInf", "SafeDivide",
    # text
    "Length", "BitLength", "ByteLength", "Lower", "Upper", "Trim", "Substring", "Concat",
    "ConcatWs", "Replace", "Left", "Right", "StrPosition", "Pad", "Initcap", "Repeat",
    "Reverse", "SplitPart", "Ascii", "Chr", "StartsWith", "EndsWith", "Contains", "MD5",
    "RegexpLike", "RegexpILike", "RegexpExtract", "RegexpReplace", "RegexpCount",
    "Levenshtein", "Soundex", "Hex", "Translate",
    # dates and times
    "CurrentDate", "CurrentTime", "CurrentTimestamp", "CurrentDatetime", "Localtime",
    "Localtimestamp", "Extract", "DateTrunc", "TimestampTrunc", "DatetimeTrunc", "TimeTrunc",
    "DateAdd", "DateSub", "DateDiff", "DatetimeAdd", "DatetimeSub", "DatetimeDiff",
    "TimestampAdd", "TimestampSub", "TimestampDiff", "TimeAdd", "TimeSub", "TimeDiff",
    "TsOrDsAdd", "TsOrDsDiff", "TsOrDsToDate", "Date", "Datetime", "Timestamp", "Time",
    "StrToDate", "StrToTime", "TimeToStr", "StrToUnix", "UnixToTime", "TimeStrToTime",
    "TimeStrToDate", "TimeToUnix", "Year", "Quarter", "Month", "Week", "Day", "DayOfMonth",
    "DayOfWeek", "DayOfYear", "Hour", "Minute", "Second", "LastDay", "MakeInterval",
    "JustifyDays", "JustifyHours", "JustifyInterval", "AddMonths", "MonthsBetween",
    "ToNumber", "ToChar", "NumberToStr",
    # JSON values (reading, not files)
    "JSONExtract", "JSONExtractScalar", "JSONBExtract", "JSONBExtractScalar", "ParseJSON",
    "JSONArrayAgg", "JSONObject", "JSONArray",
    # arrays built in the query itself
    "Array", "ArraySize", "ArrayContains", "Unnest",
}  # fmt: skip

# Functions sqlglot does not model (Anonymous), by the lower-case name written.
ALLOWED_NAMES = {
    # PostgreSQL
    "age", "date_part", "make_date", "make_time", "make_timestamp", "make_timestamptz",
    "isfinite", "btrim", "regexp_match", "regexp_matches", "regexp_split_to_array", "strpos",
    "every", "bool_and", "bool_or", "char_length", "character_length", "octet_length",
    "jsonb_array_length", "json_array_length", "jsonb_typeof", "json_typeof", "to_timestamp",
    "to_date", "to_number", "div", "log10", "ceiling", "nullif", "array_length",
    "cardinality", "date_bin", "justify_interval", "clock_timestamp", "statement_timestamp",
    "transaction_timestamp", "timeofday", "jsonb_extract_path_text", "json_extract_path_text",
    # SQLite
    "julianday", "date", "time", "datetime", "unixepoch", "strftime", "ifnull", "iif",
    "instr", "substr", "total", "printf", "format", "typeof", "likely", "unlikely",
    "json_extract", "json_valid", "json_type",
    # widely shared
    "length", "lower", "upper", "trim", "ltrim", "rtrim", "abs", "round", "coalesce",
    "greatest", "least", "sign", "count", "sum", "avg", "min", "max",
}  # fmt: skip

# Types a CAST may name. Object identifier types (regclass, oid, …) and user-defined types
# look things up in the catalogue or run custom input functions, so they are refused.
_T = exp.DataType.Type
ALLOWED_TYPES = {
    _T.BOOLEAN, _T.TINYINT, _T.SMALLINT, _T.INT, _T.MEDIUMINT, _T.BIGINT, _T.UTINYINT,
    _T.USMALLINT, _T.UINT, _T.UBIGINT, _T.FLOAT, _T.DOUBLE, _T.DECIMAL, _T.BIGDECIMAL,
    _T.MONEY, _T.TEXT, _T.VARCHAR, _T.NVARCHAR, _T.CHAR, _T.NCHAR, _T.DATE, _T.TIME,
    _T.TIMETZ, _T.TIMESTAMP, _T.TIMESTAMPTZ, _T.TIMESTAMPLTZ, _T.DATETIME, _T.INTERVAL,
    _T.JSON, _T.JSONB, _T.UUID, _T.ARRAY,
}  # fmt: skip

# Nodes that are statements, or clauses that change, lock or leave the query.
_FORBIDDEN_NODES: tuple[type[exp.Expr], ...] = tuple(
    getattr(exp, name)
    for name in (
        "DML",
        "DDL",
        "Command",
        "Copy",
        "Set",
        "Transaction",
        "Commit",
        "Rollback",
        "Pragma",
        "Use",
        "Attach",
        "Detach",
        "Into",
        "Lock",
        "Placeholder",
        "Parameter",
        "SessionParameter",
        "Operator",
        "Describe",
        "Show",
        "Kill",
        "Analyze",
        "LoadData",
        "Grant",
        "Revoke",
    )
    if hasattr(exp, name)
)


class SqlRefused(ValueError):
    """Custom SQL outside the box. The message names the problem and is safe to show."""


def dialect_for(kind: str) -> str:
    return DIALECTS.get(kind or "", "postgres")


def _parse(text: str, dialect: str) -> exp.Expr:
    if not isinstance(text, str):
        raise SqlRefused("The SQL is text.")
    text = text.strip()
    if not text:
        raise SqlRefused("Write a SELECT that returns the number of failing rows.")
    if len(text) > MAX_LENGTH:
        raise SqlRefused(f"The SQL is longer than {MAX_LENGTH} characters.")
    if "\x00" in text:
        raise SqlRefused("The SQL contains a NUL character.")
    # ${object} and {table} name the port's table; a plain identifier while parsing.
    text = text.replace("${object}", OBJECT).replace("{table}", OBJECT)
    try:
        statements = [s for s in sqlglot.parse(text, read=dialect) if s is not None]
    except ParseError as e:
        where = e.errors[0] if e.errors else {}
        desc = re.sub(r"\x1b\[[0-9;]*m", "", str(where.get("description") or "syntax error"))
        raise SqlRefused(
            f"The SQL could not be parsed ({desc}, line {where.get('line', '?')}, "
            f"column {where.get('col', '?')})."
        ) from None
    except (SqlglotError, RecursionError, ValueError):
        raise SqlRefused("The SQL could not be parsed.") from None
    if len(statements) != 1:
        raise SqlRefused(
            f"Only one statement is allowed; this SQL has {len(statements)} "
            "(a ';' outside a string ends a statement)."
        )
    return statements[0]


def _describe(node: exp.Expr) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).upper()
    if isinstance(node, exp.Func):
        return node.sql_name()
    return type(node).__name__.upper()


def _visible_ctes(node: exp.Expr) -> dict[str, exp.CTE]:
    """The CTEs a table reference at `node` can name, innermost first. Within one WITH, a CTE
    sees the CTEs before it (and all of them, itself included, when RECURSIVE)."""
    seen: dict[str, exp.CTE] = {}
    child, parent = node, node.parent
    while parent is not None:
        if isinstance(parent, exp.With):
            ctes = list(parent.expressions)
            if parent.args.get("recursive"):
                visible = ctes
            else:
                visible = ctes[: next((i for i, c in enumerate(ctes) if c is child), len(ctes))]
            for cte in visible:
                seen.setdefault(cte.alias_or_name.lower(), cte)
        else:
            with_ = parent.args.get("with_") or parent.args.get("with")
            if isinstance(with_, exp.With) and with_ is not child:
                for cte in with_.expressions:
                    seen.setdefault(cte.alias_or_name.lower(), cte)
        child, parent = parent, parent.parent
    return seen


def _check(tree: exp.Expr, schema: str, table: str) -> None:
    if not isinstance(tree, (exp.Select, exp.SetOperation)) and not (
        isinstance(tree, exp.Subquery) and isinstance(tree.this, exp.Select)
    ):
        raise SqlRefused(f"Custom SQL must be a single SELECT, not {_describe(tree)}.")
    for node in tree.walk():
        if isinstance(node, _FORBIDDEN_NODES):
            raise SqlRefused(f"Custom SQL may only read: {_describe(node)} is not allowed.")
        if isinstance(node, exp.Dot) and isinstance(node.expression, exp.Func):
            raise SqlRefused(
                f"Schema-qualified functions are not allowed "
                f"({node.this.sql()}.{_describe(node.expression)})."
            )
        if isinstance(node, exp.Anonymous):
            if str(node.name).lower() not in ALLOWED_NAMES:
                raise SqlRefused(f"The function {_describe(node)} is not allowed in custom SQL.")
        elif isinstance(node, exp.Func) and type(node).__name__ not in ALLOWED_CLASSES:
            raise SqlRefused(f"The function {_describe(node)} is not allowed in custom SQL.")
        if isinstance(node, exp.Cast):
            to = node.args.get("to")
            if not isinstance(to, exp.DataType) or to.this not in ALLOWED_TYPES:
                raise SqlRefused(f"Casting to {to.sql().upper() if to else '?'} is not allowed.")
        if (
            isinstance(node, exp.Identifier)
            and not node.quoted
            and not _PLAIN_NAME.fullmatch(node.name)
        ):
            # e.g. SQLite reads `$z$` as a parameter, PostgreSQL as a dollar quote.
            raise SqlRefused(
                f"The name {node.name} is not allowed: unquoted names are letters, digits and _."
            )
        if isinstance(node, exp.Table):
            _check_table(node, schema, table)


def _check_table(node: exp.Table, schema: str, table: str) -> None:
    if not isinstance(node.this, exp.Identifier):
        raise SqlRefused("Table functions are not allowed: read the port's table, ${object}.")
    name, db, catalog = node.name, node.db, node.catalog
    if not db and not catalog and name.lower() in _visible_ctes(node):
        return
    if not catalog and _is_port_table(name, db, schema, table):
        return
    shown = ".".join(p for p in (catalog, db, name) if p)
    raise SqlRefused(
        f"Custom SQL may read only this port's table (${{object}}); {shown} is not allowed."
    )


def _is_port_table(name: str, db: str, schema: str, table: str) -> bool:
    if name == OBJECT and not db:
        return True
    if not table or name.lower() != table.lower():
        return False
    return not db or db.lower() == (schema or "").lower()


def validate(text: str, *, kind: str = "postgresql", schema: str = "", table: str = "") -> str:
    """Refuse custom SQL outside the box (SqlRefused). Returns the text as it is stored."""
    _check(_parse(text, dialect_for(kind)), schema, table)
    return text.strip().rstrip(";").strip()


def render(text: str, *, kind: str, schema: str, table: str) -> str:
    """Validate again and write the statement the database runs: generated from the parse
    tree (no comments, no second statement, no text the parser did not understand), with the
    port's table named exactly and the query's CTEs renamed so that a CTE name can never fall
    through to a real table of the same name."""
    dialect = dialect_for(kind)
    tree = _parse(text, dialect)
    _check(tree, schema, table)
    tree = tree.copy()
    ctes: dict[int, str] = {}
    for i, cte in enumerate(tree.find_all(exp.CTE)):
        ctes[id(cte)] = f"{_CTE_PREFIX}{i}"
    replacements: list[tuple[exp.Table, exp.Identifier, exp.Identifier | None, str | None]] = []
    for node in tree.find_all(exp.Table):
        if not node.db and not node.catalog:
            visible = _visible_ctes(node).get(node.name.lower())
            if visible is not None:
                replacements.append((node, exp.to_identifier(ctes[id(visible)]), None, node.name))
                continue
        # Checked above: this is the port's own table.
        replacements.append(
            (
                node,
                exp.to_identifier(table, quoted=True),
                exp.to_identifier(schema, quoted=True) if schema else None,
                None if node.name == OBJECT else node.name,
            )
        )
    for node, this, db, alias in replacements:
        node.set("this", this)
        node.set("db", db)
        node.set("catalog", None)
        if alias and not node.alias:
            node.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
    for cte in tree.find_all(exp.CTE):
        alias = cte.args["alias"]
        alias.set("this", exp.to_identifier(ctes[id(cte)]))
    return tree.sql(dialect=dialect, comments=False)
