"""Query logs in, as `Record`s: the portal's JSON batch, OpenTelemetry OTLP/JSON (traces with
database spans, or log records), PostgreSQL CSV logs, Snowflake ACCESS_HISTORY and BigQuery
INFORMATION_SCHEMA.JOBS exports. Each reader returns the records and, per bad line, an error
naming the field and the reason; nothing here writes. Nothing here knows Django's ORM.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

_ZONE = re.compile(r"\s+(Z|[+-]\d{2}:?\d{2})$")
MAX_PRINCIPAL = 200
MAX_STATEMENT = 100_000
MAX_COUNT = 1_000_000  # identical queries one event may stand for


@dataclass(slots=True)
class Record:
    principal: str
    occurred_at: datetime
    statement: str = ""
    count: int = 1
    rows: int | None = None
    # Tables already resolved by the warehouse (Snowflake ACCESS_HISTORY, BigQuery JOBS):
    # used instead of parsing the statement.
    reads: tuple[str, ...] | None = None
    writes: tuple[str, ...] | None = None


@dataclass(frozen=True)
class LineError:
    field: str
    reason: str

    def as_dict(self) -> dict:
        return {"field": self.field, "reason": self.reason}


class BadRecord(ValueError):
    def __init__(self, field: str, reason: str):
        super().__init__(reason)
        self.field = field
        self.reason = reason


# -- values --------------------------------------------------------------------------------------


def _time(value, field: str) -> datetime:
    """ISO 8601 text, epoch seconds, or OTLP's nanoseconds (as text or number)."""
    if isinstance(value, bool) or value in (None, ""):
        raise BadRecord(field, "A timestamp is required (ISO 8601 or epoch).")
    try:
        if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
            number = float(value)
            if number > 1e17:  # nanoseconds
                number /= 1e9
            elif number > 1e14:  # microseconds
                number /= 1e6
            elif number > 1e11:  # milliseconds
                number /= 1e3
            return datetime.fromtimestamp(number, tz=UTC)
        if isinstance(value, str):
            # "… UTC", "… Z", "…Z", "… -0800" (exports put a space before the zone)
            text = _ZONE.sub(r"\1", value.strip().replace(" UTC", "+00:00"))
            if text.endswith("Z"):
                text = text[:-1] + "+00:00"
            parsed = datetime.fromisoformat(text)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        pass
    raise BadRecord(field, f"Not a timestamp: {str(value)[:40]!r}.")


def _text(value, field: str, *, required: bool, limit: int) -> str:
    if value is None or value == "":
        if required:
            raise BadRecord(field, "This field is required.")
        return ""
    if not isinstance(value, str):
        raise BadRecord(field, "Must be text.")
    if "\x00" in value:
        raise BadRecord(field, "Contains a NUL character.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRecord(field, "Contains a lone surrogate (not valid Unicode text).") from None
    value = value.strip()
    if len(value) > limit:
        raise BadRecord(field, f"Longer than {limit} characters.")
    return value


def _int(value, field: str, *, minimum: int = 0, maximum: int = 2**62) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise BadRecord(field, "Must be a whole number.")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise BadRecord(field, "Must be a whole number.") from None
    if number < minimum or number > maximum:
        raise BadRecord(field, f"Must be between {minimum} and {maximum}.")
    return number


def _record(principal, occurred_at, statement, *, count=None, rows=None, path: str) -> Record:
    return Record(
        principal=_text(principal, f"{path}.user", required=True, limit=MAX_PRINCIPAL),
        occurred_at=_time(occurred_at, f"{path}.timestamp"),
        statement=_text(statement, f"{path}.query", required=True, limit=MAX_STATEMENT),
        count=_int(count, f"{path}.count", minimum=1, maximum=MAX_COUNT) or 1,
        rows=_int(rows, f"{path}.rows"),
    )


def _collect(items: Iterable[tuple[str, object]], build) -> tuple[list[Record], list[LineError]]:
    records: list[Record] = []
    errors: list[LineError] = []
    for path, item in items:
        try:
            records.append(build(path, item))
        except BadRecord as e:
            errors.append(LineError(e.field, e.reason))
    return records, errors


# -- the portal's own batch ------------------------------------------------------------------------


def read_batch(data) -> tuple[list[Record], list[LineError]]:
    """`{"events": [{"user", "query", "timestamp", "rows"?, "count"?}, …]}` (or the bare list)."""
    events = data.get("events") if isinstance(data, dict) else data
    if not isinstance(events, list):
        return [], [LineError("events", 'Send a list of events: {"events": [...]}.')]

    def build(path, item):
        if not isinstance(item, dict):
            raise BadRecord(path, "Each event is an object.")
        return _record(
            item.get("user"),
            item.get("timestamp"),
            item.get("query"),
            count=item.get("count"),
            rows=item.get("rows"),
            path=path,
        )

    return _collect(((f"events[{i}]", e) for i, e in enumerate(events)), build)


# -- OpenTelemetry OTLP/JSON --------------------------------------------------------------------------

STATEMENT_KEYS = ("db.query.text", "db.statement")
USER_KEYS = ("db.user", "db.user.name", "db.namespace.user", "enduser.id")
ROWS_KEYS = ("db.response.returned_rows", "db.rows_returned", "db.rows")


def _otlp_value(value):
    if not isinstance(value, dict):
        return None
    for key in ("stringValue", "intValue", "doubleValue", "boolValue"):
        if key in value:
            return value[key]
    return None


def _attributes(obj, path: str) -> dict:
    attrs = obj.get("attributes", []) if isinstance(obj, dict) else []
    if not isinstance(attrs, list):
        raise BadRecord(f"{path}.attributes", "Must be a list of {key, value}.")
    out = {}
    for a in attrs:
        if isinstance(a, dict) and isinstance(a.get("key"), str):
            out[a["key"]] = _otlp_value(a.get("value"))
    return out


def _first(attrs: dict, keys) -> object:
    return next((attrs[k] for k in keys if attrs.get(k) not in (None, "")), None)


def _list(obj, key: str, path: str) -> list:
    value = obj.get(key, []) if isinstance(obj, dict) else None
    if not isinstance(value, list):
        raise BadRecord(f"{path}.{key}" if path else key, "Must be a list.")
    return value


def read_otlp(data) -> tuple[list[Record], list[LineError]]:
    """OTLP/JSON: `resourceSpans[].scopeSpans[].spans[]` (database client spans) or
    `resourceLogs[].scopeLogs[].logRecords[]`. Spans without a statement (not database spans)
    are skipped; a database span without its user or time is an error."""
    if not isinstance(data, dict) or not ({"resourceSpans", "resourceLogs"} & set(data)):
        return [], [LineError("resourceSpans", "Send OTLP/JSON: resourceSpans or resourceLogs.")]
    items: list[tuple[str, tuple[dict, dict]]] = []
    try:
        for kind, scopes_key, leaf_key in (
            ("resourceSpans", "scopeSpans", "spans"),
            ("resourceLogs", "scopeLogs", "logRecords"),
        ):
            for i, resource in enumerate(_list(data, kind, "")):
                rpath = f"{kind}[{i}]"
                if not isinstance(resource, dict):
                    raise BadRecord(rpath, "Must be an object.")
                resource_attrs = _attributes(resource.get("resource", {}), f"{rpath}.resource")
                for j, scope in enumerate(_list(resource, scopes_key, rpath)):
                    spath = f"{rpath}.{scopes_key}[{j}]"
                    if not isinstance(scope, dict):
                        raise BadRecord(spath, "Must be an object.")
                    for k, leaf in enumerate(_list(scope, leaf_key, spath)):
                        items.append((f"{spath}.{leaf_key}[{k}]", (resource_attrs, leaf)))
    except BadRecord as e:
        return [], [LineError(e.field, e.reason)]

    records: list[Record] = []
    errors: list[LineError] = []
    for path, (resource_attrs, leaf) in items:
        try:
            if not isinstance(leaf, dict):
                raise BadRecord(path, "Each span or log record is an object.")
            attrs = resource_attrs | _attributes(leaf, path)
            statement = _first(attrs, STATEMENT_KEYS)
            if statement is None and isinstance(leaf.get("body"), dict):
                statement = _otlp_value(leaf["body"])
            if statement is None:
                continue  # not a database span
            when = leaf.get("startTimeUnixNano") or leaf.get("timeUnixNano")
            when = when or leaf.get("observedTimeUnixNano")
            records.append(
                Record(
                    principal=_text(
                        _first(attrs, USER_KEYS), f"{path}.attributes.db.user",
                        required=True, limit=MAX_PRINCIPAL,
                    ),
                    occurred_at=_time(when, f"{path}.startTimeUnixNano"),
                    statement=_text(
                        statement, f"{path}.attributes.db.query.text",
                        required=True, limit=MAX_STATEMENT,
                    ),
                    rows=_int(_first(attrs, ROWS_KEYS), f"{path}.attributes.db.response.returned_rows"),
                )
            )  # fmt: skip
        except BadRecord as e:
            errors.append(LineError(e.field, e.reason))
    return records, errors


# -- files (import_usage) -----------------------------------------------------------------------------

# PostgreSQL's csvlog columns (log_destination = 'csvlog'), in order.
PG_CSVLOG = [
    "log_time", "user_name", "database_name", "process_id", "connection_from", "session_id",
    "session_line_num", "command_tag", "session_start_time", "virtual_transaction_id",
    "transaction_id", "error_severity", "sql_state_code", "message",
]  # fmt: skip
_PG_PREFIXES = ("statement: ", "execute ", "duration: ")


def _pg_statement(message: str) -> str | None:
    """The SQL of a csvlog message: `statement: …`, `execute <name>: …`, or
    `duration: … ms  statement: …`; None for other messages (connections, errors)."""
    if "statement: " in message:
        return message.split("statement: ", 1)[1]
    if message.startswith("execute ") and ": " in message:
        return message.split(": ", 1)[1]
    return None


def _csv_rows(reader, start: int = 1) -> Iterator[tuple[int, Any]]:
    """(line number, row) of a csv reader; (n, None) once, at a line csv cannot read."""
    n = start
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error:
            yield n, None
            return
        yield n, row
        n += 1


def read_pg_csvlog(text: str) -> tuple[list[Record], list[LineError]]:
    records: list[Record] = []
    errors: list[LineError] = []
    for n, row in _csv_rows(csv.reader(io.StringIO(text, newline=""))):
        if row is None:
            errors.append(LineError(f"line {n}", "Not CSV (csvlog lines are CSV rows)."))
            break
        if not row:
            continue
        if len(row) < len(PG_CSVLOG):
            errors.append(LineError(f"line {n}", f"Expected {len(PG_CSVLOG)}+ csvlog columns."))
            continue
        values = dict(zip(PG_CSVLOG, row, strict=False))
        statement = _pg_statement(values["message"])
        if statement is None:
            continue
        try:
            records.append(
                _record(values["user_name"], values["log_time"], statement, path=f"line {n}")
            )
        except BadRecord as e:
            errors.append(LineError(e.field, e.reason))
    return records, errors


def _dict_rows(text: str) -> Iterator[tuple[int, dict]]:
    """CSV with a header, or JSON lines, or one JSON array: rows as dicts with lower-case keys."""
    stripped = text.lstrip()
    if stripped.startswith("[") or stripped.startswith("{"):
        try:
            data = json.loads(text)
            rows = data if isinstance(data, list) else [data]
        except json.JSONDecodeError:
            rows = []
            for n, line in enumerate(text.splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    yield n, {"__error__": f"Not JSON: {e.msg}."}
        for n, row in enumerate(rows, start=1):
            yield n, ({str(k).lower(): v for k, v in row.items()} if isinstance(row, dict) else {})
        return
    for n, row in _csv_rows(csv.DictReader(io.StringIO(text, newline="")), start=2):
        if row is None:
            yield n, {"__error__": "Not CSV with a header row."}
            return
        yield n, {str(k).lower(): v for k, v in row.items() if k is not None}


def _objects(value, field: str) -> tuple[str, ...]:
    """Snowflake's DIRECT/BASE_OBJECTS_ACCESSED / OBJECTS_MODIFIED: JSON arrays of
    {objectName: "DB.SCHEMA.TABLE", objectDomain: "Table"}."""
    if value in (None, ""):
        return ()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise BadRecord(field, "Must be a JSON array of objects.") from None
    if not isinstance(value, list):
        raise BadRecord(field, "Must be a JSON array of objects.")
    names = []
    for obj in value:
        name = obj.get("objectName") if isinstance(obj, dict) else None
        if isinstance(name, str) and name:
            names.append(".".join(name.replace('"', "").lower().split(".")[-2:]))
    return tuple(names)


def read_snowflake_access_history(text: str) -> tuple[list[Record], list[LineError]]:
    """SNOWFLAKE.ACCOUNT_USAGE.ACCESS_HISTORY exported as CSV or JSON: QUERY_START_TIME,
    USER_NAME, BASE_OBJECTS_ACCESSED (or DIRECT_OBJECTS_ACCESSED), OBJECTS_MODIFIED."""
    records: list[Record] = []
    errors: list[LineError] = []
    for n, row in _dict_rows(text):
        path = f"line {n}"
        try:
            if "__error__" in row:
                raise BadRecord(path, row["__error__"])
            accessed = row.get("base_objects_accessed") or row.get("direct_objects_accessed")
            writes = _objects(row.get("objects_modified"), f"{path}.OBJECTS_MODIFIED")
            reads = _objects(accessed, f"{path}.BASE_OBJECTS_ACCESSED")
            records.append(
                Record(
                    principal=_text(
                        row.get("user_name"), f"{path}.USER_NAME", required=True,
                        limit=MAX_PRINCIPAL,
                    ),
                    occurred_at=_time(row.get("query_start_time"), f"{path}.QUERY_START_TIME"),
                    statement=_text(row.get("query_id"), f"{path}.QUERY_ID", required=False, limit=200),
                    reads=tuple(t for t in reads if t not in writes),
                    writes=writes,
                )
            )  # fmt: skip
        except BadRecord as e:
            errors.append(LineError(e.field, e.reason))
    return records, errors


def read_bigquery_jobs(text: str) -> tuple[list[Record], list[LineError]]:
    """INFORMATION_SCHEMA.JOBS exported as CSV or JSON: creation_time, user_email, query,
    total_bytes_processed is ignored; statement_type SELECT/INSERT/… is read from the query."""
    records: list[Record] = []
    errors: list[LineError] = []
    for n, row in _dict_rows(text):
        path = f"line {n}"
        try:
            if "__error__" in row:
                raise BadRecord(path, row["__error__"])
            if row.get("job_type") not in (None, "", "QUERY"):
                continue
            records.append(
                _record(
                    row.get("user_email"), row.get("creation_time"), row.get("query"), path=path
                )
            )
        except BadRecord as e:
            errors.append(LineError(e.field, e.reason))
    return records, errors


FILE_FORMATS = {
    "json": 'the portal\'s JSON batch ({"events": [...]}) or JSON lines of events',
    "otlp": "OpenTelemetry OTLP/JSON traces or logs",
    "pg-csvlog": "PostgreSQL csvlog",
    "snowflake": "Snowflake ACCESS_HISTORY export (CSV or JSON)",
    "bigquery": "BigQuery INFORMATION_SCHEMA.JOBS export (CSV or JSON)",
}


# Exports whose SQL is in the warehouse's own dialect, whatever the data source says.
FILE_DIALECTS = {"bigquery": "bigquery", "snowflake": "snowflake"}


def read_file(text: str, fmt: str) -> tuple[list[Record], list[LineError]]:
    if fmt == "pg-csvlog":
        return read_pg_csvlog(text)
    if fmt == "snowflake":
        return read_snowflake_access_history(text)
    if fmt == "bigquery":
        return read_bigquery_jobs(text)
    if fmt == "otlp":
        try:
            return read_otlp(json.loads(text))
        except json.JSONDecodeError as e:
            return [], [LineError(f"line {e.lineno}", f"Not JSON: {e.msg}.")]
    # json: one document, or JSON lines of events
    try:
        return read_batch(json.loads(text))
    except json.JSONDecodeError:
        pass
    records: list[Record] = []
    errors: list[LineError] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as e:
            errors.append(LineError(f"line {n}", f"Not JSON: {e.msg}."))
            continue
        got, bad = read_batch([item])
        records += got
        errors += [
            LineError(f"line {n}" + err.field.removeprefix("events[0]"), err.reason) for err in bad
        ]
    return records, errors
