"""Data sources by kind: the engines beyond PostgreSQL and SQLite (those live in `engine`).

Each kind names its driver and the pyproject extra that installs it; a missing driver is an
EngineError naming the extra (`pip install mesh-portal[duckdb]`). Credentials are never stored:
a source names an environment variable (`password_env`) or a file under MESH_SECRETS_DIR
(`secret_file`, e.g. a mounted Kubernetes secret or BigQuery's service-account key), read when
the connection opens and never shown or logged. Every connection is read-only and times out the
way its engine allows (docs/quality.md "Engines"):

| kind | read-only | timeout |
|---|---|---|
| duckdb | database file opened read_only; file ports only under the source's `file_root` (`allowed_directories`, external access off), configuration locked | interrupt() from a timer |
| mysql | `SET SESSION TRANSACTION READ ONLY`, each statement in `START TRANSACTION READ ONLY`; the account may hold only SELECT/SHOW VIEW (checked) | max_statement_time (MariaDB) / max_execution_time (MySQL) |
| redshift | `BEGIN READ ONLY` per statement | statement_timeout |
| snowflake | a role with SELECT only (docs) | STATEMENT_TIMEOUT_IN_SECONDS |
| bigquery | jobs with a Data Viewer + Job User account (docs), bytes billed capped | job_timeout_ms |
| databricks | a principal with SELECT only (docs) | STATEMENT_TIMEOUT |
| trino | a read-only access-control rule (docs) | query_max_run_time |

Statements come from `compiler` (sqlglot, in the kind's dialect); custom SQL is checked by
`quality_sql` before it is sent; drivers send one statement per call.
"""

from __future__ import annotations

import importlib
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from governance.quality import compiler
from governance.quality.engine import (
    Connection,
    EngineError,
    QueryTimeout,
    UnsafeSource,
    split_location,
)
from products.locations import file_format, is_file_location


@dataclass(frozen=True)
class Kind:
    label: str
    extra: str  # pyproject extra that installs the driver ("" = always installed)
    module: str  # the driver's import name


KINDS: dict[str, Kind] = {
    "postgresql": Kind("PostgreSQL", "", "psycopg"),
    "sqlite": Kind("SQLite", "", "sqlite3"),
    "duckdb": Kind("DuckDB (database or Parquet/CSV files)", "duckdb", "duckdb"),
    "mysql": Kind("MySQL / MariaDB", "mysql", "pymysql"),
    "redshift": Kind("Amazon Redshift", "redshift", "redshift_connector"),
    "snowflake": Kind("Snowflake", "snowflake", "snowflake.connector"),
    "bigquery": Kind("Google BigQuery", "bigquery", "google.cloud.bigquery"),
    "databricks": Kind("Databricks SQL", "databricks", "databricks.sql"),
    "trino": Kind("Trino", "trino", "trino"),
}
# What the options of each kind may hold (anything else is refused by the form and the API).
OPTIONS: dict[str, tuple[str, ...]] = {
    "duckdb": ("file_root", "threads"),
    "mysql": ("ssl",),
    "redshift": ("ssl",),
    "snowflake": ("warehouse", "role"),
    "bigquery": ("location", "maximum_bytes_billed"),
    "databricks": ("http_path", "catalog"),
    "trino": ("http_scheme",),
}
FILE_VIEW = "__mesh_file__"


def load_driver(kind: str):
    """The driver module, or an EngineError that names the extra to install."""
    info = KINDS.get(kind)
    if info is None:
        raise EngineError(f"Unknown data source kind {kind!r}.")
    try:
        return importlib.import_module(info.module)
    except ImportError:
        raise EngineError(
            f"The {info.label} driver is not installed: pip install mesh-portal[{info.extra}]"
        ) from None


def secrets_dir() -> Path:
    return Path(os.environ.get("MESH_SECRETS_DIR", "/run/secrets")).resolve()


def secret_path(source) -> Path | None:
    """The secrets file a source names, which must lie under MESH_SECRETS_DIR."""
    name = (getattr(source, "secret_file", "") or "").strip()
    if not name:
        return None
    root = secrets_dir()
    path = (root / name).resolve()
    if not path.is_relative_to(root):
        raise EngineError("The secrets file must lie under MESH_SECRETS_DIR.")
    if not path.is_file():
        raise EngineError(f"The secrets file {name} does not exist under MESH_SECRETS_DIR.")
    return path


def secret(source) -> str | None:
    """The password or token: from the named environment variable, else the secrets file."""
    env = getattr(source, "password_env", "") or ""
    if env:
        value = os.environ.get(env)
        if value is None:
            raise EngineError(f"The environment variable {env} is not set.")
        return value
    path = secret_path(source)
    return path.read_text().strip() if path else None


def options(source) -> dict:
    return dict(getattr(source, "options", None) or {})


class _Timer:
    """Calls `cancel` if a statement is still running when its time is up."""

    def __init__(self, seconds: float, cancel):
        self.fired = False
        self._cancel = cancel
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def _fire(self):
        self.fired = True
        self._cancel()

    def __enter__(self):
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._timer.cancel()


class CompiledConnection(Connection):
    """A connection whose statements `compiler` writes in its dialect."""

    compiled = True
    timeout_message = "The query ran past its timeout and was cancelled."

    def __init__(self, source, timeout: float):
        super().__init__()
        self.source = source
        self.timeout = timeout

    def quote(self, name: str) -> str:
        return compiler.table_expr("", name).sql(dialect=self.dialect)

    def columns(self, schema: str, table: str) -> dict[str, str]:
        rows = self.execute(compiler.compile_catalogue(self.vendor, schema, table, self.catalog))
        return {str(name): str(typ) for name, typ in rows}

    def set_timeout(self, seconds: float) -> None:
        self.timeout = self.capped(seconds)

    def guard(self, portal_tables) -> None:
        """Refuse a source whose catalogue holds the portal's own tables."""
        names = sorted(portal_tables)
        from sqlglot import exp

        select = (
            exp.select("table_name")
            .from_(exp.table_("tables", db="information_schema"))
            .where(exp.column("table_name").isin(*[exp.Literal.string(n) for n in names]))
            .limit(1)
        )
        found = self._run(select.sql(dialect=self.dialect))
        if found:
            raise UnsafeSource(
                f"Refused: this data source can read the portal's own table {found[0][0]}. "
                "Point it at the warehouse, with an account that reads only the warehouse."
            )

    def execute(self, sql_text: str, params=(), *, untrusted: bool = False) -> list[tuple]:
        if params:
            raise EngineError("Compiled statements carry their values as literals.")
        self.statements.append(sql_text)
        return self._run(sql_text, untrusted=untrusted)

    def _run(self, sql_text: str, *, untrusted: bool = False) -> list[tuple]:
        raise NotImplementedError

    def _failed(self, e: Exception, untrusted: bool) -> EngineError:
        if untrusted:
            return EngineError(f"The query failed on the data source ({type(e).__name__}).")
        return EngineError(_first_line(e))


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:500]


# -- DuckDB ------------------------------------------------------------------------------------


class DuckDBConnection(CompiledConnection):
    vendor = "duckdb"
    read_only_note = (
        "read-only; the database file is opened read-only, files are read only under the "
        "file root, and the configuration is locked"
    )

    def __init__(self, source, timeout: float):
        super().__init__(source, timeout)
        duckdb = load_driver("duckdb")
        self._duckdb = duckdb
        opts = options(source)
        root = (opts.get("file_root") or "").strip()
        self.file_root = Path(root).resolve() if root else None
        path = (source.database or "").strip()
        if path and not os.path.exists(path):
            raise EngineError(
                "Could not connect to the data source: the database file does not exist."
            )
        config: dict[str, bool | int] = {
            "autoload_known_extensions": False,
            "autoinstall_known_extensions": False,
        }
        if opts.get("threads"):
            config["threads"] = int(opts["threads"])
        try:
            # A database file opens read-only; without one, an in-memory database that only
            # reads the files of `file_root`.
            self.conn = duckdb.connect(path or ":memory:", read_only=bool(path), config=config)
            self.conn.execute("SET TimeZone = 'UTC'")
            allowed = [str(self.file_root) + os.sep] if self.file_root else []
            self.conn.execute("SET allowed_directories = $1", [allowed])
            self.conn.execute("SET enable_external_access = false")
            self.conn.execute("SET lock_configuration = true")
        except duckdb.Error as e:
            raise EngineError(f"Could not connect to the data source: {_first_line(e)}") from None

    def resolve(self, location: str, default_schema: str = "") -> tuple[str, str]:
        if not is_file_location(location):
            return split_location(location, default_schema)
        if self.file_root is None:
            raise EngineError("This DuckDB source has no file root: it cannot read files.")
        path = Path(location.strip())
        if not path.is_absolute():
            path = self.file_root / path
        # The part before the first wildcard must stay inside the root.
        fixed = Path(re.split(r"[*?\[]", str(path), maxsplit=1)[0])
        if not (
            fixed.resolve() == self.file_root or fixed.resolve().is_relative_to(self.file_root)
        ):
            raise EngineError("The file port's path lies outside the data source's file root.")
        reader = {"parquet": "read_parquet", "json": "read_json_auto"}.get(
            file_format(str(path)), "read_csv_auto"
        )
        from sqlglot import exp

        view = exp.to_identifier(FILE_VIEW, quoted=True).sql(dialect="duckdb")
        literal = exp.Literal.string(str(path)).sql(dialect="duckdb")
        try:
            # The one statement the portal writes itself: a temporary view of the files.
            self.conn.execute(
                f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM {reader}({literal})"  # noqa: S608  # nosec B608
            )
        except self._duckdb.Error as e:
            raise EngineError(f"Could not read the files: {_first_line(e)}") from None
        return "", FILE_VIEW

    def _run(self, sql_text: str, *, untrusted: bool = False) -> list[tuple]:
        with _Timer(self.timeout, self.conn.interrupt) as timer:
            try:
                return self.conn.execute(sql_text).fetchall()
            except self._duckdb.Error as e:
                if timer.fired or "INTERRUPT" in str(e).upper():
                    raise QueryTimeout(self.timeout_message) from None
                raise self._failed(e, untrusted) from None

    def close(self) -> None:
        self.conn.close()


# -- MySQL / MariaDB ---------------------------------------------------------------------------

MYSQL_READER_PRIVILEGES = {"SELECT", "SHOW VIEW", "USAGE"}
_MYSQL_TIMEOUT_CODES = {1969, 3024, 1317}  # MariaDB max_statement_time, MySQL, interrupted


class MySQLConnection(CompiledConnection):
    vendor = "mysql"
    read_only_note = (
        "read-only transactions; the account holds SELECT only and cannot read the portal's tables"
    )

    def __init__(self, source, timeout: float):
        super().__init__(source, timeout)
        pymysql = load_driver("mysql")
        self._pymysql = pymysql
        kwargs = {
            "host": source.host or "127.0.0.1",
            "port": source.port or 3306,
            "user": source.user or None,
            "password": secret(source) or "",
            "database": source.database or None,
            "connect_timeout": 5,
            "read_timeout": int(timeout) + 30,  # the server's own limit comes first
            "charset": "utf8mb4",
            "autocommit": False,
            "init_command": "SET SESSION TRANSACTION READ ONLY",
        }
        if options(source).get("ssl"):
            kwargs["ssl"] = {"check_hostname": True}
        try:
            self.conn = pymysql.connect(**{k: v for k, v in kwargs.items() if v is not None})
            with self.conn.cursor() as cur:
                cur.execute("SELECT VERSION()")
                self.mariadb = "mariadb" in str(cur.fetchone()[0]).lower()
                cur.execute("SET SESSION time_zone = '+00:00'")
        except pymysql.Error as e:
            raise EngineError(f"Could not connect to the data source: {_first_line(e)}") from None
        self.set_timeout(timeout)

    def set_timeout(self, seconds: float) -> None:
        super().set_timeout(seconds)
        with self.conn.cursor() as cur:
            if self.mariadb:
                cur.execute("SET SESSION max_statement_time = %s", [float(self.timeout)])
            else:
                cur.execute("SET SESSION max_execution_time = %s", [int(self.timeout * 1000)])

    def guard(self, portal_tables) -> None:
        grants = [row[0] for row in self._run("SHOW GRANTS FOR CURRENT_USER()")]
        for grant in grants:
            m = re.match(r"GRANT (.+?) ON (\S+) TO ", grant)
            if m is None:
                continue  # a role granted to the account (`GRANT role TO user`)
            privileges = {p.strip().upper() for p in m.group(1).split(",")}
            if privileges == {"PROXY"}:
                continue
            extra = privileges - MYSQL_READER_PRIVILEGES
            if m.group(2) == "*.*":
                extra = privileges - {"USAGE"}  # no server-wide reads (mysql.user and all)
            if extra or "WITH GRANT OPTION" in grant.upper():
                what = ", ".join(sorted(extra)) or "GRANT OPTION"
                raise UnsafeSource(
                    f"Refused: this data source's account holds {what} ({m.group(2)}). Quality "
                    "checks need an account with SELECT on the warehouse's database only "
                    "(see docs/quality.md)."
                )
        super().guard(portal_tables)

    def _run(self, sql_text: str, *, untrusted: bool = False) -> list[tuple]:
        try:
            with self.conn.cursor() as cur:
                cur.execute("START TRANSACTION READ ONLY")
                # No parameters: PyMySQL would %-format the text. One statement per call
                # (the client is not opened with MULTI_STATEMENTS).
                cur.execute(sql_text)
                rows = list(cur.fetchall())
            self.conn.rollback()
            return [tuple(r) for r in rows]
        except self._pymysql.Error as e:
            try:
                self.conn.rollback()
            except self._pymysql.Error:
                pass
            code = e.args[0] if e.args and isinstance(e.args[0], int) else None
            if code in _MYSQL_TIMEOUT_CODES:
                raise QueryTimeout(self.timeout_message) from None
            raise self._failed(e, untrusted) from None

    def close(self) -> None:
        self.conn.close()


# -- the warehouses CI cannot run (golden tests cover their SQL) --------------------------------


class DbApiConnection(CompiledConnection):
    """A DB-API driver: `_open()` connects and applies the session's limits."""

    read_only_note = (
        "read-only as far as its account's grants allow: give it SELECT only (docs/quality.md)"
    )

    def __init__(self, source, timeout: float):
        super().__init__(source, timeout)
        self.driver = load_driver(self.vendor)
        self.catalog = self._catalog()
        try:
            self.conn = self._open()
        except Exception as e:  # noqa: BLE001 - every driver has its own error classes
            raise EngineError(f"Could not connect to the data source: {_first_line(e)}") from None

    def _catalog(self) -> str:
        return ""

    def _open(self):
        raise NotImplementedError

    def _before(self, cur) -> None:
        """Statements that make the next one read-only, where the engine has them."""

    def _run(self, sql_text: str, *, untrusted: bool = False) -> list[tuple]:
        try:
            cur = self.conn.cursor()
            try:
                self._before(cur)
                cur.execute(sql_text)
                rows = [tuple(r) for r in cur.fetchall()]
            finally:
                cur.close()
            self._after()
            return rows
        except Exception as e:  # noqa: BLE001 - every driver has its own error classes
            self._after()
            if "timeout" in str(e).lower() or "cancel" in str(e).lower():
                raise QueryTimeout(self.timeout_message) from None
            raise self._failed(e, untrusted) from None

    def _after(self) -> None:
        try:
            self.conn.rollback()
        except Exception:  # noqa: BLE001, S110 - autocommit drivers have nothing to roll back  # nosec B110
            pass

    def close(self) -> None:
        self.conn.close()


class RedshiftConnection(DbApiConnection):
    vendor = "redshift"
    read_only_note = "read-only transactions (BEGIN READ ONLY); give its user SELECT only"

    def _open(self):
        conn = self.driver.connect(
            host=self.source.host,
            port=self.source.port or 5439,
            database=self.source.database,
            user=self.source.user,
            password=secret(self.source),
            timeout=10,
            ssl=bool(options(self.source).get("ssl", True)),
            application_name="mesh-portal-quality",
        )
        cur = conn.cursor()
        cur.execute(f"SET statement_timeout TO {int(self.timeout * 1000)}")
        cur.execute("SET timezone TO 'UTC'")
        conn.commit()
        return conn

    def _before(self, cur) -> None:
        cur.execute("BEGIN READ ONLY")


class SnowflakeConnection(DbApiConnection):
    vendor = "snowflake"

    def _open(self):
        opts = options(self.source)
        return self.driver.connect(
            account=self.source.host,
            user=self.source.user,
            password=secret(self.source),
            database=self.source.database or None,
            schema=self.source.default_schema or None,
            warehouse=opts.get("warehouse") or None,
            role=opts.get("role") or None,
            login_timeout=10,
            session_parameters={
                "STATEMENT_TIMEOUT_IN_SECONDS": int(self.timeout),
                "TIMEZONE": "UTC",
                "QUERY_TAG": "mesh-portal-quality",
            },
        )


class DatabricksConnection(DbApiConnection):
    vendor = "databricks"

    def _catalog(self) -> str:
        return options(self.source).get("catalog") or ""

    def _open(self):
        return self.driver.connect(
            server_hostname=self.source.host,
            http_path=options(self.source).get("http_path", ""),
            access_token=secret(self.source),
            catalog=self.catalog or None,
            schema=self.source.default_schema or None,
            session_configuration={"STATEMENT_TIMEOUT": str(int(self.timeout))},
        )


class TrinoConnection(DbApiConnection):
    vendor = "trino"

    def _catalog(self) -> str:
        return self.source.database or ""

    def _open(self):
        password = secret(self.source)
        auth_module = importlib.import_module("trino.auth")
        return self.driver.dbapi.connect(
            host=self.source.host,
            port=self.source.port or 8080,
            user=self.source.user or "mesh-portal",
            catalog=self.catalog or None,
            schema=self.source.default_schema or None,
            http_scheme=options(self.source).get("http_scheme")
            or ("https" if password else "http"),
            auth=auth_module.BasicAuthentication(self.source.user, password) if password else None,
            session_properties={"query_max_run_time": f"{int(self.timeout)}s"},
            timezone="UTC",
            source="mesh-portal-quality",
        )


class BigQueryConnection(CompiledConnection):
    vendor = "bigquery"
    read_only_note = DbApiConnection.read_only_note

    def __init__(self, source, timeout: float):
        super().__init__(source, timeout)
        bigquery = load_driver("bigquery")
        self._bigquery = bigquery
        self.catalog = source.database or ""  # the project
        key = secret_path(source)
        try:
            if key is not None:
                self.client = bigquery.Client.from_service_account_json(
                    str(key), project=self.catalog or None
                )
            else:  # the workload's own identity (GKE, Cloud Run)
                self.client = bigquery.Client(project=self.catalog or None)
        except Exception as e:  # noqa: BLE001 - google-auth raises several kinds
            raise EngineError(f"Could not connect to the data source: {_first_line(e)}") from None

    def guard(self, portal_tables) -> None:
        """BigQuery datasets hold no portal tables; the account's roles are the platform's."""

    def _run(self, sql_text: str, *, untrusted: bool = False) -> list[tuple]:
        opts = options(self.source)
        config = self._bigquery.QueryJobConfig(
            job_timeout_ms=int(self.timeout * 1000),
            maximum_bytes_billed=int(opts["maximum_bytes_billed"])
            if opts.get("maximum_bytes_billed")
            else None,
            use_legacy_sql=False,
            labels={"app": "mesh-portal-quality"},
        )
        try:
            job = self.client.query(sql_text, job_config=config, location=opts.get("location"))
            return [tuple(r.values()) for r in job.result(timeout=self.timeout + 10)]
        except Exception as e:  # noqa: BLE001 - google-api-core raises several kinds
            if "timeout" in str(e).lower() or "deadline" in str(e).lower():
                raise QueryTimeout(self.timeout_message) from None
            raise self._failed(e, untrusted) from None

    def close(self) -> None:
        self.client.close()


CONNECTIONS: dict[str, type[CompiledConnection]] = {
    "duckdb": DuckDBConnection,
    "mysql": MySQLConnection,
    "redshift": RedshiftConnection,
    "snowflake": SnowflakeConnection,
    "bigquery": BigQueryConnection,
    "databricks": DatabricksConnection,
    "trino": TrinoConnection,
}


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_REQUIRED = {
    "postgresql": ("host", "database"),
    "sqlite": ("database",),
    "mysql": ("host",),
    "redshift": ("host", "database", "user"),
    "snowflake": ("host", "user"),
    "bigquery": ("database",),
    "databricks": ("host",),
    "trino": ("host",),
}
_FIELD_NAMES = {
    "host": "the host (Snowflake: the account identifier)",
    "database": "the database (BigQuery: the project)",
    "user": "the user",
}


def source_problems(source) -> dict[str, str]:
    """What a data source of its kind lacks or must not hold, by field (form errors)."""
    kind = source.kind
    problems: dict[str, str] = {}
    for f in _REQUIRED.get(kind, ()):
        if not (getattr(source, f, "") or "").strip():
            problems[f] = f"A {KINDS[kind].label} source needs {_FIELD_NAMES[f]}."
    opts = getattr(source, "options", None) or {}
    if not isinstance(opts, dict):
        problems["options"] = "Options are a JSON object."
        return problems
    allowed = OPTIONS.get(kind, ())
    unknown = sorted(set(opts) - set(allowed))
    if unknown:
        problems["options"] = f"Unknown option {', '.join(unknown)} for {KINDS[kind].label}" + (
            f" (allowed: {', '.join(allowed)})." if allowed else " (it takes none)."
        )
    elif any(not isinstance(v, (str, int, bool)) for v in opts.values()):
        problems["options"] = "Option values are text, numbers or true/false."
    if kind == "duckdb":
        root = str(opts.get("file_root") or "")
        if not (source.database or "").strip() and not root:
            problems["database"] = "Give a DuckDB database file, or a file_root option, or both."
        if root and not os.path.isabs(root):
            problems["options"] = "file_root is an absolute directory path."
    if kind == "databricks" and not opts.get("http_path"):
        problems["options"] = "A Databricks source needs the http_path option (its warehouse)."
    env = (getattr(source, "password_env", "") or "").strip()
    if env and not _ENV_NAME.fullmatch(env):
        problems["password_env"] = "The name of an environment variable: letters, digits, _."  # noqa: S105  # nosec B105
    name = (getattr(source, "secret_file", "") or "").strip()
    if name and (os.path.isabs(name) or ".." in Path(name).parts):
        problems["secret_file"] = "A file name relative to MESH_SECRETS_DIR, without '..'."  # noqa: S105  # nosec B105
    return problems


def open_connection(source, timeout: float) -> CompiledConnection:
    cls = CONNECTIONS.get(source.kind)
    if cls is None:
        raise EngineError(f"Unknown data source kind {source.kind!r}.")
    return cls(source, timeout)
