"""The quality engine: compiles a table's checks into SQL and runs them on a read-only
connection to the port's data source.

All metric checks of one table become ONE `SELECT` of aggregates that reads the table in ONE
scan: distinct counts in the same aggregate, and (where samples are allowed) the smallest and
largest failing value of each accepted-values, range and pattern check; identical expressions
are computed once. The schema check reads the catalogue once per table, and its
counts of declared required/unique fields' missing and duplicate values join that one
`SELECT`; custom SQL runs as its own statement, checked and re-written by `quality_sql` (one
SELECT of the port's own table, allowlisted functions). Identifiers are quoted by the driver's tools (psycopg's
`sql.Identifier`, a strict helper for SQLite); values are always bound parameters. Every
statement is sent as one prepared statement (the driver cannot split it) in a read-only
transaction, on a connection whose role is checked first: never a superuser, never one that can
read the portal's own tables (docs/security.md "Custom SQL checks").

The engine knows nothing about Django models beyond duck-typed attributes: a source (kind,
host, port, database, user, password_env, sslmode, max_timeout_seconds) and check specs
(`CheckSpec`), so that the benchmark can drive it directly.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import time
import urllib.parse
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

from governance.quality import compiler
from governance.quality import sql as quality_sql

log = logging.getLogger(__name__)

# Tables of the portal itself: a data source whose role can read one of them is refused
# (`Connection.guard`). Django's own, and every installed model's (`portal_tables()`).
_DJANGO_TABLES = {
    "auth_user",
    "auth_group",
    "auth_user_groups",
    "auth_permission",
    "django_session",
    "django_migrations",
    "django_content_type",
    "django_admin_log",
}


def portal_tables() -> set[str]:
    from django.apps import apps

    if not apps.models_ready:  # the engine used outside Django (bench/quality.py)
        return set(_DJANGO_TABLES)
    return _DJANGO_TABLES | {m._meta.db_table for m in apps.get_models(include_auto_created=True)}


# Predefined PostgreSQL roles that read or write server files, run programs, signal other
# backends or read every table: a data source's role must not hold any of them.
PG_DANGEROUS_ROLES = (
    "pg_read_server_files",
    "pg_write_server_files",
    "pg_execute_server_program",
    "pg_signal_backend",
    "pg_read_all_data",
    "pg_write_all_data",
)
# PostgreSQL types without an equality operator: no COUNT(DISTINCT …) / GROUP BY of them.
PG_NOT_COMPARABLE = {"json", "xml", "point", "line", "lseg", "box", "path", "polygon", "circle"}
NOT_A_NUMBER = "The query must return one number (one row, one numeric column)."

METRIC_KINDS = {
    "row_count",
    "missing",
    "duplicates",
    "accepted_values",
    "range",
    "pattern",
    "freshness",
}
SAMPLE_KINDS = {"accepted_values", "range", "pattern"}


class EngineError(Exception):
    """A problem with the source or a query; its message is safe to show (no credentials)."""


class QueryTimeout(EngineError):
    pass


class UnsafeSource(EngineError):
    """The source's role may do more than read its own tables; for the platform team to fix."""


@dataclass
class CheckSpec:
    id: int
    kind: str
    columns: list[str] = field(default_factory=list)
    params: dict = field(default_factory=dict)
    timeout_seconds: int = 60


@dataclass
class Result:
    status: str  # passed | failed | error
    observed: float | None = None
    threshold: str = ""
    message: str = ""
    sample: list = field(default_factory=list)
    duration_ms: int = 0


# -- connections -------------------------------------------------------------------------------


class Connection:
    vendor = ""
    placeholder = "%s"
    # Connections whose statements `compiler` builds in sqlglot (every kind but PostgreSQL and
    # SQLite, which keep the hand-tuned statements below); `catalog` qualifies their tables.
    compiled = False
    catalog = ""
    # What "test connection" says about how this connection is kept read-only.
    read_only_note = "read-only; the role is no superuser and cannot read the portal's tables"

    def __init__(self):
        self.statements: list[str] = []  # every statement sent, for tests and the benchmark
        self.max_timeout: float | None = None  # the source's cap; no statement runs longer

    def quote(self, name: str) -> str:
        raise NotImplementedError

    def capped(self, seconds: float) -> float:
        return min(seconds, self.max_timeout) if self.max_timeout else seconds

    def guard(self, portal_tables) -> None:
        """Refuse (UnsafeSource) a role that is more than a reader of its warehouse."""
        raise NotImplementedError

    def table(self, schema: str, table: str) -> str:
        if self.compiled:
            return compiler.table_expr(schema, table, self.catalog).sql(dialect=self.dialect)
        return f"{self.quote(schema)}.{self.quote(table)}" if schema else self.quote(table)

    @property
    def dialect(self) -> str:
        return compiler.dialect_for(self.vendor)

    def resolve(self, location: str, default_schema: str = "") -> tuple[str, str]:
        """The port's location -> (schema, table) on this connection (DuckDB maps a file
        port's path or glob to a view of its own)."""
        return split_location(location, default_schema)

    def execute(self, sql: str, params=(), *, untrusted: bool = False) -> list[tuple]:
        """Run one statement. `untrusted` (custom SQL): a failure's message is fixed text, never
        the database's, which may quote values from the data."""
        raise NotImplementedError

    def set_timeout(self, seconds: float) -> None:
        raise NotImplementedError

    def columns(self, schema: str, table: str) -> dict[str, str]:
        raise NotImplementedError

    def columns_many(self, tables: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, str]]:
        """The catalogue of several tables ({} for one that does not exist); PostgreSQL and
        SQLite read them in one statement, the compiled engines one table at a time."""
        return {(schema, table): self.columns(schema, table) for schema, table in tables}

    # SQL dialect pieces that differ.
    def tuple_text(self, cols: list[str]) -> str:
        raise NotImplementedError

    def not_matching(self, col: str) -> str:
        raise NotImplementedError

    def comparable(self, data_type: str) -> bool:
        """Whether values of this catalogue type can be told apart (counted as distinct)."""
        return True

    def bytewise(self, text_expr: str) -> str:
        """A text expression compared byte by byte (MIN/MAX of failing values: no collation
        rules, much cheaper over many rows)."""
        return text_expr

    def distinct_tuples(self, cols: list[str], present: str) -> str:
        """COUNT of the distinct tuples of several columns, all present, in the one aggregate."""
        return f"COUNT(DISTINCT CASE WHEN {present} THEN {self.tuple_text(cols)} END)"

    def close(self) -> None:
        raise NotImplementedError


class PostgresConnection(Connection):
    vendor = "postgresql"
    placeholder = "%s"

    def __init__(self, source, timeout: float):
        super().__init__()
        import psycopg

        self._psycopg = psycopg
        password = os.environ.get(source.password_env) if source.password_env else None
        if password is None and str(getattr(source, "secret_file", None) or ""):
            from governance.quality.connections import secret_path

            key = secret_path(source)
            password = key.read_text().strip() if key else None
        kwargs = {
            "host": source.host or "127.0.0.1",
            "port": source.port or 5432,
            "dbname": source.database,
            "user": source.user or None,
            "password": password or None,
            "connect_timeout": 5,
            "application_name": "mesh-portal-quality",
            # Read-only at the session level, and every transaction below is READ ONLY too.
            # jit=off: a table's statement is costed with every branch of its distinct counts,
            # which tips it over jit_above_cost, and compiling hundreds of expressions in each
            # parallel worker then costs more than the scan (0.5 s of 1.3 s on 1M rows).
            "options": (
                "-c default_transaction_read_only=on -c jit=off "
                f"-c statement_timeout={int(timeout * 1000)}"
            ),
        }
        work_mem = os.environ.get("MESH_QUALITY_WORK_MEM", "")
        if re.fullmatch(r"\d+(kB|MB|GB)", work_mem):
            # More memory per sort keeps COUNT(DISTINCT …) of big tables off the disk.
            kwargs["options"] += f" -c work_mem={work_mem}"
        if source.sslmode:
            kwargs["sslmode"] = source.sslmode
        try:
            self.conn = psycopg.connect(**{k: v for k, v in kwargs.items() if v is not None})
        except psycopg.Error as e:
            raise EngineError(f"Could not connect to the data source: {_first_line(e)}") from None
        self.conn.read_only = True  # BEGIN READ ONLY

    def quote(self, name: str) -> str:
        from psycopg import sql

        return sql.Identifier(name).as_string(self.conn)

    def execute(self, sql_text: str, params=(), *, untrusted: bool = False) -> list[tuple]:
        self.statements.append(sql_text)
        return self._run(sql_text, params, untrusted=untrusted)

    def _run(self, sql_text: str, params=(), *, untrusted: bool = False) -> list[tuple]:
        try:
            with self.conn.cursor() as cur:
                # prepare=True: the extended protocol's Parse message holds exactly one
                # statement, so a `; COMMIT; …` can never reach the server as a second one.
                cur.execute(sql_text, list(params) or None, prepare=True)
                rows = cur.fetchall() if cur.description else []
            self.conn.rollback()  # end the read-only transaction; nothing to keep
            return rows
        except self._psycopg.errors.QueryCanceled:
            self.conn.rollback()
            raise QueryTimeout("The query ran past its timeout and was cancelled.") from None
        except self._psycopg.Error as e:
            if not self.conn.closed:
                self.conn.rollback()
            if untrusted:
                name = type(e).__name__
                raise EngineError(
                    f"The query failed on the data source ({name}, SQLSTATE {e.sqlstate})."
                ) from None
            raise EngineError(_first_line(e)) from None

    def set_timeout(self, seconds: float) -> None:
        # SET is allowed inside read-only transactions; this one is session-wide.
        seconds = self.capped(seconds)
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT set_config('statement_timeout', %s, false)", [str(int(seconds * 1000))]
            )
        self.conn.commit()  # a rolled-back SET would be undone

    def guard(self, portal_tables) -> None:
        role, superuser, createrole, bypassrls = self._run(
            "SELECT current_user, r.rolsuper, r.rolcreaterole, r.rolbypassrls "
            "FROM pg_roles r WHERE r.rolname = current_user"
        )[0]
        if superuser or createrole or bypassrls:
            what = "a superuser" if superuser else "allowed to create roles or bypass RLS"
            raise UnsafeSource(
                f"Refused: this data source connects as {role}, which is {what}. Quality "
                "checks need a login role that can only SELECT the warehouse's tables "
                "(see docs/security.md, 'Custom SQL checks')."
            )
        held = self._run(
            "SELECT string_agg(rolname, ', ' ORDER BY rolname) FROM pg_roles "
            "WHERE rolname = ANY(%s) AND pg_has_role(current_user, oid, 'USAGE')",
            [list(PG_DANGEROUS_ROLES)],
        )[0][0]
        if held:
            raise UnsafeSource(
                f"Refused: this data source's role {role} holds {held}. Quality checks need "
                "a login role that can only SELECT the warehouse's tables."
            )
        readable = self._run(
            "SELECT n.nspname || '.' || c.relname FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relname = ANY(%s) AND c.relkind IN ('r', 'p', 'v', 'm', 'f') "
            "AND has_any_column_privilege(c.oid, 'SELECT') LIMIT 1",
            [sorted(portal_tables)],
        )
        if readable:
            raise UnsafeSource(
                f"Refused: this data source's role {role} can read the portal's own table "
                f"{readable[0][0]}. Give quality checks a role that can only SELECT the "
                "warehouse's tables, not the portal's."
            )

    def columns(self, schema: str, table: str) -> dict[str, str]:
        rows = self.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            [schema or "public", table],
        )
        return {name: typ for name, typ in rows}

    def columns_many(self, tables: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, str]]:
        out: dict[tuple[str, str], dict[str, str]] = {key: {} for key in tables}
        if not tables:
            return out
        rows = self.execute(
            "SELECT c.table_schema, c.table_name, c.column_name, c.data_type"
            " FROM information_schema.columns AS c"
            " JOIN unnest(%s::text[], %s::text[]) AS w(s, t)"
            " ON c.table_schema = w.s AND c.table_name = w.t"
            " ORDER BY c.table_schema, c.table_name, c.ordinal_position",
            [[schema or "public" for schema, _ in tables], [table for _, table in tables]],
        )
        asked = {(schema or "public", table): (schema, table) for schema, table in tables}
        for schema, table, name, typ in rows:
            out[asked[(schema, table)]][name] = typ
        return out

    def tuple_text(self, cols: list[str]) -> str:
        return "ROW(" + ", ".join(cols) + ")::text"

    def not_matching(self, col: str) -> str:
        return f"CAST({col} AS TEXT) !~ %s"

    def comparable(self, data_type: str) -> bool:
        return normalise_type(data_type) not in PG_NOT_COMPARABLE

    def bytewise(self, text_expr: str) -> str:
        return f'{text_expr} COLLATE "C"'

    def distinct_tuples(self, cols: list[str], present: str) -> str:
        # Rows compare column by column with each type's own ordering: no text built per row.
        return f"COUNT(DISTINCT CASE WHEN {present} THEN ROW({', '.join(cols)}) END)"

    def close(self) -> None:
        self.conn.close()


def sqlite_quote(name: str) -> str:
    """Quote an SQLite identifier strictly: refuse NUL and control characters, double quotes."""
    if not isinstance(name, str) or not name or any(ord(ch) < 32 for ch in name):
        raise EngineError(f"Invalid identifier {name!r}.")
    return '"' + name.replace('"', '""') + '"'


# SQLite messages that only quote the query's own text (names the author typed), never data.
_SQLITE_SAFE = ("no such column", "no such table", "no such function", "ambiguous column")


def _sqlite_message(e: Exception, untrusted: bool) -> str:
    text = str(e)
    if not untrusted or text.startswith(_SQLITE_SAFE):
        return text
    return f"The query failed on the data source ({type(e).__name__})."


def _regexp(pattern, value) -> int:
    if value is None:
        return 0
    return 1 if re.search(pattern, str(value)) else 0


class SqliteConnection(Connection):
    vendor = "sqlite"
    placeholder = "?"

    def __init__(self, source, timeout: float):
        super().__init__()
        path = os.path.abspath(source.database)
        if not os.path.exists(path):
            raise EngineError(
                "Could not connect to the data source: the database file does not exist."
            )
        uri = f"file:{urllib.parse.quote(path)}?mode=ro"
        try:
            self.conn = sqlite3.connect(uri, uri=True, timeout=5, check_same_thread=False)
            self.conn.execute("PRAGMA query_only = ON")
            # A double-quoted name that is not a column must be an error, never a string.
            self.conn.setconfig(sqlite3.SQLITE_DBCONFIG_DQS_DML, False)
            self.conn.setconfig(sqlite3.SQLITE_DBCONFIG_DQS_DDL, False)
        except sqlite3.Error as e:
            raise EngineError(f"Could not connect to the data source: {e}") from None
        self.conn.create_function("regexp", 2, _regexp, deterministic=True)
        self.set_timeout(timeout)
        self.conn.set_progress_handler(self._progress, 10_000)

    def _progress(self) -> int:
        return 1 if time.monotonic() > self._deadline else 0

    def set_timeout(self, seconds: float) -> None:
        self._timeout = self.capped(seconds)
        self._deadline = time.monotonic() + self._timeout

    def guard(self, portal_tables) -> None:
        names = sorted(portal_tables)
        marks = _in_list(self, len(names))
        sql_text = f"SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name IN ({marks}) LIMIT 1"  # noqa: S608, E501 - placeholders  # nosec B608
        found = self._run(sql_text, names)
        if found:
            raise UnsafeSource(
                f"Refused: this SQLite data source holds the portal's own table {found[0][0]} "
                "(is it the portal's database?). Point it at the warehouse file."
            )

    def quote(self, name: str) -> str:
        return sqlite_quote(name)

    def execute(self, sql_text: str, params=(), *, untrusted: bool = False) -> list[tuple]:
        self.statements.append(sql_text)
        return self._run(sql_text, params, untrusted=untrusted)

    def _run(self, sql_text: str, params=(), *, untrusted: bool = False) -> list[tuple]:
        self._deadline = time.monotonic() + self._timeout
        try:
            # sqlite3's execute() refuses a string holding more than one statement.
            cur = self.conn.execute(sql_text, list(params))
            rows = cur.fetchall()
            self.conn.rollback()
            return rows
        except sqlite3.OperationalError as e:
            self.conn.rollback()
            if "interrupted" in str(e):
                raise QueryTimeout("The query ran past its timeout and was cancelled.") from None
            raise EngineError(_sqlite_message(e, untrusted)) from None
        except (sqlite3.Error, sqlite3.Warning) as e:
            raise EngineError(_sqlite_message(e, untrusted)) from None

    def columns(self, schema: str, table: str) -> dict[str, str]:
        rows = self.execute(
            "SELECT name, type FROM pragma_table_info(?, ?)", [table, schema or "main"]
        )
        return {name: typ for name, typ in rows}

    def columns_many(self, tables: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, str]]:
        out: dict[tuple[str, str], dict[str, str]] = {key: {} for key in tables}
        if not tables:
            return out
        # Constant text and placeholders only: one table-valued pragma per table.
        union = " UNION ALL ".join(
            f"SELECT {i} AS i, cid, name, type FROM pragma_table_info(?, ?)"  # noqa: S608  # nosec B608
            for i in range(len(tables))
        )
        params = [p for schema, table in tables for p in (table, schema or "main")]
        for i, _, name, typ in self.execute(f"{union} ORDER BY i, cid", params):
            out[tables[i]][name] = typ
        return out

    def tuple_text(self, cols: list[str]) -> str:
        return " || ',' || ".join(f"quote({c})" for c in cols)

    def not_matching(self, col: str) -> str:
        return f"NOT ({col} REGEXP ?)"

    def close(self) -> None:
        self.conn.close()


@contextmanager
def connect(source, timeout: float = 60):
    """A read-only connection whose role has passed `guard` (every door: runs, column checks
    at definition time, "test connection"). No statement runs past the source's maximum."""
    cap = getattr(source, "max_timeout_seconds", None) or None
    timeout = min(timeout, cap) if cap else timeout
    conn: Connection
    if source.kind == "postgresql":
        conn = PostgresConnection(source, timeout)
    elif source.kind == "sqlite":
        conn = SqliteConnection(source, timeout)
    else:
        from governance.quality.connections import open_connection

        conn = open_connection(source, timeout)
    conn.max_timeout = cap
    try:
        conn.guard(portal_tables())
        yield conn
    finally:
        conn.close()


def test_connection(source) -> str:
    """Open a read-only connection, check its role and run SELECT 1. Returns a short,
    credential-free text; a refused role raises UnsafeSource with what to fix."""
    with connect(source, timeout=10) as conn:
        conn.execute("SELECT 1")
        return f"Connected ({conn.vendor}, {conn.read_only_note})."


# not a pytest test; mypy does not model attributes set on functions
test_connection.__test__ = False  # type: ignore[attr-defined]


def split_location(location: str, default_schema: str = "") -> tuple[str, str]:
    """'schema.table' -> (schema, table); a bare table takes the source's default schema."""
    location = (location or "").strip()
    if not location:
        raise EngineError("The port has no location (schema.table).")
    if "." in location:
        schema, table = location.split(".", 1)
        return schema, table
    return default_schema, location


# -- compilation -------------------------------------------------------------------------------


class Aggregates:
    """The SELECT list of one scan. Identical expressions share one column. `derive` adds a
    per-row expression (a failing value) computed once per row, in a subquery that PostgreSQL
    and SQLite fold into the same scan, for several aggregates to read."""

    def __init__(self):
        self.exprs: list[tuple[str, tuple]] = []
        self._index: dict[tuple[str, tuple], int] = {}
        self.derived: list[tuple[str, tuple]] = []

    def add(self, expr: str, params=()) -> int:
        key = (expr, tuple(params))
        if key not in self._index:
            self._index[key] = len(self.exprs)
            self.exprs.append(key)
        return self._index[key]

    def derive(self, conn, expr: str, params=()) -> str:
        """-> the quoted name of a per-row expression's column."""
        name = conn.quote(f"mesh_failing_{len(self.derived)}")
        self.derived.append((f"{expr} AS {name}", tuple(params)))
        return name

    def sql(self, table_sql: str) -> tuple[str, list]:
        select = ", ".join(e for e, _ in self.exprs)
        params = [p for _, ps in self.exprs for p in ps]
        source = table_sql
        if self.derived:
            rows = ", ".join(e for e, _ in self.derived)
            source = f"(SELECT *, {rows} FROM {table_sql}) AS mesh_rows"  # noqa: S608  # nosec B608
            params += [p for _, ps in self.derived for p in ps]
        # quoted identifiers only; values are bound parameters
        return f"SELECT {select} FROM {source}", params  # noqa: S608  # nosec B608


def _in_list(conn: Connection, n: int) -> str:
    return ", ".join([conn.placeholder] * n)


def _missing_condition(conn, col: str, spec: CheckSpec) -> tuple[str, list]:
    extra = [str(v) for v in spec.params.get("missing_values") or []]
    if extra:
        return f"({col} IS NULL OR CAST({col} AS TEXT) IN ({_in_list(conn, len(extra))}))", extra
    return f"{col} IS NULL", []


def _invalid_condition(conn, spec: CheckSpec) -> tuple[str, list]:
    """The WHERE condition of the rows a validity check counts as failing."""
    col = conn.quote(spec.columns[0])
    p = spec.params
    if spec.kind == "accepted_values":
        values = [str(v) for v in p.get("values") or []]
        return (
            f"{col} IS NOT NULL AND CAST({col} AS TEXT) NOT IN ({_in_list(conn, len(values))})",
            values,
        )
    if spec.kind == "range":
        parts, params = [], []
        if p.get("min") is not None:
            parts.append(f"{col} < {conn.placeholder}")
            params.append(p["min"])
        if p.get("max") is not None:
            parts.append(f"{col} > {conn.placeholder}")
            params.append(p["max"])
        return "(" + " OR ".join(parts or ["1 = 0"]) + ")", params
    if spec.kind == "pattern":
        return f"{col} IS NOT NULL AND {conn.not_matching(col)}", [p["pattern"]]
    if spec.kind == "missing":
        return _missing_condition(conn, col, spec)
    raise EngineError(f"No failing-row condition for {spec.kind}.")


def _count_when(cond: str) -> str:
    return f"SUM(CASE WHEN {cond} THEN 1 ELSE 0 END)"


def _failing_value(conn, spec: CheckSpec) -> tuple[str, bool]:
    """The value a sample shows for a failing row -> (expression, ordered by its own type).
    A range's values keep their type (numbers and dates order as such); the others are text
    compared byte by byte."""
    col = conn.quote(spec.columns[0])
    if spec.kind == "range":
        return col, True
    return conn.bytewise(f"CAST({col} AS TEXT)"), False


def compile_metrics(
    conn: Connection,
    table_sql: str,
    specs: list[CheckSpec],
    location: tuple[str, str] = ("", ""),
    *,
    now: datetime | None = None,
    samples: bool = False,
):
    """-> (sql, params, {check id: {name: column index}}): ONE statement that reads the table
    in ONE scan for every check -- distinct counts in the same aggregate (COUNT(DISTINCT)),
    and with `samples` the smallest and largest failing value of each accepted-values, range
    and pattern check (MIN/MAX of the failing rows' values: constant memory, computed once per
    row). `location` is the (schema, table) that `table_sql` names, for the compiled dialects.
    Every engine but PostgreSQL and SQLite is compiled by `compiler`, in its own dialect (its
    samples are a statement of their own, `_sample`)."""
    if conn.compiled:
        table = compiler.table_expr(location[0], location[1], conn.catalog)
        out = compiler.compile_metrics(conn.vendor, table, specs, now=now)
        return out.sql, [], out.slots
    agg = Aggregates()
    slots: dict[int, dict[str, int]] = {}
    for spec in specs:
        s: dict[str, int] = {}
        if (
            spec.kind in ("row_count", "missing", "duplicates")
            or spec.params.get("unit") == "percent"
        ):
            s["total"] = agg.add("COUNT(*)")
        if spec.kind in ("missing", "accepted_values", "range", "pattern"):
            cond, params = _invalid_condition(conn, spec)
            if samples and spec.kind in SAMPLE_KINDS:
                # The failing value, or NULL: its count is the failing rows' (every failing
                # condition implies a value), its MIN and MAX the samples.
                value, typed = _failing_value(conn, spec)
                failing = agg.derive(conn, f"CASE WHEN {cond} THEN {value} END", params)
                s["bad"] = agg.add(f"COUNT({failing})")
                for end in ("MIN", "MAX"):
                    expr = f"{end}({failing})"
                    s[f"sample_{end.lower()}"] = agg.add(f"CAST({expr} AS TEXT)" if typed else expr)
            elif spec.kind == "missing" and not params:
                # Nulls alone: the rows less the values, aggregates PostgreSQL computes once
                # for every check that reads them (COUNT(*) is the total's, COUNT(col) a
                # duplicates check's). A CASE per row was 0.14 s of a 1,000,000-row table's
                # 1.18 s (bench.quality, a fresh connection).
                s["bad"] = agg.add(f"COUNT(*) - COUNT({conn.quote(spec.columns[0])})")
            else:
                s["bad"] = agg.add(_count_when(cond), params)
        elif spec.kind == "duplicates":
            cols = [conn.quote(c) for c in spec.columns]
            all_present = " AND ".join(f"{c} IS NOT NULL" for c in cols)
            if len(cols) == 1:
                s["present"] = agg.add(f"COUNT({cols[0]})")
                s["distinct"] = agg.add(f"COUNT(DISTINCT {cols[0]})")
            else:
                s["present"] = agg.add(_count_when(all_present))
                s["distinct"] = agg.add(conn.distinct_tuples(cols, all_present))
        elif spec.kind == "freshness":
            s["newest"] = agg.add(f"MAX({conn.quote(spec.columns[0])})")
        slots[spec.id] = s
    sql_text, params = agg.sql(table_sql)
    return sql_text, params, slots


def samples_of(row: tuple, slots: dict[str, int]) -> list:
    """The failing values a one-scan statement read for a check (smallest, largest)."""
    if "sample_min" not in slots:
        return []
    values = (row[slots["sample_min"]], row[slots["sample_max"]])
    return list(dict.fromkeys(str(v) for v in values if v is not None))


# -- evaluation --------------------------------------------------------------------------------


def _num(v) -> float:
    if v is None:
        return 0.0
    if isinstance(v, Decimal):
        return float(v)
    return float(v)


def _as_datetime(v) -> datetime | None:
    if v is None:
        return None
    if isinstance(v, str):
        try:
            v = datetime.fromisoformat(v.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    elif isinstance(v, date) and not isinstance(v, datetime):
        v = datetime(v.year, v.month, v.day)
    if not isinstance(v, datetime):
        return None
    return v if v.tzinfo else v.replace(tzinfo=UTC)


def _threshold_result(observed: float, spec: CheckSpec, what: str, unit: str = "") -> Result:
    # A range check's min/max are the bounds; its allowance is max_failing.
    limit = float(spec.params.get("max_failing" if spec.kind == "range" else "max", 0) or 0)
    suffix = "%" if unit == "percent" else ""
    strict = bool(spec.params.get("max_exclusive"))  # ODCS mustBeLessThan
    threshold = f"{'<' if strict else '≤'} {_fmt(limit)}{suffix}"
    ok = observed < limit if strict else observed <= limit
    return Result(
        "passed" if ok else "failed",
        observed,
        threshold,
        f"{_fmt(observed)}{suffix} {what} (allowed {threshold}).",
    )


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.2f}"


def evaluate(spec: CheckSpec, row: tuple, slots: dict[str, int], now: datetime) -> Result:
    p = spec.params
    if spec.kind == "row_count":
        n = _num(row[slots["total"]])
        lo, hi = p.get("min"), p.get("max")
        lo_op, hi_op = (
            (">" if p.get("min_exclusive") else "≥"),
            ("<" if p.get("max_exclusive") else "≤"),
        )
        threshold = " and ".join(
            x
            for x in (
                f"{lo_op} {lo}" if lo is not None else "",
                f"{hi_op} {hi}" if hi is not None else "",
            )
            if x
        )
        ok = (lo is None or (n > float(lo) if lo_op == ">" else n >= float(lo))) and (
            hi is None or (n < float(hi) if hi_op == "<" else n <= float(hi))
        )
        return Result(
            "passed" if ok else "failed",
            n,
            threshold,
            f"{_fmt(n)} rows (expected {threshold or 'any'}).",
        )
    if spec.kind == "freshness":
        newest = _as_datetime(row[slots["newest"]])
        if "age" in slots and newest is not None:
            # The engine's own timestamp arithmetic (compiler.age_seconds).
            age = round(_num(row[slots["age"]]) / 3600, 2)
            hours = float(p.get("hours", 24))
            return Result(
                "passed" if age <= hours else "failed",
                age,
                f"≤ {_fmt(hours)} h",
                f"Newest value is {age:.1f} h old (allowed {_fmt(hours)} h); "
                f"newest {newest:%Y-%m-%d %H:%M} UTC.",
            )
        hours = float(p.get("hours", 24))
        if newest is None:
            return Result(
                "failed",
                None,
                f"≤ {_fmt(hours)} h",
                "No timestamp found: the table is empty or the column has no values.",
            )
        age = round((now - newest).total_seconds() / 3600, 2)
        ok = age <= hours
        return Result(
            "passed" if ok else "failed",
            age,
            f"≤ {_fmt(hours)} h",
            f"Newest value is {age:.1f} h old (allowed {_fmt(hours)} h); newest {newest:%Y-%m-%d %H:%M} UTC.",
        )
    unit = p.get("unit", "count")
    if spec.kind == "duplicates":
        count = _num(row[slots["present"]]) - _num(row[slots["distinct"]])
        what = "duplicate rows over " + ", ".join(spec.columns)
    else:
        count = _num(row[slots["bad"]])
        what = {
            "missing": f"missing values in {spec.columns[0]}",
            "accepted_values": f"values of {spec.columns[0]} outside the accepted set",
            "range": f"values of {spec.columns[0]} out of range",
            "pattern": f"values of {spec.columns[0]} not matching the pattern",
        }[spec.kind]
    if unit == "percent":
        total = _num(row[slots["total"]])
        observed = round(100.0 * count / total, 4) if total else 0.0
    else:
        observed = count
    return _threshold_result(observed, spec, what, unit)


# -- schema ------------------------------------------------------------------------------------

_TYPE_ALIASES = {
    "int": "integer",
    "int4": "integer",
    "int8": "bigint",
    "int2": "smallint",
    "timestamptz": "timestamp with time zone",
    "timestamp": "timestamp without time zone",
    "varchar": "character varying",
    "bool": "boolean",
    "float8": "double precision",
    "float4": "real",
    "decimal": "numeric",
}


def normalise_type(t: str) -> str:
    t = (t or "").strip().lower()
    t = re.sub(r"\s*\(.*\)$", "", t)
    return _TYPE_ALIASES.get(t, t)


@dataclass
class Constraint:
    """A declared `required` or `unique` the schema check verifies (a primary key is both; a
    composite one is unique as a tuple). `spec` is the metric that counts its violations in
    the table's one aggregate statement: missing values, or duplicates (non-missing values
    minus distinct values, as the duplicates check counts them)."""

    label: str  # the field, or "(a, b)" for a composite key
    why: str  # "declared required", "declared unique", "primary key"
    spec: CheckSpec


def declared_constraints(declared: list[dict], actual: dict[str, str]) -> list[Constraint]:
    """The required/unique declarations of the columns that exist (a missing one is drift)."""
    out: list[Constraint] = []

    def add(kind: str, columns: list[str], why: str) -> None:
        label = columns[0] if len(columns) == 1 else "(" + ", ".join(columns) + ")"
        # Negative ids: never a run's id, so these stay apart from the table's checks.
        spec = CheckSpec(-1 - len(out), kind, columns, {"max": 0})
        out.append(Constraint(label, why, spec))

    keys = [f["name"] for f in declared if f.get("primary_key")]
    for f in declared:
        name = f["name"]
        if name not in actual:
            continue
        if f.get("required") or f.get("primary_key"):
            add("missing", [name], "declared required" if f.get("required") else "primary key")
        if f.get("unique") or (f.get("primary_key") and len(keys) == 1):
            add("duplicates", [name], "declared unique" if f.get("unique") else "primary key")
    if len(keys) > 1 and all(k in actual for k in keys):
        add("duplicates", keys, "primary key")
    return out


def evaluate_schema(
    declared: list[dict],
    actual: dict[str, str],
    spec: CheckSpec,
    constraints: Sequence[tuple[Constraint, Result]] = (),
) -> Result:
    """Drift (columns and types) plus the declared constraints' counts (`constraints`: each
    with the result of its metric, computed in the table's aggregate statement)."""
    problems = []
    for f in declared:
        name = f["name"]
        if name not in actual:
            problems.append(f"missing column {name}")
        elif f.get("physical_type") and normalise_type(f["physical_type"]) != normalise_type(
            actual[name]
        ):
            problems.append(f"{name} is {actual[name]}, declared {f['physical_type']}")
    if not spec.params.get("allow_extra", False):
        names = {f["name"] for f in declared}
        problems += [f"undeclared column {c}" for c in actual if c not in names]
    if not actual:
        return Result("error", None, "0 differences", "The table does not exist or has no columns.")
    violations, unverified = [], []
    for c, r in constraints:
        if r.status == "failed":
            n = r.observed or 0
            noun = "missing value" if c.spec.kind == "missing" else "duplicate value"
            violations.append(f"{c.label}: {c.why}, {_fmt(n)} {noun}{'' if n == 1 else 's'}")
        elif r.status == "error":
            unverified.append(f"{c.label}, {c.why} ({r.message.rstrip('.')})")
    n = len(problems) + len(violations)
    parts = []
    if problems:
        parts.append("Schema drift: " + "; ".join(problems[:20]) + ".")
    if violations:
        parts.append("Declared constraints not met: " + "; ".join(violations[:20]) + ".")
    if unverified:
        parts.append("Could not verify: " + "; ".join(unverified[:20]) + ".")
    if n == 0 and not unverified:
        checked = " and their required/unique declarations hold" if constraints else ""
        return Result(
            "passed", 0.0, "0 differences", f"Schema matches the declared fields{checked}."
        )
    if n == 0:  # nothing wrong found, but not everything could be counted
        return Result("error", None, "0 differences", " ".join(parts))
    return Result("failed", float(n), "0 differences", " ".join(parts))


# -- custom SQL --------------------------------------------------------------------------------


def validate_custom_sql(text: str, kind: str = "postgresql", location: str = "") -> str:
    """Custom SQL inside its box (quality_sql): one SELECT of the port's own table, allowlisted
    functions. Returns the text as stored; EngineError names the problem."""
    schema, table = _split_quietly(location)
    try:
        return quality_sql.validate(text, kind=kind, schema=schema, table=table)
    except quality_sql.SqlRefused as e:
        raise EngineError(str(e)) from None


def render_custom_sql(conn: Connection, text: str, schema: str, table: str) -> str:
    """The statement sent: validated again (defence in depth) and generated from the parse
    tree with the port's table named exactly."""
    kind = {"postgresql": "postgresql", "sqlite": "sqlite"}.get(conn.vendor, conn.vendor)
    try:
        return quality_sql.render(text, kind=kind, schema=schema, table=table)
    except quality_sql.SqlRefused as e:
        raise EngineError(str(e)) from None


def _split_quietly(location: str) -> tuple[str, str]:
    try:
        return split_location(location)
    except EngineError:
        return "", ""


def custom_sql_number(rows: list[tuple]) -> float:
    """The one number a custom query returns. Anything else is a fixed message: the query's
    text values never reach run messages, notifications or e-mails."""
    if len(rows) != 1 or len(rows[0]) != 1:
        raise EngineError(NOT_A_NUMBER)
    value = rows[0][0]
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise EngineError(NOT_A_NUMBER)
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        raise EngineError(NOT_A_NUMBER)
    return number


# -- running a table's checks ------------------------------------------------------------------


def run_table(
    source,
    location: str,
    specs: list[CheckSpec],
    *,
    declared_fields=None,
    allow_samples: bool = False,
    now: datetime | None = None,
) -> dict[int, Result]:
    """Run every check on one table, on a connection of its own. Never raises: problems
    become error results."""
    if not specs:
        return {}
    now = now or datetime.now(UTC)
    return _guarded(
        specs,
        location,
        lambda: _on_new_connection(source, location, specs, declared_fields, allow_samples, now),
    )


def _on_new_connection(source, location, specs, declared, allow_samples, now):
    split_location(location)  # no location: an error before connecting
    with connect(source, max(s.timeout_seconds for s in specs)) as conn:
        schema, table = conn.resolve(location, getattr(source, "default_schema", ""))
        return _run_on(conn, schema, table, specs, declared or [], allow_samples, now)


def _guarded(specs: list[CheckSpec], location: str, run) -> dict[int, Result]:
    results: dict[int, Result] = {}
    try:
        results = run()
    except EngineError as e:
        for s in specs:
            results.setdefault(s.id, Result("error", message=str(e)))
    except Exception as e:  # noqa: BLE001 - a broken source must never crash the worker
        log.exception("Quality run failed unexpectedly on %s", location)
        for s in specs:
            results.setdefault(
                s.id, Result("error", message=f"Unexpected error: {type(e).__name__}")
            )
    return results


class SourceSession:
    """Several tables of one data source in one task: one connection (one role check) for all,
    and the catalogue of every table that needs it (a schema check) read in one statement,
    the first time one of them asks. `open_session` makes one."""

    def __init__(self, conn: Connection, source, wanted: list[str]):
        self.conn, self.source = conn, source
        self._wanted = wanted
        self._catalogue: dict[tuple[str, str], dict[str, str]] | None = None
        self._timeout: float | None = None

    def _resolve(self, location: str) -> tuple[str, str]:
        return self.conn.resolve(location, getattr(self.source, "default_schema", ""))

    def columns(self, schema: str, table: str) -> dict[str, str]:
        if self._catalogue is None:
            tables = set()
            for location in self._wanted:
                try:
                    tables.add(self._resolve(location))
                except EngineError:
                    pass  # that table's own run reports its location
            self._catalogue = self.conn.columns_many(sorted(tables | {(schema, table)}))
        if (schema, table) not in self._catalogue:  # a table whose run went wrong asks too
            self._catalogue[(schema, table)] = self.conn.columns(schema, table)
        return self._catalogue[(schema, table)]

    def run_table(
        self,
        location: str,
        specs: list[CheckSpec],
        *,
        declared_fields=None,
        allow_samples: bool = False,
        now: datetime | None = None,
    ) -> dict[int, Result]:
        """As `run_table`, on the session's connection. Never raises."""
        if not specs:
            return {}

        def run():
            split_location(location)
            # Each table gets its own checks' time budget (a custom SQL check may have set less).
            timeout = max(s.timeout_seconds for s in specs)
            if timeout != self._timeout:
                self.conn.set_timeout(timeout)
                self._timeout = timeout
            schema, table = self._resolve(location)
            return _run_on(
                self.conn,
                schema,
                table,
                specs,
                declared_fields or [],
                allow_samples,
                now or datetime.now(UTC),
                self.columns,
            )

        return _guarded(specs, location, run)


@contextmanager
def open_session(source, wanted: list[str], timeout: float = 60):
    """A `SourceSession` on one guarded read-only connection; raises EngineError if the source
    cannot be reached or its role is refused (the caller reports it on every table)."""
    with connect(source, timeout) as conn:
        yield SourceSession(conn, source, wanted)


def _run_on(
    conn, schema, table, specs, declared, allow_samples, now, columns=None
) -> dict[int, Result]:
    """`columns(schema, table)`: where the catalogue comes from (a `SourceSession` reads every
    table's of a task at once); the connection's own by default."""
    results: dict[int, Result] = {}
    table_sql = conn.table(schema, table)
    metric = [s for s in specs if s.kind in METRIC_KINDS]
    schema_checks = [s for s in specs if s.kind == "schema"]
    catalogue: dict[str, str] | None = None

    def get_catalogue():
        nonlocal catalogue
        if catalogue is None:
            catalogue = (columns or conn.columns)(schema, table)
        return catalogue

    # The schema check's required/unique counts ride in the table's one aggregate statement
    # (expressions shared with the metric checks that count the same thing). The catalogue is
    # read first -- the schema check reads it anyway -- so only existing columns are counted.
    constraints: list[Constraint] = []
    if schema_checks and any(
        f.get("required") or f.get("unique") or f.get("primary_key") for f in declared
    ):
        try:
            constraints = declared_constraints(declared, get_catalogue())
        except EngineError:
            pass  # the schema check reports the catalogue's problem below
    for c in constraints:
        types = {catalogue[col] for col in c.spec.columns} if catalogue else set()
        odd = sorted(t for t in types if not conn.comparable(t))
        if c.spec.kind == "duplicates" and odd:
            vendor = {"postgresql": "PostgreSQL"}.get(conn.vendor, conn.vendor)
            what = f"{vendor} cannot compare {', '.join(odd)} values"
            results[c.spec.id] = Result("error", message=what)
    own = {c.spec.id for c in constraints}

    runnable = metric + [c.spec for c in constraints if c.spec.id not in results]
    if runnable:
        for attempt in (1, 2, 3):
            sql_text, params, slots = compile_metrics(
                conn, table_sql, runnable, (schema, table), now=now, samples=allow_samples
            )
            started = time.monotonic()
            try:
                row = conn.execute(sql_text, params)[0]
            except QueryTimeout as e:
                for s in runnable:
                    results[s.id] = Result("error", message=str(e), duration_ms=_ms(started))
                break
            except EngineError as e:
                if attempt == 3:
                    for s in runnable:
                        results[s.id] = Result("error", message=str(e), duration_ms=_ms(started))
                    break
                # Find the checks whose columns are gone, report them, run the rest again.
                cols = get_catalogue()
                if not cols:
                    for s in runnable:
                        results[s.id] = Result(
                            "error", message=f"Table {schema}.{table} not found: {e}"
                        )
                    break
                broken = [s for s in runnable if any(c not in cols for c in s.columns)]
                for s in broken:
                    gone = [c for c in s.columns if c not in cols]
                    results[s.id] = Result(
                        "error", message=f"Column {', '.join(gone)} does not exist in {table}."
                    )
                if not broken and any(s.id in own for s in runnable):
                    # A declared column whose type the database cannot count (e.g. json has
                    # no equality): the schema check says so; the table's checks run again.
                    broken = [s for s in runnable if s.id in own]
                    for s in broken:
                        results[s.id] = Result("error", message=str(e))
                runnable = [s for s in runnable if s not in broken]
                if not runnable:
                    break
                if not broken:
                    for s in runnable:
                        results[s.id] = Result("error", message=str(e), duration_ms=_ms(started))
                    break
                continue
            ms = _ms(started)
            for s in runnable:
                try:
                    r = evaluate(s, row, slots[s.id], now)
                except (TypeError, ValueError) as e:
                    r = Result("error", message=f"Could not evaluate the result: {e}")
                r.duration_ms = ms
                if r.status == "failed" and allow_samples:
                    r.sample = samples_of(row, slots[s.id])
                results[s.id] = r
            break
        if allow_samples and conn.compiled:  # their samples are statements of their own
            for s in metric:
                failed = results.get(s.id)
                if failed and failed.status == "failed" and s.kind in SAMPLE_KINDS:
                    failed.sample = _sample(conn, table_sql, s, (schema, table))
    # Counts only, never values: a constraint's result carries no sample.
    counted = [(c, results.pop(c.spec.id, Result("error"))) for c in constraints]

    for s in specs:
        if s.kind == "schema":
            started = time.monotonic()
            try:
                r = evaluate_schema(declared, get_catalogue(), s, counted)
            except EngineError as e:
                r = Result("error", message=str(e))
            r.duration_ms = _ms(started)
            results[s.id] = r
        elif s.kind == "custom_sql":
            started = time.monotonic()
            try:
                conn.set_timeout(s.timeout_seconds)  # capped by the source's maximum
                sql_text = render_custom_sql(conn, s.params.get("sql", ""), schema, table)
                observed = custom_sql_number(conn.execute(sql_text, untrusted=True))
                r = _threshold_result(observed, s, "failing rows")
            except EngineError as e:
                r = Result("error", message=str(e))
            r.duration_ms = _ms(started)
            results[s.id] = r
    return results


def _sample(conn, table_sql: str, spec: CheckSpec, location: tuple[str, str]) -> list:
    """Failing values of a failed check on a compiled dialect (DuckDB, MySQL, ...), by a
    statement of its own; PostgreSQL and SQLite read theirs in the table's one scan."""
    try:
        schema, table = location
        sql_text = compiler.compile_sample(
            conn.vendor, compiler.table_expr(schema, table, conn.catalog), spec
        )
        return [r[0] for r in conn.execute(sql_text)]
    except EngineError:
        return []


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]
