"""One JSON object per log line on stderr, with the request id of the request being handled and,
when tracing is on and a span is active, its `trace_id` and `span_id`.

Fields passed with `extra=` become top-level keys, so `log.info("request", extra={"status":
200})` gives `{"msg": "request", "status": 200, ...}`. The formatter is a few lines of msgspec;
a logging library would add a dependency for no behaviour we need.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import msgspec

from shared.http.request_context import current_request_id
from shared.telemetry import tracing

# Attributes every LogRecord has; anything else on a record came from `extra=`.
# (uvicorn adds `color_message`, an ANSI-coloured copy of the message, for its console formatter.)
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}
# A value msgspec cannot encode (an exception passed in `extra=`, say) is logged as its str().
_encoder = msgspec.json.Encoder(enc_hook=str)


_second: tuple[int, str] = (-1, "")


def _timestamp(created: float) -> str:
    """`created` as ISO 8601 in UTC to the millisecond, as `datetime.isoformat` writes it; the
    part up to the second is made once a second (a datetime per line was a fifth of the access
    log's cost)."""
    global _second
    whole = int(created)
    micros = round((created - whole) * 1e6)  # rounded to the microsecond first, as datetime does
    if micros == 1_000_000:
        whole, micros = whole + 1, 0
    if whole != _second[0]:
        _second = (whole, datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    return f"{_second[1]}.{micros // 1000:03d}+00:00"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = current_request_id()
        if request_id is not None:
            entry["request_id"] = request_id
        if tracing.enabled() and (ids := tracing.trace_ids()) is not None:
            entry["trace_id"], entry["span_id"] = ids
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return _encoder.encode(entry).decode()


class OneLineRetries(logging.Filter):
    """asyncpg's pool logs a warning with a full traceback each time it fails to reconnect its
    minimum connections (every 1 to 60 s while PostgreSQL is down); our outage log already says
    the database is down, once. Keep asyncpg's line, with the error on it, without the stack."""

    def filter(self, record: logging.LogRecord) -> bool:
        retry = str(record.msg).startswith("Failed to restore the pool connection floor")
        if retry and record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{record.getMessage()}: {record.exc_info[1]!r}"
            record.args, record.exc_info, record.exc_text = None, None, None
        return True


def configure_logging(level: str) -> None:
    """Send every logger (uvicorn's included) through one JSON handler on stderr."""
    # What no line prints is not gathered for every record either (the logging HOWTO's
    # "Optimization"): the caller's frame, which is a stack walk, and thread and process names.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # The services write their own access log (with request ids). uvicorn writes its own when
    # its logger has a handler somewhere up the tree, so this one is cut off from ours.
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers[:] = []
    uvicorn_access.propagate = False
    # httpx logs every request it sends at INFO: the cart's calls to the catalog would double
    # the access log. Its warnings still come through.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
    pool = logging.getLogger("asyncpg.pool")
    if not any(isinstance(existing, OneLineRetries) for existing in pool.filters):
        pool.addFilter(OneLineRetries())
