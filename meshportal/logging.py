"""One JSON object per log line, for production log collectors."""

import json
import logging
from datetime import UTC, datetime

# LogRecord attributes that are not the caller's `extra=` fields.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
# Never written out, whatever a caller passes in `extra=`.
_SECRET_WORDS = ("password", "secret", "token", "authorization", "cookie", "sessionid")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key in _STANDARD or key.startswith("_"):
                continue
            if any(word in key.lower() for word in _SECRET_WORDS):
                entry[key] = "[redacted]"
            else:
                entry[key] = value if _is_json(value) else repr(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def _is_json(value) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


class DatabaseOutageFilter(logging.Filter):
    """During a database outage every request fails the same way: log one line per request,
    not a traceback per request (meshportal.middleware answers the user with a 503)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from django.db import InterfaceError, OperationalError

        if record.exc_info and isinstance(record.exc_info[1], OperationalError | InterfaceError):
            record.msg = f"{record.msg} ({type(record.exc_info[1]).__name__})"
            record.exc_info = None
            record.exc_text = None
        return True


class ClientErrorFilter(logging.Filter):
    """A 403 (or any 4xx) is the portal answering as it should, not an error: Django logs it
    at WARNING with the exception's traceback attached; keep the one line, drop the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if record.exc_info and isinstance(status, int) and 400 <= status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
